package ui

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// writePNG writes a w×h PNG with a colour gradient to p.
func writePNG(t testing.TB, p string, w, h int) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
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
}

// writeFile writes text to p.
func writeFile(t testing.TB, p, text string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFile returns the text of p, or "<missing>" when it does not exist.
func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// makeDataset writes a kohya-style dataset: a.png and d.png captioned, b.png
// and c.png not, a broken e.png, and a notes.md that is not an image.
func makeDataset(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "a.png"), 64, 48)
	writeFile(t, filepath.Join(dir, "a.txt"), "a cat, sitting")
	writePNG(t, filepath.Join(dir, "b.png"), 40, 40)
	writePNG(t, filepath.Join(dir, "c.png"), 32, 64)
	writePNG(t, filepath.Join(dir, "d.png"), 48, 48)
	writeFile(t, filepath.Join(dir, "d.txt"), "a dog, sitting")
	writeFile(t, filepath.Join(dir, "e.png"), "this is not a png")
	writeFile(t, filepath.Join(dir, "notes.md"), "# notes")
	return dir
}

// waitFor polls cond until it holds and fails the test, with what cond last
// saw, if it does not within the deadline. The deadline is not a speed
// limit: a passing run returns as soon as the background work is done, and
// the deadline only keeps a defect from hanging the run.
func waitFor(t *testing.T, what string, cond func() (ok bool, saw string)) {
	t.Helper()
	const limit = 30 * time.Second
	deadline := time.Now().Add(limit)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last saw: %s", limit, what, saw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// holdUI makes the test goroutine the UI goroutine until the returned
// func runs: background updates (thumbnails arriving, see backgroundMu) wait
// instead of laying out a screen the test is driving. Use it as
// `defer holdUI()()` in a test that never waits for background work, after
// newTestWindow (its deferred unlock runs before the studio's cleanup closes
// the thumbnail workers, which may be waiting for the lock).
func holdUI() (release func()) {
	backgroundMu.Lock()
	return backgroundMu.Unlock
}

// newTestWindow builds the real main window on a real studio (temp data
// directory) in Fyne's headless test driver and opens dir in it.
func newTestWindow(t testing.TB, dir string) (*MainWindow, *studio.Studio) {
	t.Helper()
	a := test.NewTempApp(t)
	st, err := studio.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Building the window and opening dir is UI work on this goroutine: the
	// first thumbnails and preview wait until it is done (see holdUI).
	backgroundMu.Lock()
	defer backgroundMu.Unlock()
	m := NewMainWindow(a, st, "test")
	m.Window.Resize(fyne.NewSize(1280, 800))
	if dir != "" {
		if err := m.Dataset.Open(dir); err != nil {
			t.Fatal(err)
		}
	}
	return m, st
}

// press delivers a shortcut the way the desktop driver does: to the main
// menu item with that shortcut, else to the focused widget if it handles
// shortcuts, else to the canvas.
func press(w fyne.Window, s fyne.Shortcut) {
	if menu := w.MainMenu(); menu != nil {
		for _, m := range menu.Items {
			for _, it := range m.Items {
				if it.Shortcut != nil && it.Shortcut.ShortcutName() == s.ShortcutName() {
					it.Action()
					return
				}
			}
		}
	}
	pressNoMenu(w, s)
}

// pressNoMenu delivers a shortcut as a driver without a main menu does.
func pressNoMenu(w fyne.Window, s fyne.Shortcut) {
	if f, ok := w.Canvas().Focused().(fyne.Shortcutable); ok {
		f.TypedShortcut(s)
		return
	}
	w.Canvas().(fyne.Shortcutable).TypedShortcut(s)
}

// Shortcuts as the desktop driver reports them.
var (
	ctrlS      = &desktop.CustomShortcut{KeyName: fyne.KeyS, Modifier: ctrl}
	ctrlJ      = &desktop.CustomShortcut{KeyName: fyne.KeyJ, Modifier: ctrl}
	altRight   = &desktop.CustomShortcut{KeyName: fyne.KeyRight, Modifier: fyne.KeyModifierAlt}
	altLeft    = &desktop.CustomShortcut{KeyName: fyne.KeyLeft, Modifier: fyne.KeyModifierAlt}
	ctrlDown   = &desktop.CustomShortcut{KeyName: fyne.KeyDown, Modifier: ctrl}
	ctrlUp     = &desktop.CustomShortcut{KeyName: fyne.KeyUp, Modifier: ctrl}
	ctrlShiftZ = &desktop.CustomShortcut{KeyName: fyne.KeyZ, Modifier: ctrl | fyne.KeyModifierShift}
)

// typeCaption focuses the caption editor, replaces its text and types more.
func typeCaption(m *MainWindow, replace bool, text string) {
	e := m.Dataset.editor
	m.Window.Canvas().Focus(e)
	if replace {
		e.SetText("")
	}
	e.CursorRow, e.CursorColumn = 0, len([]rune(e.Text))
	if strings.Contains(e.Text, "\n") {
		e.CursorColumn = 0
	}
	test.Type(e, text)
}

// overlay returns the top overlay (an open dialog) or fails.
func overlay(t *testing.T, w fyne.Window) fyne.CanvasObject {
	t.Helper()
	o := w.Canvas().Overlays().Top()
	if o == nil {
		t.Fatal("no dialog is open")
	}
	return o
}

// texts collects the text of every label in o.
func texts(o fyne.CanvasObject) string {
	var b strings.Builder
	for _, x := range test.LaidOutObjects(o) {
		if l, ok := x.(*widget.Label); ok {
			b.WriteString(l.Text)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// buttons returns the buttons in o whose text is label, in layout order.
func buttons(o fyne.CanvasObject, label string) []*widget.Button {
	var out []*widget.Button
	for _, x := range test.LaidOutObjects(o) {
		if b, ok := x.(*widget.Button); ok && b.Text == label {
			out = append(out, b)
		}
	}
	return out
}

// entries returns the text entries in o, in layout order.
func entries(o fyne.CanvasObject) []*escEntry {
	var out []*escEntry
	for _, x := range test.LaidOutObjects(o) {
		if e, ok := x.(*escEntry); ok {
			out = append(out, e)
		}
	}
	return out
}
