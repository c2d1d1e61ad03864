package ui

import (
	"errors"
	"fmt"
	"image"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	xdraw "golang.org/x/image/draw"

	"lorastudio/app/studio"
)

// previewMax caps the long side of the preview image handed to the canvas,
// so that a 6000-pixel photo does not become a 6000-pixel texture.
const previewMax = 1536

// DatasetScreen is the captioning screen: a virtualized thumbnail grid, a
// large preview of the selected image with its facts, and the caption editor,
// with a filter, a tag-frequency panel, a warnings panel and a progress count.
type DatasetScreen struct {
	win fyne.Window
	st  *studio.Studio
	ds  *studio.Dataset

	visible []string       // Rel of each grid cell, in order
	index   map[string]int // Rel → cell
	cur     string         // Rel of the image being captioned ("" for none)
	saved   string         // the caption text of cur as last loaded or saved
	syncing bool           // true while the screen itself moves the grid selection
	preview int            // generation of the preview load in flight

	// OnDatasetChanged, when set, is told the root of every dataset the screen opens.
	OnDatasetChanged func(root string)

	body       *fyne.Container
	main       fyne.CanvasObject
	empty      *fyne.Container
	emptyText  *widget.Label
	pathLabel  *widget.Label
	progress   *widget.Label
	filter     *widget.Entry
	uncapOnly  *widget.Check
	grid       *widget.GridWrap
	image      *canvas.Image
	imageNote  *widget.Label
	nameLabel  *widget.Label
	factsLabel *widget.Label
	warnLabel  *widget.Label
	editor     *captionEntry
	editState  *widget.Label
	status     *widget.Label
	tags       []studio.TagCount
	tagList    *widget.List
	tagTitle   *widget.Label
	warnings   []warningRow
	warnList   *widget.List
	side       *container.AppTabs
	actions    []Action
	modal      dialog.Dialog // the open dialog that Escape closes, or nil
	table      actionTable
}

// warningRow is one line of the warnings panel; rel is "" for files that are not dataset images.
type warningRow struct {
	rel, text string
}

// NewDatasetScreen builds the screen for a window; it shows an empty state
// until Open or OpenAsync gives it a dataset.
func NewDatasetScreen(win fyne.Window, st *studio.Studio) *DatasetScreen {
	s := &DatasetScreen{win: win, st: st, index: map[string]int{}}
	// Commands do nothing while a dialog is open (one dialog at a time);
	// undo/redo first go to a focused text field other than the caption.
	guard := func(f func()) func() {
		return func() {
			if !s.modalOpen() {
				f()
			}
		}
	}
	undo := func(isUndo bool, f func()) func() {
		return func() {
			if !s.forwardToOtherEntry(isUndo) {
				guard(f)()
			}
		}
	}
	s.actions = []Action{
		{Menu: "Caption", Label: "Save caption", Shortcuts: []fyne.Shortcut{key(fyne.KeyS, ctrl)}, Run: guard(s.Save)},
		{Menu: "Go", Label: "Next image", Shortcuts: []fyne.Shortcut{key(fyne.KeyRight, fyne.KeyModifierAlt), key(fyne.KeyDown, ctrl)}, Run: guard(s.Next)},
		{Menu: "Go", Label: "Previous image", Shortcuts: []fyne.Shortcut{key(fyne.KeyLeft, fyne.KeyModifierAlt), key(fyne.KeyUp, ctrl)}, Run: guard(s.Previous)},
		{Menu: "Go", Label: "Next uncaptioned image", Shortcuts: []fyne.Shortcut{key(fyne.KeyJ, ctrl)}, Run: guard(s.NextUncaptioned)},
		{Menu: "Caption", Label: "Undo caption change", Shortcuts: []fyne.Shortcut{&fyne.ShortcutUndo{}}, Run: undo(true, s.Undo)},
		{Menu: "Caption", Label: "Redo caption change", Shortcuts: []fyne.Shortcut{key(fyne.KeyZ, ctrl|fyne.KeyModifierShift), &fyne.ShortcutRedo{}}, Run: undo(false, s.Redo)},
		{Menu: "Caption", Label: "Caption history…", Shortcuts: []fyne.Shortcut{key(fyne.KeyH, ctrl)}, Run: guard(s.ShowHistory)},
		{Menu: "Caption", Label: "Bulk edit captions…", Shortcuts: []fyne.Shortcut{key(fyne.KeyB, ctrl)}, Run: guard(s.ShowBulk)},
		{Menu: "Caption", Label: "Undo last bulk edit", Run: guard(s.UndoLastBulk)},
		{Menu: "File", Label: "Open dataset folder…", Shortcuts: []fyne.Shortcut{key(fyne.KeyO, ctrl)}, Run: guard(s.ShowOpenFolder)},
		{Menu: "File", Label: "Rescan folder", Shortcuts: []fyne.Shortcut{key(fyne.KeyR, ctrl)}, Run: guard(s.Rescan)},
	}
	s.table = newActionTable(s.actions)
	s.build()
	return s
}

// Content is the screen's root object, for a tab.
func (s *DatasetScreen) Content() fyne.CanvasObject { return s.body }

// Actions lists the screen's commands and shortcuts, for menus and the canvas.
func (s *DatasetScreen) Actions() []Action { return s.actions }

// Dataset is the open dataset, or nil.
func (s *DatasetScreen) Dataset() *studio.Dataset { return s.ds }

// Current is the Rel of the selected image, "" when none is.
func (s *DatasetScreen) Current() string { return s.cur }

// Dirty reports whether the caption editor holds text that is not saved.
func (s *DatasetScreen) Dirty() bool { return s.cur != "" && s.editor.Text != s.saved }

// StatusText is the text of the status line.
func (s *DatasetScreen) StatusText() string { return s.status.Text }

// build creates the widgets.
func (s *DatasetScreen) build() {
	s.pathLabel = widget.NewLabel("")
	s.progress = widget.NewLabelWithStyle("", fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
	s.filter = widget.NewEntry()
	s.filter.SetPlaceHolder("Filter by caption text, tag or file name")
	s.filter.OnChanged = func(string) { s.applyFilter() }
	s.uncapOnly = widget.NewCheck("Uncaptioned only", func(bool) { s.applyFilter() })
	openBtn := widget.NewButtonWithIcon("Open folder…", theme.FolderOpenIcon(), s.ShowOpenFolder)
	bulkBtn := widget.NewButtonWithIcon("Bulk edit…", theme.DocumentCreateIcon(), s.ShowBulk)
	filterBox := container.NewBorder(nil, nil, widget.NewIcon(theme.SearchIcon()), nil, s.filter)
	top := container.NewBorder(nil, nil,
		container.NewHBox(openBtn, s.pathLabel),
		container.NewHBox(s.uncapOnly, bulkBtn, s.progress),
		filterBox)
	s.pathLabel.Truncation = fyne.TextTruncateOff

	s.grid = widget.NewGridWrap(func() int { return len(s.visible) }, func() fyne.CanvasObject { return newThumbTile() }, s.updateTile)
	s.grid.OnSelected = func(id widget.GridWrapItemID) {
		if s.syncing || id < 0 || id >= len(s.visible) {
			return
		}
		s.moveTo(s.visible[id])
	}

	s.image = canvas.NewImageFromImage(nil)
	s.image.FillMode = canvas.ImageFillContain
	s.image.ScaleMode = canvas.ImageScaleSmooth
	s.imageNote = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Italic: true})
	s.nameLabel = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	s.nameLabel.Truncation = fyne.TextTruncateEllipsis
	s.factsLabel = widget.NewLabel("")
	s.warnLabel = widget.NewLabel("")
	s.warnLabel.Importance = widget.WarningImportance
	s.warnLabel.Wrapping = fyne.TextWrapWord
	imageBg := canvas.NewRectangle(theme.Color(theme.ColorNameInputBackground))
	imageBg.CornerRadius = theme.InputRadiusSize()
	previewPane := container.NewBorder(nil,
		container.NewVBox(container.NewBorder(nil, nil, nil, s.factsLabel, s.nameLabel), s.warnLabel),
		nil, nil, container.NewStack(imageBg, container.NewPadded(s.image), container.NewCenter(s.imageNote)))

	s.editor = newCaptionEntry(s.table, s.Next, s.Previous)
	s.editor.SetPlaceHolder("Describe the image: subject, style, setting, lighting…")
	s.editor.OnChanged = func(string) { s.updateEditState() }
	s.editState = widget.NewLabel("")
	s.editState.SizeName = theme.SizeNameCaptionText
	s.editState.Truncation = fyne.TextTruncateEllipsis // never widens the pane
	saveBtn := widget.NewButtonWithIcon("Save", theme.DocumentSaveIcon(), s.Save)
	saveBtn.Importance = widget.HighImportance
	undoBtn := widget.NewButtonWithIcon("", theme.ContentUndoIcon(), s.Undo)
	redoBtn := widget.NewButtonWithIcon("", theme.ContentRedoIcon(), s.Redo)
	histBtn := widget.NewButtonWithIcon("History…", theme.HistoryIcon(), s.ShowHistory)
	nextUncap := widget.NewButtonWithIcon("Next uncaptioned", theme.MediaSkipNextIcon(), s.NextUncaptioned)
	editorBar := container.NewBorder(nil, nil, widget.NewLabelWithStyle("Caption", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		container.NewHBox(undoBtn, redoBtn, histBtn, nextUncap, saveBtn), s.editState)
	editorPane := container.NewBorder(editorBar, nil, nil, nil, s.editor)
	detail := container.NewVSplit(previewPane, editorPane)
	detail.Offset = 0.68

	s.tagTitle = widget.NewLabel("")
	s.tagList = widget.NewList(func() int { return len(s.tags) },
		func() fyne.CanvasObject {
			name := widget.NewLabel("")
			name.Truncation = fyne.TextTruncateEllipsis
			return container.NewBorder(nil, nil, nil, widget.NewLabel("0000"), name)
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			c := o.(*fyne.Container)
			c.Objects[0].(*widget.Label).SetText(s.tags[id].Tag)
			c.Objects[1].(*widget.Label).SetText(fmt.Sprint(s.tags[id].Count))
		})
	s.tagList.OnSelected = func(id widget.ListItemID) {
		if id >= 0 && id < len(s.tags) {
			s.filter.SetText(s.tags[id].Tag)
		}
		s.tagList.UnselectAll()
	}
	s.warnList = widget.NewList(func() int { return len(s.warnings) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Wrapping = fyne.TextWrapWord
			return l
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			o.(*widget.Label).SetText(s.warnings[id].text)
			s.warnList.SetItemHeight(id, o.MinSize().Height)
		})
	s.warnList.OnSelected = func(id widget.ListItemID) {
		if id >= 0 && id < len(s.warnings) && s.warnings[id].rel != "" {
			s.reveal(s.warnings[id].rel)
		}
		s.warnList.UnselectAll()
	}
	s.side = container.NewAppTabs(
		container.NewTabItem("Tags", container.NewBorder(s.tagTitle, nil, nil, nil, s.tagList)),
		container.NewTabItem("Warnings", s.warnList),
	)

	right := container.NewHSplit(s.grid, detail)
	right.Offset = 0.46
	center := container.NewHSplit(s.side, right)
	center.Offset = 0.16

	s.status = widget.NewLabel("")
	s.status.Truncation = fyne.TextTruncateEllipsis
	help := widget.NewLabel("Ctrl+S save · Alt+←/→ or PgUp/PgDn previous/next · Ctrl+J next uncaptioned · Ctrl+Z / Ctrl+Shift+Z undo/redo · Ctrl+H history")
	help.SizeName = theme.SizeNameCaptionText
	help.Importance = widget.LowImportance
	bottom := container.NewBorder(widget.NewSeparator(), nil, nil, help, s.status)

	s.main = container.NewBorder(container.NewVBox(top, widget.NewSeparator()), bottom, nil, nil, center)

	s.emptyText = widget.NewLabelWithStyle("No dataset is open.", fyne.TextAlignCenter, fyne.TextStyle{})
	s.emptyText.Wrapping = fyne.TextWrapWord
	emptyOpen := widget.NewButtonWithIcon("Open folder…", theme.FolderOpenIcon(), s.ShowOpenFolder)
	emptyOpen.Importance = widget.HighImportance
	s.empty = container.NewCenter(container.NewVBox(
		widget.NewLabelWithStyle("Caption a dataset", fyne.TextAlignCenter, fyne.TextStyle{Bold: true}),
		s.emptyText, container.NewCenter(emptyOpen)))
	s.body = container.NewStack(s.empty)
}

// setEmptyText shows a message on the empty state (opening, or why opening failed).
func (s *DatasetScreen) setEmptyText(text string) {
	s.emptyText.SetText(text)
}

// Open opens the dataset folder dir synchronously and shows it.
func (s *DatasetScreen) Open(dir string) error {
	d, err := s.st.OpenDataset(dir)
	if err != nil {
		return err
	}
	s.SetDataset(d)
	return nil
}

// OpenAsync opens dir on a background goroutine and shows it when ready;
// failures are shown in a dialog naming the folder.
func (s *DatasetScreen) OpenAsync(dir string) {
	if !s.autosave() {
		return
	}
	s.setStatus("Opening " + dir + " …")
	if s.ds == nil {
		s.setEmptyText("Opening " + dir + " …")
	}
	go func() {
		d, err := s.st.OpenDataset(dir)
		fromBackground(func() {
			if err != nil {
				s.setStatus("Could not open " + dir)
				if s.ds == nil {
					s.setEmptyText("Could not open " + dir + ".")
				}
				dialog.ShowError(fmt.Errorf("opening the dataset %s: %w", dir, err), s.win)
				return
			}
			s.SetDataset(d)
		})
	}()
}

// SetDataset shows an opened dataset and selects its first image.
func (s *DatasetScreen) SetDataset(d *studio.Dataset) {
	s.ds = d
	s.cur, s.saved = "", ""
	s.editor.SetText("")
	s.pathLabel.SetText(shortPath(d.Root(), 48))
	s.filter.SetText("") // applies the filter
	s.uncapOnly.SetChecked(false)
	s.applyFilter()
	s.refreshPanels()
	s.body.Objects = []fyne.CanvasObject{s.main}
	s.body.Refresh()
	items := d.Items()
	s.setStatus(fmt.Sprintf("Opened %s: %d images (%s layout)", shortPath(d.Root(), 64), len(items), d.Layout()))
	if len(s.visible) > 0 {
		s.moveTo(s.visible[0])
		s.focusEditor()
	} else {
		s.showItem("")
	}
	if s.OnDatasetChanged != nil {
		s.OnDatasetChanged(d.Root())
	}
	s.askUnfinishedBatch() // a bulk edit cut short by a crash: finish, roll back or later
}

// applyFilter recomputes the visible cells from the filter box and the
// "Uncaptioned only" check, keeping the current image selected if it stays.
func (s *DatasetScreen) applyFilter() {
	if s.ds == nil {
		return
	}
	var items []*studio.Item
	if q := strings.TrimSpace(s.filter.Text); q != "" {
		items = s.ds.Filter(q)
	} else {
		items = s.ds.Items()
	}
	s.visible = s.visible[:0]
	s.index = make(map[string]int, len(items))
	for _, it := range items {
		if s.uncapOnly.Checked && !it.NeedsCaption() {
			continue
		}
		s.index[it.Rel] = len(s.visible)
		s.visible = append(s.visible, it.Rel)
	}
	s.grid.UnselectAll()
	s.grid.Refresh()
	s.syncGrid()
}

// syncGrid selects the current image's cell without triggering a move.
func (s *DatasetScreen) syncGrid() {
	s.syncing = true
	defer func() { s.syncing = false }()
	if i, ok := s.index[s.cur]; ok && s.cur != "" {
		s.grid.Select(i)
		s.grid.ScrollTo(i)
	} else {
		s.grid.UnselectAll()
	}
}

// updateTile fills one grid cell; thumbnails not yet cached load in the background.
func (s *DatasetScreen) updateTile(id widget.GridWrapItemID, o fyne.CanvasObject) {
	t := o.(*thumbTile)
	if s.ds == nil || id < 0 || id >= len(s.visible) {
		t.show("", "", tileCaptioned, nil)
		return
	}
	rel := s.visible[id]
	it, ok := s.ds.Item(rel)
	if !ok {
		t.show("", rel, tileBroken, nil)
		return
	}
	state := tileCaptioned
	switch {
	case it.Err != nil:
		state = tileBroken
	case it.NeedsCaption():
		state = tileUncaptioned
	}
	if state == tileBroken {
		t.show(rel, path.Base(rel), state, nil)
		return
	}
	// The Thumbnailer keeps what is queued and what failed: a redraw asks
	// again freely, and is called back once per thumbnail made.
	ds := s.ds
	img, _, _ := s.st.Thumbnails().Fetch(it, thumbSize, func(img image.Image, err error) {
		if errors.Is(err, studio.ErrThumbnailerClosed) {
			return // the studio is closing; and Fetch calls this at once after Close
		}
		fromBackground(func() {
			if err != nil {
				if s.ds == ds {
					s.setStatus(fmt.Sprintf("Thumbnail of %s: %v", rel, err))
				}
				return
			}
			if s.ds == ds && t.rel == rel {
				t.setImage(img)
			} else {
				s.refreshTile(rel) // the cell moved to another tile (or dataset): it takes it from the cache
			}
		})
	})
	t.show(rel, path.Base(rel), state, img)
}

// refreshTile redraws the cell of one image (its badge may have changed).
func (s *DatasetScreen) refreshTile(rel string) {
	if i, ok := s.index[rel]; ok {
		s.grid.RefreshItem(i)
	}
}

// moveTo makes rel the current image, saving the caption being edited
// first. It reports false (and stays) when that save failed.
func (s *DatasetScreen) moveTo(rel string) bool {
	if s.ds == nil {
		return false
	}
	if rel == s.cur {
		s.syncGrid()
		return true
	}
	if !s.autosave() {
		s.syncGrid()
		return false
	}
	s.showItem(rel)
	return true
}

// showItem loads an image's caption into the editor and its preview, without saving anything.
func (s *DatasetScreen) showItem(rel string) {
	s.cur = rel
	s.preview++
	gen := s.preview
	s.image.Image = nil
	s.image.Refresh()
	if rel == "" {
		s.saved = ""
		s.editor.SetText("")
		s.nameLabel.SetText("")
		s.factsLabel.SetText("")
		s.warnLabel.SetText("")
		s.imageNote.SetText("No image selected")
		s.updateEditState()
		s.syncGrid()
		return
	}
	// A caption file changed by another program while we were elsewhere is
	// picked up before editing starts (nothing of ours is unsaved now).
	if changed, _, err := s.ds.CheckDisk(rel); err == nil && changed {
		if err := s.ds.ReloadFromDisk(rel); err != nil {
			s.showError(fmt.Errorf("reloading the caption of %s: %w", rel, err))
		} else {
			s.setStatus("Reloaded the caption of " + rel + ": it was changed by another program")
			s.refreshPanels()
		}
	}
	it, ok := s.ds.Item(rel)
	if !ok {
		s.showItem("")
		return
	}
	s.saved = it.Caption
	s.editor.SetText(it.Caption)
	s.editor.CursorRow, s.editor.CursorColumn = 0, 0
	s.showFacts(it)
	s.updateEditState()
	s.syncGrid()
	if it.Err != nil {
		s.imageNote.SetText("This image cannot be read")
		return
	}
	s.imageNote.SetText("Loading…")
	go func() {
		img, err := studio.LoadImage(it.ImagePath)
		if err == nil {
			img = fitImage(img, previewMax)
		}
		fromBackground(func() {
			if gen != s.preview {
				return
			}
			if err != nil {
				s.imageNote.SetText(err.Error())
				return
			}
			s.imageNote.SetText("")
			s.image.Image = img
			s.image.Refresh()
		})
	}()
}

// showFacts fills the lines under the preview: name, size, format, repeats, warnings.
func (s *DatasetScreen) showFacts(it *studio.Item) {
	s.nameLabel.SetText(it.Rel)
	facts := []string{}
	if it.Width > 0 {
		facts = append(facts, fmt.Sprintf("%d × %d px", it.Width, it.Height))
	}
	if it.Format != "" {
		facts = append(facts, strings.ToUpper(it.Format))
	}
	rep := it.Repeats
	if rep < 1 {
		rep = 1
	}
	facts = append(facts, fmt.Sprintf("repeats %d", rep))
	s.factsLabel.SetText(strings.Join(facts, " · "))
	var warns []string
	if it.Err != nil {
		warns = append(warns, "Unreadable: "+it.Err.Error())
	}
	if it.CaptionErr != nil {
		warns = append(warns, "Caption file: "+it.CaptionErr.Error())
	}
	for _, w := range it.Warnings {
		if w.Kind != studio.WarnCaptionFile { // said just above
			warns = append(warns, w.Text)
		}
	}
	s.warnLabel.SetText(strings.Join(warns, "\n"))
	if len(warns) == 0 {
		s.warnLabel.Hide()
	} else {
		s.warnLabel.Show()
	}
}

// shortPath shortens a folder path for a label: the home folder becomes ~
// and a path longer than max runes keeps only its last components.
func shortPath(p string, max int) string {
	if home, err := os.UserHomeDir(); err == nil && home != "" && home != "/" && strings.HasPrefix(p, home+string(filepath.Separator)) {
		p = "~" + p[len(home):]
	}
	if len([]rune(p)) <= max {
		return p
	}
	parts := strings.Split(filepath.ToSlash(p), "/")
	out := parts[len(parts)-1]
	for i := len(parts) - 2; i >= 0; i-- {
		next := parts[i] + "/" + out
		if len([]rune(next))+2 > max {
			break
		}
		out = next
	}
	return "…/" + out
}

// fitImage scales img down so its long side is at most max pixels.
func fitImage(img image.Image, max int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= max && h <= max {
		return img
	}
	if w >= h {
		h, w = h*max/w, max
	} else {
		w, h = w*max/h, max
	}
	dst := image.NewRGBA(image.Rect(0, 0, max1(w), max1(h)))
	xdraw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, b, xdraw.Src, nil)
	return dst
}

func max1(v int) int {
	if v < 1 {
		return 1
	}
	return v
}

// updateEditState shows whether the editor holds unsaved text.
func (s *DatasetScreen) updateEditState() {
	switch {
	case s.cur == "":
		s.editState.SetText("")
	case s.Dirty():
		s.editState.SetText("edited — saved with Ctrl+S or when you move on")
	default:
		s.editState.SetText("saved")
	}
}

// refreshPanels recomputes the progress count, the tag panel and the warnings.
func (s *DatasetScreen) refreshPanels() {
	s.refreshCounts()
	s.refreshWarnings()
}

// refreshCounts recomputes what a caption edit changes: the progress count
// and the tag panel (redrawn only when the tags changed).
func (s *DatasetScreen) refreshCounts() {
	if s.ds == nil {
		return
	}
	done, total := s.ds.Progress()
	if p := fmt.Sprintf("%d / %d captioned", done, total); p != s.progress.Text {
		s.progress.SetText(p)
	}
	tags := s.ds.TagCounts()
	if !slices.Equal(tags, s.tags) {
		s.tags = tags
		s.tagTitle.SetText(fmt.Sprintf("%d tags — click one to filter", len(s.tags)))
		s.tagList.Refresh()
	}
}

// refreshWarnings lists small and unreadable images and stray files.
func (s *DatasetScreen) refreshWarnings() {
	if s.ds == nil {
		return
	}
	s.warnings = s.warnings[:0]
	items := s.ds.Items()
	// Small images first, worded for the panel: the most common warning.
	for _, it := range items {
		if it.HasWarning(studio.WarnSmall) {
			s.warnings = append(s.warnings, warningRow{it.Rel, fmt.Sprintf("%s: %d × %d is smaller than the %d training resolution", it.Rel, it.Width, it.Height, studio.DefaultResolution)})
		}
	}
	for _, it := range items {
		if it.Err != nil {
			s.warnings = append(s.warnings, warningRow{it.Rel, fmt.Sprintf("%s: unreadable — %v", it.Rel, it.Err)})
		}
		for _, w := range it.Warnings { // includes the caption file's problem (Item.CaptionErr)
			if w.Kind != studio.WarnSmall {
				s.warnings = append(s.warnings, warningRow{it.Rel, it.Rel + ": " + w.Text})
			}
		}
	}
	for _, o := range s.ds.Others() {
		s.warnings = append(s.warnings, warningRow{"", o + ": not an image or caption; training ignores it"})
	}
	if title := fmt.Sprintf("Warnings (%d)", len(s.warnings)); title != s.side.Items[1].Text {
		s.side.Items[1].Text = title
		s.side.Refresh()
	}
	s.warnList.Refresh()
}

// reveal shows rel in the grid (clearing filters that hide it) and moves to it.
func (s *DatasetScreen) reveal(rel string) bool {
	if _, ok := s.index[rel]; !ok {
		s.filter.SetText("")
		s.uncapOnly.SetChecked(false)
		s.applyFilter()
	}
	return s.moveTo(rel)
}

// setStatus writes the status line.
func (s *DatasetScreen) setStatus(text string) {
	s.status.SetText(text)
}

// showError shows an error dialog; callers name the file in err.
func (s *DatasetScreen) showError(err error) {
	s.setStatus(err.Error())
	dialog.ShowError(err, s.win)
}

// autosave saves the editor's caption if it changed; false when saving failed.
func (s *DatasetScreen) autosave() bool {
	if !s.Dirty() {
		return true
	}
	return s.save()
}

// Save saves the caption being edited (Ctrl+S).
func (s *DatasetScreen) Save() {
	if s.cur == "" {
		return
	}
	if !s.Dirty() {
		s.setStatus("No changes to save in " + s.cur)
		return
	}
	s.save()
}

// save writes the editor's text as the current image's caption. On a
// conflict with another program it asks which text to keep.
func (s *DatasetScreen) save() bool {
	rel, text := s.cur, s.editor.Text
	err := s.ds.Save(rel, text)
	var conflict *studio.ConflictError
	switch {
	case errors.As(err, &conflict):
		s.showConflict(rel, text)
		return false
	case err != nil:
		s.showError(fmt.Errorf("saving the caption of %s: %w", rel, err))
		return false
	}
	s.afterWrite(rel)
	s.setStatus("Saved " + rel)
	return true
}

// afterWrite reloads the editor from the dataset after rel's caption was
// written by us, and refreshes what depends on captions.
func (s *DatasetScreen) afterWrite(rel string) {
	if rel == s.cur {
		if it, ok := s.ds.Item(rel); ok {
			s.saved = it.Caption
			if s.editor.Text != it.Caption {
				s.editor.SetText(it.Caption)
			}
			s.showFacts(it)
		}
		s.updateEditState()
	}
	s.refreshTile(rel)
	s.refreshCounts()
}

// Next moves to the next image in the grid (Alt+Right, Ctrl+Down, PageDown).
func (s *DatasetScreen) Next() { s.step(+1) }

// Previous moves to the previous image in the grid (Alt+Left, Ctrl+Up, PageUp).
func (s *DatasetScreen) Previous() { s.step(-1) }

// step moves by delta cells.
func (s *DatasetScreen) step(delta int) {
	if s.ds == nil || len(s.visible) == 0 {
		return
	}
	i, ok := s.index[s.cur]
	if !ok {
		s.moveTo(s.visible[0])
		return
	}
	j := i + delta
	if j < 0 || j >= len(s.visible) {
		if delta > 0 {
			s.setStatus("This is the last image")
		} else {
			s.setStatus("This is the first image")
		}
		return
	}
	if s.moveTo(s.visible[j]) {
		s.focusEditor()
	}
}

// NextUncaptioned jumps to the next image without a caption (Ctrl+J).
func (s *DatasetScreen) NextUncaptioned() {
	if s.ds == nil {
		return
	}
	if !s.autosave() {
		return
	}
	it, ok := s.ds.NextUncaptioned(s.cur)
	if !ok {
		s.setStatus("Every image has a caption")
		return
	}
	if s.reveal(it.Rel) {
		s.focusEditor()
	}
}

// focusEditor puts the keyboard in the caption editor, so that moving with
// the keyboard and typing go together.
func (s *DatasetScreen) focusEditor() {
	if c := s.win.Canvas(); c != nil && s.cur != "" {
		c.Focus(s.editor)
	}
}

// Undo takes the current caption back one revision (Ctrl+Z); unsaved
// typing is saved first so that Redo can bring it back.
func (s *DatasetScreen) Undo() {
	if s.cur == "" || !s.autosave() {
		return
	}
	rel := s.cur
	if _, err := s.ds.Undo(rel); err != nil {
		s.setStatus(fmt.Sprintf("Undo %s: %v", rel, err))
		return
	}
	s.afterWrite(rel)
	s.setStatus("Undid the last change to " + rel)
}

// Redo re-applies the caption change last undone (Ctrl+Shift+Z, Ctrl+Y).
func (s *DatasetScreen) Redo() {
	if s.cur == "" {
		return
	}
	rel := s.cur
	if s.Dirty() {
		s.setStatus("Redo " + rel + ": the caption has unsaved changes (save or undo them first)")
		return
	}
	if _, err := s.ds.Redo(rel); err != nil {
		s.setStatus(fmt.Sprintf("Redo %s: %v", rel, err))
		return
	}
	s.afterWrite(rel)
	s.setStatus("Redid the change to " + rel)
}

// forwardToOtherEntry gives undo/redo to a focused text field that is not
// the caption editor (the filter box, a dialog's fields), so that menu
// shortcuts do not steal their own undo.
func (s *DatasetScreen) forwardToOtherEntry(undo bool) bool {
	e, ok := s.win.Canvas().Focused().(*widget.Entry)
	if !ok {
		return false
	}
	if undo {
		e.Undo()
	} else {
		e.Redo()
	}
	return true
}

// Rescan reads the dataset folder again (Ctrl+R), picking up images and
// captions added, removed or changed by other programs.
func (s *DatasetScreen) Rescan() {
	if s.ds == nil || !s.autosave() {
		return
	}
	if err := s.ds.Rescan(); err != nil {
		s.showError(fmt.Errorf("rescanning %s: %w", s.ds.Root(), err))
		return
	}
	cur := s.cur
	s.cur = ""
	s.applyFilter()
	s.refreshPanels()
	if _, ok := s.ds.Item(cur); ok {
		s.showItem(cur)
	} else if len(s.visible) > 0 {
		s.showItem(s.visible[0])
	} else {
		s.showItem("")
	}
	s.setStatus(fmt.Sprintf("Rescanned %s: %d images", shortPath(s.ds.Root(), 64), len(s.ds.Items())))
}

// ShowOpenFolder asks for a dataset folder and opens it.
func (s *DatasetScreen) ShowOpenFolder() {
	d := dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
		if err != nil {
			s.showError(fmt.Errorf("choosing a folder: %w", err))
			return
		}
		if u == nil {
			return
		}
		s.OpenAsync(u.Path())
	}, s.win)
	if s.ds != nil {
		if l, err := storage.ListerForURI(storage.NewFileURI(filepath.Dir(s.ds.Root()))); err == nil {
			d.SetLocation(l)
		}
	}
	d.Resize(fyne.NewSize(820, 560))
	s.showModal(d, true)
}

// modalOpen reports whether a dialog or pop-up covers the window.
func (s *DatasetScreen) modalOpen() bool {
	c := s.win.Canvas()
	return c != nil && c.Overlays().Top() != nil
}

// showModal shows a dialog; escapable ones close on Escape.
func (s *DatasetScreen) showModal(d dialog.Dialog, escapable bool) {
	if escapable {
		s.modal = d
		d.SetOnClosed(func() {
			if s.modal == d {
				s.modal = nil
			}
		})
	}
	d.Show()
}

// CloseDialog closes the open dialog if Escape may close it (not a conflict, which needs an answer).
func (s *DatasetScreen) CloseDialog() {
	if s.modal != nil {
		s.modal.Hide()
	}
}
