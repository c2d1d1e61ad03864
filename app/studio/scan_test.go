package studio

import (
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestScanTutorialLayout(t *testing.T) {
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "images", "a.png"), 1024, 1024, 1)
	writeJPEG(t, filepath.Join(root, "images", "b.jpg"), 64, 48)
	writeHex(t, filepath.Join(root, "images", "c.webp"), tinyWebP)
	writeText(t, filepath.Join(root, "captions", "a.txt"), "diagram, api gateway")
	writeText(t, filepath.Join(root, "captions", "orphan.txt"), "no image")
	writeText(t, filepath.Join(root, "README.md"), "hi")
	writeText(t, filepath.Join(root, "images", "notes.gif"), "GIF89a")

	res, err := scanDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	if res.layout != LayoutTutorial {
		t.Fatalf("layout %q, want %q", res.layout, LayoutTutorial)
	}
	var rels []string
	for _, it := range res.items {
		rels = append(rels, it.Rel)
	}
	if want := []string{"images/a.png", "images/b.jpg", "images/c.webp"}; !slices.Equal(rels, want) {
		t.Fatalf("items %v, want %v", rels, want)
	}
	if want := []string{"README.md", "captions/orphan.txt", "images/notes.gif"}; !slices.Equal(res.others, want) {
		t.Fatalf("others %v, want %v", res.others, want)
	}
	a, b, c := res.items[0], res.items[1], res.items[2]
	if !a.HasCaption || a.Caption != "diagram, api gateway" || a.Width != 1024 || a.Format != "png" || a.Err != nil {
		t.Fatalf("a: %+v", a)
	}
	if len(a.Warnings) != 0 {
		t.Fatalf("a warnings: %v", a.Warnings)
	}
	if b.HasCaption || b.CaptionPath != filepath.Join(root, "captions", "b.txt") || b.Width != 64 || b.Height != 48 || b.Format != "jpeg" {
		t.Fatalf("b: %+v", b)
	}
	if !hasWarning(b, "smaller than the 1024 px") || !b.HasWarning(WarnSmall) || a.HasWarning(WarnSmall) {
		t.Fatalf("b has no small-image warning: %v", b.Warnings)
	}
	if c.Format != "webp" || c.Width != 16 || c.Err != nil {
		t.Fatalf("c: %+v", c)
	}
}

func TestScanKohyaRepeats(t *testing.T) {
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "10_mychar", "img.png"), 32, 32, 1)
	writeText(t, filepath.Join(root, "10_mychar", "img.txt"), "mychar, smiling")
	writePNG(t, filepath.Join(root, "plain.png"), 32, 32, 2)
	writePNG(t, filepath.Join(root, "misc", "x.png"), 32, 32, 3)
	writeText(t, filepath.Join(root, "misc", "x.caption"), "other tool's caption")

	res, err := scanDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	if res.layout != LayoutKohya {
		t.Fatalf("layout %q", res.layout)
	}
	got := map[string]*Item{}
	for _, it := range res.items {
		got[it.Rel] = it
	}
	if it := got["10_mychar/img.png"]; it == nil || it.Repeats != 10 || it.Caption != "mychar, smiling" {
		t.Fatalf("repeat folder item: %+v", it)
	}
	if it := got["plain.png"]; it == nil || it.Repeats != 1 || it.HasCaption || it.CaptionPath != filepath.Join(root, "plain.txt") {
		t.Fatalf("plain item: %+v", it)
	}
	if it := got["misc/x.png"]; it == nil || it.Repeats != 1 {
		t.Fatalf("misc item: %+v", it)
	}
	if !slices.Equal(res.others, []string{"misc/x.caption"}) {
		t.Fatalf("others %v", res.others)
	}
}

func TestScanBadInput(t *testing.T) {
	root := t.TempDir()
	// A PNG cut in half: the header is fine, the end chunk is missing.
	full := filepath.Join(t.TempDir(), "full.png")
	writePNG(t, full, 64, 64, 1)
	b, _ := os.ReadFile(full)
	writeBytes(t, filepath.Join(root, "truncated.png"), b[:len(b)/2])
	// Garbage with an image name.
	writeText(t, filepath.Join(root, "garbage.jpg"), "this is not a jpeg")
	// CMYK JPEG and 16-bit PNG open with a warning.
	writeHex(t, filepath.Join(root, "cmyk.jpg"), cmykJPEG)
	img16 := image.NewNRGBA64(image.Rect(0, 0, 1024, 1024))
	p16 := filepath.Join(root, "deep.png")
	f, err := os.Create(p16)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img16); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A caption in Latin-1, not UTF-8.
	writePNG(t, filepath.Join(root, "latin.png"), 1024, 1024, 2)
	latin := []byte("caf\xe9 au lait")
	writeBytes(t, filepath.Join(root, "latin.txt"), latin)
	writePNG(t, filepath.Join(root, "good.png"), 1024, 1024, 3)

	res, err := scanDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*Item{}
	for _, it := range res.items {
		got[it.Rel] = it
	}
	if len(got) != 6 {
		t.Fatalf("got %d items, want 6 (scanning must continue past bad files)", len(got))
	}
	for _, name := range []string{"truncated.png", "garbage.jpg"} {
		it := got[name]
		if it.Err == nil || !strings.Contains(it.Err.Error(), filepath.Join(root, name)) {
			t.Fatalf("%s: Err = %v, want an error naming the file", name, it.Err)
		}
	}
	if !strings.Contains(got["truncated.png"].Err.Error(), "truncated") {
		t.Fatalf("truncated.png: %v", got["truncated.png"].Err)
	}
	if it := got["cmyk.jpg"]; it.Err != nil || !hasWarning(it, "CMYK") {
		t.Fatalf("cmyk: err %v warnings %v", it.Err, it.Warnings)
	}
	if it := got["deep.png"]; it.Err != nil || !hasWarning(it, "16-bit") || it.Width != 1024 {
		t.Fatalf("16-bit: err %v warnings %v", it.Err, it.Warnings)
	}
	it := got["latin.png"]
	if it.Err != nil || it.CaptionErr == nil || !errors.Is(it.CaptionErr, ErrNotUTF8) || !strings.Contains(it.CaptionErr.Error(), "latin.txt") {
		t.Fatalf("latin caption: %+v", it)
	}
	if !hasWarning(it, "not valid UTF-8") || it.Caption != "" || !it.HasCaption {
		t.Fatalf("latin caption fields: %+v", it)
	}
	if d := res.disk["latin.png"]; d.data != string(latin) {
		t.Fatalf("raw bytes not kept: %q", d.data)
	}
	if it := got["good.png"]; it.Err != nil || len(it.Warnings) != 0 {
		t.Fatalf("good: %+v", it)
	}
	// The decoders agree that the truncated file is unreadable.
	if _, err := LoadImage(filepath.Join(root, "truncated.png")); err == nil || !strings.Contains(err.Error(), "truncated.png") {
		t.Fatalf("LoadImage(truncated) = %v", err)
	}
}

func TestScanMissingFolder(t *testing.T) {
	_, err := scanDataset(filepath.Join(t.TempDir(), "gone"))
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v", err)
	}
}

// hasWarning reports whether one of the item's warnings contains s.
func hasWarning(it *Item, s string) bool {
	for _, w := range it.Warnings {
		if strings.Contains(w.Text, s) {
			return true
		}
	}
	return false
}
