package ui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

func TestOpenShowsFirstImageProgressAndWarnings(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	if s.Current() != "a.png" {
		t.Fatalf("current = %q, want a.png", s.Current())
	}
	if s.editor.Text != "a cat, sitting" {
		t.Errorf("editor = %q, want the caption of a.png", s.editor.Text)
	}
	if got := s.progress.Text; got != "2 / 5 captioned" {
		t.Errorf("progress = %q, want 2 / 5 captioned", got)
	}
	if !strings.Contains(s.factsLabel.Text, "64 × 48 px") || !strings.Contains(s.factsLabel.Text, "PNG") || !strings.Contains(s.factsLabel.Text, "repeats 1") {
		t.Errorf("facts = %q, want size, format and repeats", s.factsLabel.Text)
	}
	var all []string
	for _, w := range s.warnings {
		all = append(all, w.text)
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{"a.png: 64 × 48 is smaller than the 1024", "e.png: unreadable", "notes.md: not an image"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
	if len(s.visible) != 5 {
		t.Errorf("grid shows %d images, want 5", len(s.visible))
	}
	// a caption file that is not UTF-8 is one warning, named once
	if err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte("caf\xe9"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Rescan()
	n := 0
	for _, w := range s.warnings {
		if strings.HasPrefix(w.text, "b.png:") && strings.Contains(w.text, "UTF-8") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d warnings about b.txt not being UTF-8, want 1: %v", n, s.warnings)
	}
	if m.Window.Title() != Title+" — "+filepath.Base(dir) {
		t.Errorf("title = %q", m.Window.Title())
	}
	if !strings.Contains(texts(m.settings.content), dir) {
		t.Errorf("settings do not show the dataset %s", dir)
	}
}

func TestTypeAndSaveWithCtrlS(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	m.Window.Canvas().Unfocus()
	press(m.Window, altRight) // nothing focused: the canvas shortcut
	if s.Current() != "b.png" {
		t.Fatalf("after Alt+Right current = %q, want b.png", s.Current())
	}
	typeCaption(m, true, "a red bicycle")
	if !s.Dirty() {
		t.Fatal("editor not dirty after typing")
	}
	press(m.Window, ctrlS) // the caption entry has focus
	if got := readFile(t, filepath.Join(dir, "b.txt")); got != "a red bicycle" {
		t.Fatalf("b.txt = %q after Ctrl+S", got)
	}
	if s.Dirty() {
		t.Error("editor still dirty after saving")
	}
	revs, err := s.Dataset().History("b.png")
	if err != nil {
		t.Fatal(err)
	}
	last := revs[len(revs)-1]
	if last.Text != "a red bicycle" || last.Origin != studio.OriginManual {
		t.Errorf("last revision = %+v, want the manual save", last)
	}
	if got := s.progress.Text; got != "3 / 5 captioned" {
		t.Errorf("progress = %q after saving, want 3 / 5", got)
	}
}

func TestNavigationShortcuts(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	m.Window.Canvas().Focus(s.editor) // shortcuts must work while typing
	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"Alt+Right", func() { press(m.Window, altRight) }, "b.png"},
		{"Ctrl+Down", func() { press(m.Window, ctrlDown) }, "c.png"},
		{"PageDown", func() { s.editor.TypedKey(&fyne.KeyEvent{Name: fyne.KeyPageDown}) }, "d.png"},
		{"Alt+Left", func() { press(m.Window, altLeft) }, "c.png"},
		{"PageUp", func() { s.editor.TypedKey(&fyne.KeyEvent{Name: fyne.KeyPageUp}) }, "b.png"},
		{"Ctrl+Up", func() { press(m.Window, ctrlUp) }, "a.png"},
		{"Ctrl+Up at the start", func() { press(m.Window, ctrlUp) }, "a.png"},
		{"Ctrl+J", func() { press(m.Window, ctrlJ) }, "b.png"},
		{"Ctrl+J again", func() { press(m.Window, ctrlJ) }, "c.png"},
	}
	for _, st := range steps {
		st.do()
		if s.Current() != st.want {
			t.Fatalf("after %s current = %q, want %q", st.name, s.Current(), st.want)
		}
		if sel := s.index[s.Current()]; len(s.visible) <= sel || s.visible[sel] != st.want {
			t.Fatalf("after %s the grid does not hold %s", st.name, st.want)
		}
	}
	if m.Window.Canvas().Focused() != s.editor {
		t.Error("keyboard navigation left the focus outside the caption editor")
	}
	// Clicking a grid cell moves too.
	s.grid.Select(3)
	if s.Current() != "d.png" || s.editor.Text != "a dog, sitting" {
		t.Fatalf("grid select: current %q editor %q", s.Current(), s.editor.Text)
	}
	// PageDown on the canvas (nothing focused).
	m.Window.Canvas().Unfocus()
	m.Window.Canvas().OnTypedKey()(&fyne.KeyEvent{Name: fyne.KeyPageDown})
	if s.Current() != "e.png" {
		t.Fatalf("canvas PageDown: current %q, want e.png", s.Current())
	}
}

func TestAutosaveOnMove(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	press(m.Window, ctrlJ) // b.png
	typeCaption(m, true, "a blue door")
	press(m.Window, altRight)
	if got := readFile(t, filepath.Join(dir, "b.txt")); got != "a blue door" {
		t.Fatalf("b.txt = %q after moving on, want the autosaved caption", got)
	}
	if s.Current() != "c.png" {
		t.Fatalf("current = %q, want c.png", s.Current())
	}
	typeCaption(m, true, "a green field")
	press(m.Window, ctrlJ) // jumping saves too
	if got := readFile(t, filepath.Join(dir, "c.txt")); got != "a green field" {
		t.Fatalf("c.txt = %q after Ctrl+J", got)
	}
	s.grid.Select(0) // a click in the grid saves too
	if s.Current() != "a.png" {
		t.Fatalf("current = %q after clicking a.png", s.Current())
	}
	typeCaption(m, true, "a cat, standing")
	m.RequestClose() // closing the window saves (the close intercept)
	if got := readFile(t, filepath.Join(dir, "a.txt")); got != "a cat, standing" {
		t.Fatalf("a.txt = %q after closing", got)
	}
}

func TestUndoRedoRestoreFile(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	a := filepath.Join(dir, "a.txt")
	typeCaption(m, false, ", smiling")
	press(m.Window, ctrlS)
	if got := readFile(t, a); got != "a cat, sitting, smiling" {
		t.Fatalf("a.txt = %q after save", got)
	}
	press(m.Window, &fyne.ShortcutUndo{}) // Ctrl+Z in the entry: studio undo
	if got := readFile(t, a); got != "a cat, sitting" {
		t.Fatalf("a.txt = %q after Ctrl+Z, want the imported caption", got)
	}
	if s.editor.Text != "a cat, sitting" || s.Dirty() {
		t.Fatalf("editor = %q (dirty %v) after undo", s.editor.Text, s.Dirty())
	}
	press(m.Window, ctrlShiftZ)
	if got := readFile(t, a); got != "a cat, sitting, smiling" {
		t.Fatalf("a.txt = %q after Ctrl+Shift+Z", got)
	}
	press(m.Window, &fyne.ShortcutUndo{})
	press(m.Window, &fyne.ShortcutRedo{}) // Ctrl+Y
	if got := readFile(t, a); got != "a cat, sitting, smiling" {
		t.Fatalf("a.txt = %q after Ctrl+Z, Ctrl+Y", got)
	}
	// Undo with unsaved typing saves it first, so redo brings it back.
	typeCaption(m, true, "typed but not saved")
	press(m.Window, &fyne.ShortcutUndo{})
	if got := readFile(t, a); got != "a cat, sitting, smiling" {
		t.Fatalf("a.txt = %q after undoing unsaved typing", got)
	}
	press(m.Window, ctrlShiftZ)
	if got := readFile(t, a); got != "typed but not saved" || s.editor.Text != got {
		t.Fatalf("a.txt = %q, editor %q after redo", got, s.editor.Text)
	}
	// Nothing to undo on a fresh image: the status line says so, naming it.
	press(m.Window, ctrlJ)
	press(m.Window, &fyne.ShortcutUndo{})
	if !strings.Contains(s.StatusText(), "b.png") {
		t.Errorf("status after a failed undo = %q, want it to name b.png", s.StatusText())
	}
	// Ctrl+Z in the filter box is the filter's own undo.
	m.Window.Canvas().Focus(s.filter)
	test.Type(s.filter, "dog")
	press(m.Window, &fyne.ShortcutUndo{})
	if got := readFile(t, a); got != "typed but not saved" {
		t.Errorf("Ctrl+Z in the filter box changed a.txt to %q", got)
	}
}

func TestConflictDialog(t *testing.T) {
	for _, choice := range []string{"Keep mine", "Keep theirs"} {
		t.Run(choice, func(t *testing.T) {
			dir := makeDataset(t)
			m, _ := newTestWindow(t, dir)
			defer holdUI()()
			s := m.Dataset
			a := filepath.Join(dir, "a.txt")
			typeCaption(m, true, "draft")
			press(m.Window, ctrlS)
			typeCaption(m, true, "my caption")
			writeFile(t, a, "their caption") // another program writes the file
			press(m.Window, ctrlS)
			d := overlay(t, m.Window)
			msg := texts(d)
			if !strings.Contains(msg, "a.txt was changed by another program") || !strings.Contains(msg, "their caption") || !strings.Contains(msg, "my caption") {
				t.Fatalf("conflict dialog says:\n%s", msg)
			}
			if got := readFile(t, a); got != "their caption" {
				t.Fatalf("a.txt = %q while the dialog is open: nothing may be written", got)
			}
			// Moving on while the conflict is open stays on a.png.
			press(m.Window, altRight)
			if s.Current() != "a.png" {
				t.Fatalf("moved to %q with an unresolved conflict", s.Current())
			}
			d = overlay(t, m.Window)
			b := buttons(d, choice)
			if len(b) != 1 {
				t.Fatalf("dialog has %d %q buttons", len(b), choice)
			}
			test.Tap(b[0])
			want := "my caption"
			if choice == "Keep theirs" {
				want = "their caption"
			}
			if got := readFile(t, a); got != want {
				t.Fatalf("a.txt = %q after %s", got, choice)
			}
			if s.editor.Text != want || s.Dirty() {
				t.Fatalf("editor = %q (dirty %v) after %s", s.editor.Text, s.Dirty(), choice)
			}
			revs, err := s.Dataset().History("a.png")
			if err != nil {
				t.Fatal(err)
			}
			if last := revs[len(revs)-1]; last.Text != want {
				t.Errorf("last revision = %+v, want %q", last, want)
			}
			found := false
			for _, r := range revs {
				found = found || (r.Text == "their caption" && r.Origin == studio.OriginExternal)
			}
			if !found {
				t.Errorf("history lacks the other program's text as an external revision: %+v", revs)
			}
		})
	}
}

func TestChangedOnDiskWhileAwayIsReloaded(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	press(m.Window, altRight)
	writeFile(t, filepath.Join(dir, "a.txt"), "edited in another tool")
	press(m.Window, altLeft)
	if s.editor.Text != "edited in another tool" {
		t.Fatalf("editor = %q, want the text another program wrote", s.editor.Text)
	}
	if !strings.Contains(s.StatusText(), "a.png") {
		t.Errorf("status = %q, want a note naming a.png", s.StatusText())
	}
}

func TestHistoryDialogRestore(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	for _, text := range []string{"first", "second", "third"} {
		typeCaption(m, true, text)
		press(m.Window, ctrlS)
	}
	press(m.Window, key(fyne.KeyH, ctrl))
	d := overlay(t, m.Window)
	if !strings.Contains(texts(d), "4 saved revisions of a.png") {
		t.Fatalf("history dialog says:\n%s", texts(d))
	}
	restore := buttons(d, "Restore")
	if len(restore) != 4 {
		t.Fatalf("%d Restore buttons, want one per revision (4)", len(restore))
	}
	// Newest first: the last row is the imported caption.
	if !strings.Contains(texts(d), "import") || !strings.Contains(texts(d), "manual") {
		t.Errorf("rows lack origins:\n%s", texts(d))
	}
	test.Tap(restore[3])
	if got := readFile(t, filepath.Join(dir, "a.txt")); got != "a cat, sitting" {
		t.Fatalf("a.txt = %q after restoring the oldest revision", got)
	}
	if s.editor.Text != "a cat, sitting" {
		t.Errorf("editor = %q after restore", s.editor.Text)
	}
	revs, _ := s.Dataset().History("a.png")
	if last := revs[len(revs)-1]; last.Origin != studio.OriginRestore {
		t.Errorf("last revision origin = %q, want restore", last.Origin)
	}
}

func TestBulkPreviewApplyUndo(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	press(m.Window, key(fyne.KeyB, ctrl))
	d := overlay(t, m.Window)
	apply := func() *widget.Button {
		for _, x := range test.LaidOutObjects(d) {
			if b, ok := x.(*widget.Button); ok && strings.HasPrefix(b.Text, "Apply") {
				return b
			}
		}
		t.Fatal("no Apply button")
		return nil
	}
	if !apply().Disabled() {
		t.Fatal("Apply enabled before any text was typed")
	}
	es := entries(d)
	if len(es) < 1 {
		t.Fatal("no entry in the bulk dialog")
	}
	test.Type(es[0], "ohwx")
	msg := texts(d)
	if !strings.Contains(msg, "of 5 captions change") {
		t.Fatalf("bulk preview says:\n%s", msg)
	}
	if !strings.Contains(msg, "a.png") || !strings.Contains(msg, "before: a cat, sitting") {
		t.Errorf("preview lacks a.png's before/after:\n%s", msg)
	}
	if apply().Disabled() {
		t.Fatal("Apply disabled after a preview with changes")
	}
	test.Tap(apply())
	got := readFile(t, filepath.Join(dir, "a.txt"))
	if !strings.HasPrefix(got, "ohwx") || !strings.Contains(got, "a cat, sitting") {
		t.Fatalf("a.txt = %q after prepending ohwx", got)
	}
	if s.editor.Text != got {
		t.Errorf("editor = %q, file %q after the bulk edit", s.editor.Text, got)
	}
	if !strings.Contains(s.StatusText(), "Bulk edit changed") {
		t.Errorf("status = %q", s.StatusText())
	}
	test.Tap(buttons(d, "Undo last bulk edit")[0])
	if got := readFile(t, filepath.Join(dir, "a.txt")); got != "a cat, sitting" {
		t.Fatalf("a.txt = %q after undoing the bulk edit", got)
	}
	if got := readFile(t, filepath.Join(dir, "b.txt")); got != "<missing>" && got != "" {
		t.Errorf("b.txt = %q after undoing the bulk edit", got)
	}
}

func TestFilterTagsAndUncaptioned(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	test.Type(s.filter, "dog")
	if strings.Join(s.visible, ",") != "d.png" {
		t.Fatalf("filter dog shows %v", s.visible)
	}
	s.filter.SetText("")
	// The tag panel: "sitting" is in two captions; clicking it filters.
	idx := -1
	for i, tc := range s.tags {
		if tc.Tag == "sitting" {
			idx = i
			if tc.Count != 2 {
				t.Errorf("tag sitting counted %d, want 2", tc.Count)
			}
		}
	}
	if idx < 0 {
		t.Fatalf("tags %v lack sitting", s.tags)
	}
	s.tagList.Select(idx)
	if s.filter.Text != "sitting" || strings.Join(s.visible, ",") != "a.png,d.png" {
		t.Fatalf("tag click: filter %q shows %v", s.filter.Text, s.visible)
	}
	s.filter.SetText("")
	s.uncapOnly.SetChecked(true)
	if strings.Join(s.visible, ",") != "b.png,c.png,e.png" {
		t.Fatalf("uncaptioned only shows %v", s.visible)
	}
	// Jumping to an image hidden by the filter clears the filter.
	s.uncapOnly.SetChecked(false)
	test.Type(s.filter, "dog")
	press(m.Window, ctrlJ)
	if s.Current() != "b.png" || s.filter.Text != "" {
		t.Fatalf("Ctrl+J under a filter: current %q, filter %q", s.Current(), s.filter.Text)
	}
}

func TestTilesMarkUncaptionedAndBroken(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	s := m.Dataset
	want := map[string]string{"a.png": "", "b.png": "NO CAPTION", "e.png": "UNREADABLE"}
	for rel, badge := range want {
		tl := newThumbTile()
		s.updateTile(s.index[rel], tl)
		got := ""
		if tl.badgeBox.Visible() {
			got = tl.badgeText.Text
		}
		if got != badge || tl.rel != rel {
			t.Errorf("tile %s: badge %q rel %q, want %q", rel, got, tl.rel, badge)
		}
	}
	// Thumbnails are made in the background (the grid asked for them when it
	// was laid out) and then come from the cache.
	tl := newThumbTile()
	waitFor(t, "the thumbnail of c.png", func() (bool, string) {
		s.updateTile(s.index["c.png"], tl)
		return tl.img.Image != nil, "a tile with the placeholder"
	})
	if b := tl.img.Image.Bounds(); b.Dx() != 32 || b.Dy() != 64 {
		t.Errorf("thumbnail of the 32×64 c.png is %v (a small image is not enlarged)", b)
	}
	// The grid's own tile for c.png got it too.
	found := false
	for _, o := range test.LaidOutObjects(s.grid) {
		if gt, ok := o.(*thumbTile); ok && gt.rel == "c.png" {
			found = true
			waitFor(t, "the grid's tile for c.png to show its thumbnail", func() (bool, string) {
				return gt.img.Image != nil, "the placeholder"
			})
		}
	}
	if !found {
		t.Error("the grid has no tile for c.png")
	}
	// Once cached, a new tile gets it at once.
	tl2 := newThumbTile()
	s.updateTile(s.index["c.png"], tl2)
	if tl2.img.Image == nil {
		t.Error("a cached thumbnail was not shown at once")
	}
}

func TestShortcutsAreListed(t *testing.T) {
	m, _ := newTestWindow(t, "")
	defer holdUI()()
	menu := m.Window.MainMenu()
	if menu == nil {
		t.Fatal("no main menu")
	}
	var labels []string
	for _, mm := range menu.Items {
		for _, it := range mm.Items {
			if it.Shortcut != nil {
				labels = append(labels, it.Label+"="+shortcutText(it.Shortcut))
			}
		}
	}
	got := strings.Join(labels, " ")
	for _, want := range []string{"Save caption=Ctrl+S", "Next image=Alt+Right", "Next uncaptioned image=Ctrl+J", "Redo caption change=Ctrl+Shift+Z"} {
		if !strings.Contains(got, want) {
			t.Errorf("menu shortcuts %q lack %q", got, want)
		}
	}
	if s := m.Dataset.emptyText.Text; s == "" {
		t.Error("the empty state says nothing")
	}
}

func TestShortPath(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"/data/sets/cats", 48, "/data/sets/cats"},
		{"/tmp/TestE2EStudioWindowScreenshot4175637746/001/data/sample-dataset", 40, "…/001/data/sample-dataset"},
		{"/a/very-long-folder-name-that-does-not-fit", 10, "…/very-long-folder-name-that-does-not-fit"},
	} {
		if got := shortPath(c.in, c.max); got != c.want {
			t.Errorf("shortPath(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

func TestShortcutsWithoutMainMenu(t *testing.T) {
	// Drivers without a main menu: the caption entry and the canvas handle shortcuts.
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	typeCaption(m, true, "via the entry")
	pressNoMenu(m.Window, ctrlS) // focused captionEntry
	if got := readFile(t, filepath.Join(dir, "a.txt")); got != "via the entry" {
		t.Fatalf("a.txt = %q after Ctrl+S in the entry", got)
	}
	pressNoMenu(m.Window, &fyne.ShortcutUndo{})
	if got := readFile(t, filepath.Join(dir, "a.txt")); got != "a cat, sitting" {
		t.Fatalf("a.txt = %q after Ctrl+Z in the entry: want the studio undo", got)
	}
	m.Window.Canvas().Unfocus()
	pressNoMenu(m.Window, &fyne.ShortcutRedo{}) // canvas
	if got := readFile(t, filepath.Join(dir, "a.txt")); got != "via the entry" {
		t.Fatalf("a.txt = %q after Ctrl+Y on the canvas", got)
	}
	pressNoMenu(m.Window, ctrlJ)
	if s.Current() != "b.png" {
		t.Fatalf("canvas Ctrl+J: current %q", s.Current())
	}
}

func TestDialogsBlockCommandsAndCloseOnEscape(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	defer holdUI()()
	s := m.Dataset
	press(m.Window, key(fyne.KeyB, ctrl))
	bulk := overlay(t, m.Window)
	press(m.Window, key(fyne.KeyH, ctrl)) // ignored: the bulk dialog is open
	press(m.Window, altRight)
	if overlay(t, m.Window) != bulk || s.Current() != "a.png" {
		t.Fatalf("a command ran under the bulk dialog (current %q)", s.Current())
	}
	es := entries(bulk)
	test.Type(es[0], "x")
	es[0].TypedKey(&fyne.KeyEvent{Name: fyne.KeyEscape})
	if m.Window.Canvas().Overlays().Top() != nil {
		t.Fatal("Escape in the bulk dialog's field did not close it")
	}
	press(m.Window, key(fyne.KeyH, ctrl))
	overlay(t, m.Window)
	m.Window.Canvas().Unfocus()
	m.Window.Canvas().OnTypedKey()(&fyne.KeyEvent{Name: fyne.KeyEscape})
	if m.Window.Canvas().Overlays().Top() != nil {
		t.Fatal("Escape did not close the history dialog")
	}
	// The conflict dialog needs an answer: Escape leaves it open.
	typeCaption(m, true, "mine")
	writeFile(t, filepath.Join(dir, "a.txt"), "theirs")
	press(m.Window, ctrlS)
	m.Window.Canvas().Unfocus()
	m.Window.Canvas().OnTypedKey()(&fyne.KeyEvent{Name: fyne.KeyEscape})
	if !strings.Contains(texts(overlay(t, m.Window)), "was changed by another program") {
		t.Fatal("Escape closed the conflict dialog")
	}
}

func TestRescanPicksUpNewFiles(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	s := m.Dataset
	press(m.Window, altRight) // b.png
	writePNG(t, filepath.Join(dir, "f.png"), 20, 20)
	writeFile(t, filepath.Join(dir, "f.txt"), "a new fish")
	press(m.Window, key(fyne.KeyR, ctrl))
	if len(s.visible) != 6 || s.Current() != "b.png" {
		t.Fatalf("after rescan: %d images, current %q", len(s.visible), s.Current())
	}
	if s.progress.Text != "3 / 6 captioned" {
		t.Errorf("progress = %q after rescan", s.progress.Text)
	}
	if !strings.Contains(s.StatusText(), "6 images") {
		t.Errorf("status = %q", s.StatusText())
	}
}

// openedIn returns a channel told the root of each dataset m finishes showing.
func openedIn(m *MainWindow) <-chan string {
	ch := make(chan string, 4)
	prev := m.Dataset.OnDatasetChanged
	m.Dataset.OnDatasetChanged = func(root string) {
		prev(root)
		ch <- root
	}
	return ch
}

// waitDataset waits for a dataset opened in the background.
func waitDataset(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case root := <-ch:
		return root
	case <-time.After(30 * time.Second):
		t.Fatal("no dataset opened in 30 s")
	}
	return ""
}

func TestOpenInitialSampleThenLastThenArgument(t *testing.T) {
	a := test.NewTempApp(t)
	dataDir := t.TempDir()
	st, err := studio.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMainWindow(a, st, "test")
	opened := openedIn(m)
	m.OpenInitial("") // first run: the sample dataset
	root := waitDataset(t, opened)
	if filepath.Dir(root) != dataDir {
		t.Fatalf("first run opened %s, want the sample dataset inside %s", root, dataDir)
	}
	caps, _ := filepath.Glob(filepath.Join(root, "captions", "*.txt"))
	if len(caps) == 0 || m.Dataset.Current() == "" {
		t.Fatalf("sample dataset %s: %d captions, current %q", root, len(caps), m.Dataset.Current())
	}
	// Open another folder; a later run starts there.
	other := makeDataset(t)
	if err := m.Dataset.Open(other); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st2, err := studio.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	m2 := NewMainWindow(a, st2, "test")
	opened2 := openedIn(m2)
	m2.OpenInitial("")
	if got := waitDataset(t, opened2); got != other {
		t.Fatalf("second run opened %s, want the last dataset %s", got, other)
	}
	// A folder on the command line wins.
	m3 := NewMainWindow(a, st2, "test")
	opened3 := openedIn(m3)
	m3.OpenInitial(root)
	if got := waitDataset(t, opened3); got != root {
		t.Fatalf("opened %s, want the folder given %s", got, root)
	}
}

func TestOpenFailureNamesTheFolder(t *testing.T) {
	m, _ := newTestWindow(t, "")
	missing := filepath.Join(t.TempDir(), "no-such-folder")
	m.Dataset.OpenAsync(missing)
	waitFor(t, "an error dialog naming "+missing, func() (bool, string) {
		if m.Window.Canvas().Overlays().Top() == nil {
			return false, "no dialog"
		}
		msg := texts(overlay(t, m.Window))
		return strings.Contains(msg, missing), "a dialog saying:\n" + msg
	})
	waitFor(t, "the empty state naming "+missing, func() (bool, string) {
		return strings.Contains(m.Dataset.emptyText.Text, missing), fmt.Sprintf("%q", m.Dataset.emptyText.Text)
	})
}
