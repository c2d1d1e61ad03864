package studio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSampleDataset(t *testing.T) {
	s := newStudio(t)
	dir, err := s.SampleDataset()
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(s.DataDir(), SampleDirName) {
		t.Fatalf("dir %s", dir)
	}
	d, err := s.OpenDataset(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Layout() != LayoutTutorial {
		t.Fatalf("layout %s", d.Layout())
	}
	items := d.Items()
	if len(items) < 8 || len(items) > 12 {
		t.Fatalf("%d sample images", len(items))
	}
	for _, it := range items {
		if it.Err != nil || it.Width != 1024 || it.Height != 1024 || it.Format != "png" || len(it.Warnings) != 0 {
			t.Fatalf("sample item %+v", it)
		}
	}
	if un := d.Uncaptioned(); len(un) != 2 {
		t.Fatalf("%d uncaptioned, want 2", len(un))
	}
	if len(d.Others()) != 0 {
		t.Fatalf("others %v", d.Others())
	}
	// The images are real drawings: not blank, and different from each other.
	first, err := LoadImage(items[0].ImagePath)
	if err != nil {
		t.Fatal(err)
	}
	colours := map[[3]uint32]bool{}
	for y := 0; y < 1024; y += 7 {
		for x := 0; x < 1024; x += 7 {
			r, g, b, _ := first.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	if len(colours) < 5 {
		t.Fatalf("sample image has only %d colours", len(colours))
	}
	a, _ := os.ReadFile(items[0].ImagePath)
	b, _ := os.ReadFile(items[1].ImagePath)
	if bytes.Equal(a, b) {
		t.Fatal("two sample images are identical")
	}
	// Deterministic: drawing again gives the same bytes.
	other := filepath.Join(t.TempDir(), "again")
	if err := writeSample(other); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(other, "images", filepath.Base(items[0].ImagePath))); !bytes.Equal(a, again) {
		t.Fatal("sample images are not deterministic")
	}
	// User edits survive a second call.
	first0 := items[0]
	if err := d.Save(first0.Rel, "my own caption"); err != nil {
		t.Fatal(err)
	}
	un := d.Uncaptioned()[0]
	if dir2, err := s.SampleDataset(); err != nil || dir2 != dir {
		t.Fatalf("second call: %s %v", dir2, err)
	}
	if got := readText(t, first0.CaptionPath); got != "my own caption" {
		t.Fatalf("user edit overwritten: %q", got)
	}
	assertNoFile(t, un.CaptionPath)
	// A deleted sample folder is written again.
	os.RemoveAll(dir)
	if _, err := s.SampleDataset(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first0.ImagePath); err != nil {
		t.Fatal(err)
	}
}
