package ui

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// largeN is the size of the large dataset: what a big LoRA dataset holds.
const largeN = 5000

// largeDataset writes n 8×8 images; every even one has a caption
// "photo i, tag<i%50>, shared tag", so each tagK (K even) captions n/50 of
// them.
func largeDataset(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	tmpl := filepath.Join(tb.TempDir(), "one.png")
	writePNG(tb, tmpl, 8, 8)
	pngBytes := readFile(tb, tmpl)
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("img%05d.png", i))
		writeFile(tb, p, pngBytes)
		if i%2 == 0 {
			writeFile(tb, p[:len(p)-4]+".txt", fmt.Sprintf("photo %d, tag%d, shared tag", i, i%50))
		}
	}
	return dir
}

// TestLargeDataset opens 5,000 images and does what a user does with them:
// the grid holds them all, a tag filter shows exactly its images, moving
// with autosave writes each caption, and jumping finds the next
// uncaptioned image. The times a user waits are logged, not bounded (a
// loaded machine is no defect); BenchmarkLargeDataset measures them.
func TestLargeDataset(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes 5,000 images")
	}
	dir := largeDataset(t, largeN)
	m, st := newTestWindow(t, "")
	defer holdUI()()
	start := time.Now()
	d, err := st.OpenDataset(dir)
	if err != nil {
		t.Fatal(err)
	}
	openTime := time.Since(start)
	start = time.Now()
	m.Dataset.SetDataset(d)
	showTime := time.Since(start)
	s := m.Dataset
	if len(s.visible) != largeN {
		t.Fatalf("grid holds %d images, want %d", len(s.visible), largeN)
	}

	start = time.Now()
	s.filter.SetText("tag8")
	filterTime := time.Since(start)
	if len(s.visible) != largeN/50 {
		t.Errorf("filter tag8 shows %d images, want the %d captioned with it", len(s.visible), largeN/50)
	}
	s.filter.SetText("")
	if len(s.visible) != largeN {
		t.Fatalf("cleared filter shows %d images, want %d", len(s.visible), largeN)
	}

	const moves = 40
	first := s.Current()
	start = time.Now()
	for i := 0; i < moves; i++ {
		typeCaption(m, true, fmt.Sprintf("caption %d", i))
		press(m.Window, altRight)
	}
	moveTime := time.Since(start) / moves
	if first != "img00000.png" {
		t.Fatalf("the walk started at %s, want img00000.png", first)
	}
	for _, i := range []int{0, 1, moves - 1} {
		if got, want := readFile(t, filepath.Join(dir, fmt.Sprintf("img%05d.txt", i))), fmt.Sprintf("caption %d", i); got != want {
			t.Fatalf("img%05d.txt = %q after the autosaving walk, want %q", i, got, want)
		}
	}

	// the walk captioned 0..moves-1; the next uncaptioned is the first odd
	// image after them
	start = time.Now()
	press(m.Window, ctrlJ)
	jumpTime := time.Since(start)
	if want := fmt.Sprintf("img%05d.png", moves+1-moves%2); s.Current() != want {
		t.Errorf("Ctrl+J went to %s, want %s", s.Current(), want)
	}

	t.Logf("%d images: studio open %v, screen shows them in %v, filter %v, move with autosave %v each, jump to uncaptioned %v",
		largeN, openTime, showTime, filterTime, moveTime, jumpTime)
}

// BenchmarkLargeDataset times what a user waits for on a 5,000-image
// dataset: the screen showing it, a tag filter (set and cleared), and one
// move with autosave.
func BenchmarkLargeDataset(b *testing.B) {
	dir := largeDataset(b, largeN)
	m, st := newTestWindow(b, "")
	defer holdUI()()
	d, err := st.OpenDataset(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("show", func(b *testing.B) {
		for b.Loop() {
			m.Dataset.SetDataset(d)
		}
	})
	m.Dataset.SetDataset(d)
	b.Run("filter", func(b *testing.B) {
		for b.Loop() {
			m.Dataset.filter.SetText("tag8")
			m.Dataset.filter.SetText("")
		}
	})
	b.Run("move-autosave", func(b *testing.B) {
		i := 0
		for b.Loop() {
			typeCaption(m, true, fmt.Sprintf("caption %d", i))
			press(m.Window, altRight)
			i++
		}
	})
}
