package dataset

import (
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// pattern is a deterministic, non-symmetric test picture: smooth gradients
// plus a per-pixel hash, so flips and shifts change every row.
func pattern(w, h int, salt uint32) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := uint32(x*7919+y*104729) ^ salt*2654435761
			n ^= n >> 13
			img.SetNRGBA(x, y, color.NRGBA{
				R: uint8(x * 255 / max(w-1, 1)),
				G: uint8(y * 255 / max(h-1, 1)),
				B: uint8(n),
				A: 255,
			})
		}
	}
	return img
}

// writePNG writes img as dir/name and returns the path.
func writePNG(t testing.TB, dir, name string, img image.Image) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeJPEG writes img as dir/name (quality 95) and returns the path.
func writeJPEG(t testing.TB, dir, name string, img image.Image) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// truncate cuts the file at path to keep bytes.
func truncate(t testing.TB, path string, keep int64) {
	t.Helper()
	if err := os.Truncate(path, keep); err != nil {
		t.Fatal(err)
	}
}

// smallOptions are buckets at 128² in 16-pixel steps: real bucketing on
// images small enough for the tiny fixture model and a quick test.
func smallOptions() Options {
	return Options{Resolution: 128, BucketStep: 16, MinSide: 64, MaxSide: 256}
}

// writeFile writes data to path.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
