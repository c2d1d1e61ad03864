package ui

import (
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
)

// TestSamplesGridKeys fills the grid (two steps, two prompts, one cell
// missing) and walks the large view with the arrow keys.
func TestSamplesGridKeys(t *testing.T) {
	test.NewTempApp(t)
	w := test.NewTempWindow(t, nil)
	g := newSamplesGrid(w)
	w.SetContent(g.content)
	dir := t.TempDir()
	img := func(name string) string {
		p := filepath.Join(dir, name)
		writePNG(t, p, 16, 16)
		return p
	}
	g.add(20, "a cat", img("20a.png"))
	g.add(10, "a cat", img("10a.png"))
	g.add(10, "a dog", img("10b.png"))
	if g.count() != 3 || len(g.steps) != 2 || g.steps[0] != 10 || len(g.prompts) != 2 {
		t.Fatalf("grid: %d images, steps %v, prompts %v", g.count(), g.steps, g.prompts)
	}
	// Rows newest first: the step-20 row, then step 10; each with a cell per prompt.
	if n := len(g.rows.Objects); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	g.open(0, 0) // step 10, a cat
	v := g.viewer
	key := func(k fyne.KeyName) { v.TypedKey(&fyne.KeyEvent{Name: k}) }
	check := func(step int, prompt, file string) {
		t.Helper()
		s, p := v.Current()
		if s != step || p != prompt || filepath.Base(v.img.File) != file {
			t.Fatalf("showing step %d %q (%s), want step %d %q (%s)", s, p, filepath.Base(v.img.File), step, prompt, file)
		}
	}
	check(10, "a cat", "10a.png")
	key(fyne.KeyRight)
	check(10, "a dog", "10b.png")
	key(fyne.KeyUp)
	check(20, "a dog", ".") // no image of the dog at step 20
	if !strings.Contains(v.caption.Text, "no image at this step") {
		t.Fatalf("caption %q", v.caption.Text)
	}
	key(fyne.KeyUp) // already the newest step
	key(fyne.KeyLeft)
	check(20, "a cat", "20a.png")
	key(fyne.KeyDown)
	key(fyne.KeyDown)
	check(10, "a cat", "10a.png")
	g.clear()
	if g.count() != 0 || len(g.rows.Objects) != 1 {
		t.Fatal("clear left samples")
	}
}
