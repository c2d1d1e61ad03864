package ui

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestLargeDatasetStaysResponsive opens 5,000 images and times what a user
// waits for: showing the dataset, moving with autosave, filtering, and
// the grid's cell updates (virtualized: only visible cells are built).
func TestLargeDatasetStaysResponsive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes 5,000 images")
	}
	const n = 5000
	dir := t.TempDir()
	start := time.Now()
	tmpl := filepath.Join(t.TempDir(), "one.png")
	writePNG(t, tmpl, 8, 8)
	pngBytes := readFile(t, tmpl)
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("img%05d.png", i))
		writeFile(t, p, pngBytes)
		if i%2 == 0 {
			writeFile(t, p[:len(p)-4]+".txt", fmt.Sprintf("photo %d, tag%d, shared tag", i, i%50))
		}
	}
	t.Logf("wrote %d images in %v", n, time.Since(start))

	m, st := newTestWindow(t, "")
	start = time.Now()
	d, err := st.OpenDataset(dir)
	if err != nil {
		t.Fatal(err)
	}
	openTime := time.Since(start)
	start = time.Now()
	m.Dataset.SetDataset(d)
	showTime := time.Since(start)
	s := m.Dataset
	if len(s.visible) != n {
		t.Fatalf("grid holds %d images, want %d", len(s.visible), n)
	}

	const moves = 40
	start = time.Now()
	for i := 0; i < moves; i++ {
		typeCaption(m, true, fmt.Sprintf("caption %d", i))
		press(m.Window, altRight)
	}
	moveTime := time.Since(start) / moves
	if got := readFile(t, filepath.Join(dir, "img00001.txt")); got != "caption 1" {
		t.Fatalf("img00001.txt = %q after the autosaving walk", got)
	}

	start = time.Now()
	s.filter.SetText("tag7")
	filterTime := time.Since(start)
	s.filter.SetText("")

	start = time.Now()
	press(m.Window, ctrlJ)
	jumpTime := time.Since(start)

	t.Logf("5000 images: studio open %v, screen shows them in %v, move with autosave %v each, filter %v, jump to uncaptioned %v",
		openTime, showTime, moveTime, filterTime, jumpTime)
	// Generous bounds for a loaded 2-core machine; the log has the numbers.
	if showTime > 3*time.Second || moveTime > time.Second || filterTime > 2*time.Second {
		t.Errorf("too slow: show %v, move %v, filter %v", showTime, moveTime, filterTime)
	}
}
