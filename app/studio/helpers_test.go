package studio

import (
	"encoding/hex"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// tinyWebP is a 16x16 lossless WebP (made with `convert -size 16x16 xc:red
// -define webp:lossless=true`): Go has no WebP encoder.
const tinyWebP = "524946461c000000574542505650384c0f0000002f0fc003000710fd8ffe0722a2ff0100"

// cmykJPEG is a 16x16 CMYK JPEG (made with `convert -size 16x16 xc:blue
// -colorspace CMYK`): Go's JPEG encoder cannot write CMYK.
const cmykJPEG = "ffd8ffee000e41646f626500640000000002ffdb004300100b0c0e0c0a100e0d0e1211101318281a181616183123251d283a333d3c3933383740485c4e404457453738506d51575f626768673e4d71797064785c656763ffdb0043011112121815182f1a1a2f634238426363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363ffc00014080010001004012200021101031101042200ffc400160001010100000000000000000000000000000607ffc40014100100000000000000000000000000000000ffc4001501010100000000000000000000000000000406ffc40014110100000000000000000000000000000000ffda000e040100021103110400003f00b10106534001ffd9"

// mkdirs creates the parent folder of p.
func mkdirs(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
}

// testImage is a w x h RGBA image with a pattern that depends on seed.
func testImage(w, h, seed int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(x*7 + seed), uint8(y*3 + seed*5), uint8(seed * 31), 255})
		}
	}
	return img
}

// writePNG writes a w x h PNG to p (creating folders).
func writePNG(t *testing.T, p string, w, h, seed int) {
	t.Helper()
	mkdirs(t, p)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, testImage(w, h, seed)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeJPEG writes a w x h JPEG to p.
func writeJPEG(t *testing.T, p string, w, h int) {
	t.Helper()
	mkdirs(t, p)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(f, testImage(w, h, 3), nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeHex writes hex-encoded bytes to p.
func writeHex(t *testing.T, p, hx string) {
	t.Helper()
	b, err := hex.DecodeString(hx)
	if err != nil {
		t.Fatal(err)
	}
	writeBytes(t, p, b)
}

// writeBytes writes b to p (creating folders).
func writeBytes(t *testing.T, p string, b []byte) {
	t.Helper()
	mkdirs(t, p)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeText writes a caption file.
func writeText(t *testing.T, p, s string) {
	t.Helper()
	writeBytes(t, p, []byte(s))
}

// readText reads a file, failing the test if it is missing.
func readText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertNoFile fails if p exists.
func assertNoFile(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Stat(p); err == nil {
		t.Fatalf("%s exists, want it absent", p)
	}
}

// assertNoTempFiles fails if a temp file of an atomic write is left in dir.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if matched, _ := filepath.Match(".*.tmp-*", e.Name()); matched {
			t.Fatalf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}
