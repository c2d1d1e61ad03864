package ui

import (
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"lorastudio/app/studio"
	"lorastudio/storage"
)

// crashedBulk makes the state a bulk edit killed part-way leaves: the plan for a.png and
// d.png ("ohwx, " prepended) recorded in the database, a.txt written, d.txt not yet. It
// returns the window's studio (same data directory) and the dataset folder.
func crashedBulk(t *testing.T) (*studio.Studio, string) {
	t.Helper()
	dir := makeDataset(t)
	st, err := studio.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d, err := st.OpenDataset(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []storage.IntentFile
	for _, rel := range []string{"a.png", "d.png"} {
		img, err := st.DB().ImageByRel(d.ID(), rel)
		if err != nil {
			t.Fatal(err)
		}
		it, _ := d.Item(rel)
		files = append(files, storage.IntentFile{ImageID: img.ID, Rel: rel, Old: it.Caption, New: "ohwx, " + it.Caption})
	}
	if _, err := st.DB().CreateBulkIntent(d.ID(), `prepend "ohwx"`, files); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a.txt"), "ohwx, a cat, sitting") // written, then the kill
	return st, dir
}

// openCrashed opens the dataset in a real main window on st and returns the window and the
// dialog it shows.
func openCrashed(t *testing.T, st *studio.Studio, dir string) (*MainWindow, fyne.CanvasObject) {
	t.Helper()
	m := NewMainWindow(test.NewTempApp(t), st, "test")
	m.Window.Resize(fyne.NewSize(1280, 800))
	if err := m.Dataset.Open(dir); err != nil {
		t.Fatal(err)
	}
	d := overlay(t, m.Window)
	msg := texts(d)
	for _, want := range []string{"did not finish", "1 of 2 captions written", `prepend "ohwx"`} {
		if !strings.Contains(msg, want) {
			t.Fatalf("the dialog lacks %q:\n%s", want, msg)
		}
	}
	for _, b := range []string{"Finish", "Roll back", "Later"} {
		if len(buttons(d, b)) != 1 {
			t.Fatalf("the dialog has no %s button:\n%s", b, msg)
		}
	}
	return m, d
}

// TestUnfinishedBulkDialog: opening a dataset with a bulk edit cut short asks once; Finish
// writes the rest, Roll back restores every caption, Later leaves them and the batch as they
// are, and the caption the crash had written is part of the batch, not an external change.
func TestUnfinishedBulkDialog(t *testing.T) {
	t.Run("finish", func(t *testing.T) {
		st, dir := crashedBulk(t)
		m, d := openCrashed(t, st, dir)
		test.Tap(buttons(d, "Finish")[0])
		if got := readFile(t, filepath.Join(dir, "d.txt")); got != "ohwx, a dog, sitting" {
			t.Fatalf("d.txt = %q after Finish", got)
		}
		if got := readFile(t, filepath.Join(dir, "a.txt")); got != "ohwx, a cat, sitting" {
			t.Fatalf("a.txt = %q after Finish", got)
		}
		if !strings.Contains(m.Dataset.StatusText(), "Finished the interrupted bulk edit") {
			t.Errorf("status = %q", m.Dataset.StatusText())
		}
		if m.Window.Canvas().Overlays().Top() != nil {
			t.Error("a dialog is still open after Finish")
		}
		// One undo takes back the whole batch, the caption the crash wrote included.
		m.Dataset.UndoLastBulk()
		for name, want := range map[string]string{"a.txt": "a cat, sitting", "d.txt": "a dog, sitting"} {
			if got := readFile(t, filepath.Join(dir, name)); got != want {
				t.Errorf("%s = %q after undoing the finished batch", name, got)
			}
		}
		hist, err := m.Dataset.Dataset().History("a.png")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range hist {
			if r.Origin == storage.OriginExternal {
				t.Errorf("a.png's history has an external revision: %+v", hist)
			}
		}
	})
	t.Run("roll back", func(t *testing.T) {
		st, dir := crashedBulk(t)
		m, d := openCrashed(t, st, dir)
		test.Tap(buttons(d, "Roll back")[0])
		for name, want := range map[string]string{"a.txt": "a cat, sitting", "d.txt": "a dog, sitting"} {
			if got := readFile(t, filepath.Join(dir, name)); got != want {
				t.Errorf("%s = %q after Roll back", name, got)
			}
		}
		if _, ok, _ := m.Dataset.Dataset().UnfinishedBatch(); ok {
			t.Error("the batch is still unfinished after Roll back")
		}
	})
	t.Run("later", func(t *testing.T) {
		st, dir := crashedBulk(t)
		m, d := openCrashed(t, st, dir)
		test.Tap(buttons(d, "Later")[0])
		if m.Window.Canvas().Overlays().Top() != nil {
			t.Fatal("a dialog is still open after Later")
		}
		if got := readFile(t, filepath.Join(dir, "d.txt")); got != "a dog, sitting" {
			t.Errorf("d.txt = %q after Later", got)
		}
		u, ok, err := m.Dataset.Dataset().UnfinishedBatch()
		if err != nil || !ok || u.AtNew != 1 || u.AtOld != 1 {
			t.Errorf("after Later: %+v %v %v", u, ok, err)
		}
	})
}
