package studio

import (
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requestSync asks for a thumbnail and waits for it.
func requestSync(t *testing.T, th *Thumbnailer, it *Item, size int) (image.Image, error) {
	t.Helper()
	type res struct {
		img image.Image
		err error
	}
	ch := make(chan res, 1)
	th.Request(it, size, func(img image.Image, err error) { ch <- res{img, err} })
	select {
	case r := <-ch:
		return r.img, r.err
	case <-time.After(30 * time.Second):
		t.Fatal("thumbnail never arrived")
	}
	return nil, nil
}

func TestThumbnailsCachedByContentHash(t *testing.T) {
	dataDir := t.TempDir()
	s1, err := Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "wide.png"), 300, 200, 4)
	d, err := s1.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	it, _ := d.Item("wide.png")
	if _, ok := s1.Thumbnails().Get(it, 64); ok {
		t.Fatal("thumbnail available before it was made")
	}
	img, err := requestSync(t, s1.Thumbnails(), it, 64)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 42 {
		t.Fatalf("thumbnail is %v, want 64x42", b)
	}
	raw, _ := os.ReadFile(it.ImagePath)
	sum := sha256.Sum256(raw)
	cached := filepath.Join(dataDir, "thumbnails", hex.EncodeToString(sum[:])+"-64.png")
	if _, err := os.Stat(cached); err != nil {
		t.Fatalf("no disk cache file: %v", err)
	}
	if got, ok := s1.Thumbnails().Get(it, 64); !ok || got.Bounds() != img.Bounds() {
		t.Fatal("Get after Request missed the memory cache")
	}
	if n := s1.Thumbnails().Generated(); n != 1 {
		t.Fatalf("generated %d, want 1", n)
	}
	s1.Close()

	// A new studio finds it on disk at once, without decoding the image.
	s2, err := Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	d2, err := s2.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	it2, _ := d2.Item("wide.png")
	// The hash is not known yet: the worker hashes, then hits the disk cache.
	img2, err := requestSync(t, s2.Thumbnails(), it2, 64)
	if err != nil || img2.Bounds() != img.Bounds() {
		t.Fatalf("second studio: %v %v", img2, err)
	}
	if n := s2.Thumbnails().Generated(); n != 0 {
		t.Fatalf("second studio decoded %d images, want 0 (disk cache)", n)
	}
	it2.Hash = hex.EncodeToString(sum[:])
	s3, err := Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if _, ok := s3.Thumbnails().Get(it2, 64); !ok {
		t.Fatal("Get with a known hash missed the disk cache")
	}
	// A renamed copy hits the same cache entry.
	moved := filepath.Join(root, "renamed.png")
	if err := os.WriteFile(moved, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := requestSync(t, s2.Thumbnails(), &Item{ImagePath: moved}, 64); err != nil {
		t.Fatal(err)
	}
	if n := s2.Thumbnails().Generated(); n != 0 {
		t.Fatalf("renamed file was decoded again (%d)", n)
	}
	// A changed file is a different thumbnail.
	writePNG(t, moved, 100, 400, 7)
	img3, err := requestSync(t, s2.Thumbnails(), &Item{ImagePath: moved}, 64)
	if err != nil || img3.Bounds().Dx() != 16 || img3.Bounds().Dy() != 64 {
		t.Fatalf("changed file: %v %v", img3, err)
	}
	// An unreadable image reports an error naming the file.
	bad := filepath.Join(root, "bad.png")
	writeText(t, bad, "not a png")
	if _, err := requestSync(t, s2.Thumbnails(), &Item{ImagePath: bad}, 64); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad image: %v", err)
	}
}

func TestThumbnailerManyRequestsAndClose(t *testing.T) {
	th, err := NewThumbnailer(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var items []*Item
	for i := 0; i < 12; i++ {
		p := filepath.Join(root, strings.Repeat("x", i+1)+".png")
		writePNG(t, p, 40, 40, i)
		items = append(items, &Item{ImagePath: p})
	}
	done := make(chan error, 3*len(items))
	for _, it := range items {
		for k := 0; k < 3; k++ { // duplicates join one job
			th.Request(it, 32, func(_ image.Image, err error) { done <- err })
		}
	}
	for i := 0; i < 3*len(items); i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("requests not answered")
		}
	}
	if n := th.Generated(); n != len(items) {
		t.Fatalf("generated %d thumbnails for %d images", n, len(items))
	}
	th.Close()
	got := make(chan error, 1)
	th.Request(items[0], 48, func(_ image.Image, err error) { got <- err })
	if err := <-got; err != ErrThumbnailerClosed {
		t.Fatalf("request after close: %v", err)
	}
}

func TestLoadImageFormats(t *testing.T) {
	dir := t.TempDir()
	writeHex(t, filepath.Join(dir, "a.webp"), tinyWebP)
	writeHex(t, filepath.Join(dir, "c.jpg"), cmykJPEG)
	writeJPEG(t, filepath.Join(dir, "b.jpg"), 20, 10)
	p16 := filepath.Join(dir, "d.png")
	f, err := os.Create(p16)
	if err != nil {
		t.Fatal(err)
	}
	png.Encode(f, image.NewRGBA64(image.Rect(0, 0, 40, 20)))
	f.Close()
	th, err := NewThumbnailer(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	for _, n := range []string{"a.webp", "c.jpg", "b.jpg", "d.png"} {
		img, err := LoadImage(filepath.Join(dir, n))
		if err != nil || img.Bounds().Dx() == 0 {
			t.Fatalf("%s: %v", n, err)
		}
		// Every format, CMYK and 16-bit included, makes a thumbnail.
		thumb, err := requestSync(t, th, &Item{ImagePath: filepath.Join(dir, n)}, 8)
		if err != nil || thumb.Bounds().Dx() != 8 {
			t.Fatalf("thumbnail of %s: %v %v", n, thumb, err)
		}
	}
	if _, err := LoadImage(filepath.Join(dir, "missing.png")); err == nil || !strings.Contains(err.Error(), "missing.png") {
		t.Fatalf("missing: %v", err)
	}
}
