package ui

import (
	"errors"
	"fmt"
	"image/color"
	"sort"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// textBox is a read-only, wrapping, scrollable block of text.
func textBox(text string, minHeight float32) fyne.CanvasObject {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	sc := container.NewVScroll(l)
	sc.SetMinSize(fyne.NewSize(0, minHeight))
	return sc
}

// showConflict asks what to do when the caption file of rel was changed by
// another program since we read it: keep their text or write ours over it.
func (s *DatasetScreen) showConflict(rel, mine string) {
	it, _ := s.ds.Item(rel)
	file := rel
	if it != nil && it.CaptionPath != "" {
		file = it.CaptionPath
	}
	disk := ""
	if _, text, err := s.ds.CheckDisk(rel); err != nil {
		disk = "(cannot read it: " + err.Error() + ")"
	} else {
		disk = text
	}
	s.setStatus(file + " was changed by another program: choose which caption to keep")
	var d dialog.Dialog
	theirs := widget.NewButtonWithIcon("Keep theirs", theme.DownloadIcon(), func() {
		d.Hide()
		if err := s.ds.ReloadFromDisk(rel); err != nil {
			s.showError(fmt.Errorf("reloading the caption of %s: %w", rel, err))
			return
		}
		s.afterConflict(rel)
		s.setStatus("Kept the caption on disk for " + rel)
	})
	keepMine := widget.NewButtonWithIcon("Keep mine", theme.DocumentSaveIcon(), func() {
		d.Hide()
		if err := s.ds.ForceSave(rel, mine); err != nil {
			s.showError(fmt.Errorf("saving the caption of %s: %w", rel, err))
			return
		}
		s.afterConflict(rel)
		s.setStatus("Saved your caption over the changed file for " + rel)
	})
	keepMine.Importance = widget.HighImportance
	msg := widget.NewLabel(file + " was changed by another program since LoRA Studio read it.")
	msg.Wrapping = fyne.TextWrapWord
	content := container.NewVBox(
		msg,
		widget.NewLabelWithStyle("On disk now (theirs):", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		textBox(disk, 90),
		widget.NewLabelWithStyle("In the editor (mine):", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		textBox(mine, 90),
		container.NewHBox(layoutSpacer(), theirs, keepMine),
	)
	d = dialog.NewCustomWithoutButtons("Caption changed on disk", content, s.win)
	d.Resize(fyne.NewSize(620, 0))
	s.showModal(d, false)
}

// afterConflict refreshes the editor once a conflict is resolved; if the
// user stays on rel, the editor shows what is now on disk.
func (s *DatasetScreen) afterConflict(rel string) {
	if rel == s.cur {
		if it, ok := s.ds.Item(rel); ok {
			s.saved = it.Caption
			s.editor.SetText(it.Caption)
			s.showFacts(it)
		}
		s.updateEditState()
	}
	s.refreshTile(rel)
	s.refreshPanels()
}

// ShowHistory lists the saved revisions of the current caption, newest
// first, each with a Restore button (Ctrl+H).
func (s *DatasetScreen) ShowHistory() {
	if s.ds == nil || s.cur == "" {
		return
	}
	rel := s.cur
	revs, err := s.ds.History(rel)
	if err != nil {
		s.showError(fmt.Errorf("history of %s: %w", rel, err))
		return
	}
	revs = append([]studio.Revision(nil), revs...)
	sort.SliceStable(revs, func(i, j int) bool {
		if !revs[i].Time.Equal(revs[j].Time) {
			return revs[i].Time.After(revs[j].Time)
		}
		return revs[i].ID > revs[j].ID
	})
	var d dialog.Dialog
	full := widget.NewLabel("Select a revision to read its whole text.")
	full.Wrapping = fyne.TextWrapWord
	list := widget.NewList(func() int { return len(revs) },
		func() fyne.CanvasObject {
			when := widget.NewLabelWithStyle("2006-01-02 15:04:05", fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
			origin := widget.NewLabel("origin")
			origin.Importance = widget.LowImportance
			text := widget.NewLabel("")
			text.Truncation = fyne.TextTruncateEllipsis
			restore := widget.NewButtonWithIcon("Restore", theme.ContentUndoIcon(), nil)
			originCol := canvas.NewRectangle(color.Transparent)
			originCol.SetMinSize(fyne.NewSize(78, 0)) // aligns the text column
			return container.NewBorder(nil, nil, container.NewHBox(when, container.NewStack(originCol, origin)), restore, text)
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			r := revs[id]
			c := o.(*fyne.Container)
			left := c.Objects[1].(*fyne.Container)
			left.Objects[0].(*widget.Label).SetText(r.Time.Local().Format("2006-01-02 15:04:05"))
			left.Objects[1].(*fyne.Container).Objects[1].(*widget.Label).SetText(string(r.Origin))
			text := strings.ReplaceAll(r.Text, "\n", " ⏎ ")
			if text == "" {
				text = "(empty)"
			}
			c.Objects[0].(*widget.Label).SetText(text)
			btn := c.Objects[2].(*widget.Button)
			btn.OnTapped = func() {
				d.Hide()
				s.restore(rel, r)
			}
		})
	list.OnSelected = func(id widget.ListItemID) {
		full.SetText(revs[id].Text)
	}
	title := widget.NewLabel(fmt.Sprintf("%d saved revisions of %s, newest first", len(revs), rel))
	switch len(revs) {
	case 0:
		title.SetText("No saved revisions of " + rel + " yet: each save adds one.")
	case 1:
		title.SetText("1 saved revision of " + rel + ": each save adds one.")
	}
	content := container.NewBorder(title, container.NewVBox(widget.NewSeparator(), textBoxFor(full, 80)), nil, nil, list)
	d = dialog.NewCustom("Caption history — "+rel, "Close", content, s.win)
	d.Resize(fyne.NewSize(760, 480))
	s.showModal(d, true)
}

// textBoxFor puts an existing label in a scroll of at least minHeight.
func textBoxFor(l *widget.Label, minHeight float32) fyne.CanvasObject {
	sc := container.NewVScroll(l)
	sc.SetMinSize(fyne.NewSize(0, minHeight))
	return sc
}

// restore brings back one revision of rel's caption, saving unsaved typing first.
func (s *DatasetScreen) restore(rel string, r studio.Revision) {
	if rel == s.cur && !s.autosave() {
		return
	}
	if err := s.ds.Restore(rel, r.ID); err != nil {
		s.showError(fmt.Errorf("restoring revision %d of %s: %w", r.ID, rel, err))
		return
	}
	s.afterWrite(rel)
	s.setStatus(fmt.Sprintf("Restored the caption of %s from %s", rel, r.Time.Local().Format("2006-01-02 15:04:05")))
}

// bulkKinds are the choices of the bulk dialog, in order.
var bulkKinds = []struct {
	label string
	kind  studio.BulkKind
}{
	{"Prepend", studio.BulkPrepend},
	{"Append", studio.BulkAppend},
	{"Find and replace", studio.BulkReplace},
}

// ShowBulk opens the bulk caption tools: prepend or append a trigger word,
// or find and replace, with a preview of every change before it is applied (Ctrl+B).
func (s *DatasetScreen) ShowBulk() {
	if s.ds == nil {
		return
	}
	if !s.autosave() {
		return
	}
	b := newBulkPanel(s)
	d := dialog.NewCustom("Bulk edit captions", "Close", b.content, s.win)
	b.close = d.Hide
	d.Resize(fyne.NewSize(820, 560))
	s.showModal(d, true)
	s.win.Canvas().Focus(b.text)
}

// bulkPanel is the content of the bulk dialog.
type bulkPanel struct {
	s        *DatasetScreen
	kind     *widget.RadioGroup
	text     *escEntry
	old, new *escEntry
	summary  *widget.Label
	changes  []studio.BulkChange
	list     *widget.List
	apply    *widget.Button
	content  fyne.CanvasObject
	close    func()
}

// newBulkPanel builds the dialog's widgets.
func newBulkPanel(s *DatasetScreen) *bulkPanel {
	b := &bulkPanel{s: s}
	var labels []string
	for _, k := range bulkKinds {
		labels = append(labels, k.label)
	}
	b.text = newEscEntry(s.CloseDialog)
	b.text.SetPlaceHolder("trigger word, e.g. ohwx person")
	b.old = newEscEntry(s.CloseDialog)
	b.old.SetPlaceHolder("find")
	b.new = newEscEntry(s.CloseDialog)
	b.new.SetPlaceHolder("replace with")
	textRow := container.NewBorder(nil, nil, widget.NewLabel("Text"), nil, b.text)
	replaceRow := container.NewGridWithColumns(2,
		container.NewBorder(nil, nil, widget.NewLabel("Find"), nil, b.old),
		container.NewBorder(nil, nil, widget.NewLabel("Replace with"), nil, b.new))
	b.kind = widget.NewRadioGroup(labels, func(v string) {
		if v == "Find and replace" {
			textRow.Hide()
			replaceRow.Show()
		} else {
			replaceRow.Hide()
			textRow.Show()
		}
		b.preview()
	})
	b.kind.Horizontal = true
	b.kind.Required = true
	for _, e := range []*escEntry{b.text, b.old, b.new} {
		e.OnChanged = func(string) { b.preview() }
	}
	b.summary = widget.NewLabel("")
	b.summary.Wrapping = fyne.TextWrapWord
	b.list = widget.NewList(func() int { return len(b.changes) },
		func() fyne.CanvasObject {
			name := widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
			before := widget.NewLabel("")
			before.Truncation = fyne.TextTruncateEllipsis
			before.Importance = widget.LowImportance
			after := widget.NewLabel("")
			after.Truncation = fyne.TextTruncateEllipsis
			return container.NewVBox(name, before, after)
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			c := b.changes[id]
			box := o.(*fyne.Container)
			box.Objects[0].(*widget.Label).SetText(c.Rel)
			box.Objects[1].(*widget.Label).SetText("before: " + oneLine(c.Before))
			box.Objects[2].(*widget.Label).SetText("after:  " + oneLine(c.After))
		})
	b.apply = widget.NewButtonWithIcon("Apply", theme.ConfirmIcon(), b.applyNow)
	b.apply.Importance = widget.HighImportance
	undo := widget.NewButtonWithIcon("Undo last bulk edit", theme.ContentUndoIcon(), s.UndoLastBulk)
	b.kind.SetSelected("Prepend")
	b.content = container.NewBorder(
		container.NewVBox(b.kind, textRow, replaceRow, b.summary, widget.NewSeparator()),
		container.NewHBox(undo, layoutSpacer(), b.apply),
		nil, nil, b.list)
	return b
}

// oneLine flattens a caption for a one-line preview row.
func oneLine(s string) string {
	if s == "" {
		return "(empty)"
	}
	return strings.ReplaceAll(s, "\n", " ⏎ ")
}

// op is the bulk operation the inputs describe.
func (b *bulkPanel) op() studio.BulkOp {
	op := studio.BulkOp{Kind: studio.BulkPrepend, Text: b.text.Text, Old: b.old.Text, New: b.new.Text}
	for _, k := range bulkKinds {
		if k.label == b.kind.Selected {
			op.Kind = k.kind
		}
	}
	return op
}

// ready reports whether the inputs describe an edit worth previewing.
func (b *bulkPanel) ready() bool {
	op := b.op()
	if op.Kind == studio.BulkReplace {
		return op.Old != ""
	}
	return strings.TrimSpace(op.Text) != ""
}

// preview recomputes the list of changes the edit would make.
func (b *bulkPanel) preview() {
	if b.summary == nil || b.list == nil || b.apply == nil {
		return
	}
	b.changes = nil
	if !b.ready() {
		b.summary.SetText("Type the text to add (or what to find) to see which captions change.")
		b.apply.SetText("Apply")
		b.apply.Disable()
		b.list.Refresh()
		return
	}
	changes, err := b.s.ds.PreviewBulk(b.op())
	if err != nil {
		b.summary.SetText("Cannot preview: " + err.Error())
		b.apply.Disable()
		b.list.Refresh()
		return
	}
	b.changes = changes
	_, total := b.s.ds.Progress()
	b.summary.SetText(fmt.Sprintf("%d of %d captions change:", len(changes), total))
	b.apply.SetText(fmt.Sprintf("Apply to %d captions", len(changes)))
	if len(changes) == 0 {
		b.apply.Disable()
	} else {
		b.apply.Enable()
	}
	b.list.Refresh()
}

// applyNow applies the previewed edit and reports what happened.
func (b *bulkPanel) applyNow() {
	s := b.s
	res, err := s.ds.ApplyBulk(b.op())
	if err != nil {
		s.showError(fmt.Errorf("bulk edit of %s: %w", s.ds.Root(), err))
		return
	}
	s.afterBulk()
	msg := fmt.Sprintf("Bulk edit changed %d captions", res.Changed)
	s.setStatus(msg)
	if len(res.Failed) > 0 {
		s.showError(fmt.Errorf("%s; %d failed:\n%w", msg, len(res.Failed), errors.Join(res.Failed...)))
	}
	b.preview()
}

// afterBulk reloads everything a bulk edit may have touched.
func (s *DatasetScreen) afterBulk() {
	if s.cur != "" {
		if it, ok := s.ds.Item(s.cur); ok {
			s.saved = it.Caption
			s.editor.SetText(it.Caption)
		}
		s.updateEditState()
	}
	s.grid.Refresh()
	s.refreshPanels()
}

// UndoLastBulk takes back the last bulk edit of the dataset.
func (s *DatasetScreen) UndoLastBulk() {
	if s.ds == nil || !s.autosave() {
		return
	}
	out, err := s.ds.UndoLastBulk()
	s.afterBulk()
	if err != nil {
		s.showError(fmt.Errorf("undoing the last bulk edit in %s: %w", s.ds.Root(), err))
		return
	}
	s.setStatus(fmt.Sprintf("Undid the last bulk edit: %d captions restored", out.Restored()))
	s.showBatchConflicts(out)
}

// askUnfinishedBatch asks, once when a dataset is opened, what to do with a
// bulk edit (or the undo of one) that was cut short: Finish, Roll back or
// Later. The rules live in app/studio; this only asks and reports.
func (s *DatasetScreen) askUnfinishedBatch() {
	u, ok, err := s.ds.UnfinishedBatch()
	if err != nil {
		s.showError(fmt.Errorf("checking %s for an unfinished bulk edit: %w", s.ds.Root(), err))
		return
	}
	if !ok {
		return
	}
	finishText := "Finish writes the edit to the captions that do not have it yet."
	backText := "Roll back returns every caption the edit reached to its text from before."
	if u.Undo {
		finishText = "Finish restores the rest of the captions to their text from before the bulk edit."
		backText = "Roll back puts the bulk edit back on the captions the undo already restored."
	}
	lines := []string{u.Summary(), "", finishText, backText,
		"Later leaves the captions as they are; a new bulk edit waits until this one is settled."}
	if len(u.Conflicts) > 0 {
		lines = append(lines, "", "Edited by hand since, and left as they are either way:")
		for i, c := range u.Conflicts {
			if i == 10 {
				lines = append(lines, fmt.Sprintf("… and %d more", len(u.Conflicts)-i))
				break
			}
			lines = append(lines, c.String())
		}
	}
	msg := widget.NewLabel(strings.Join(lines, "\n"))
	msg.Wrapping = fyne.TextWrapWord
	var d *dialog.CustomDialog
	later := widget.NewButton("Later", func() { d.Hide() })
	back := widget.NewButtonWithIcon("Roll back", theme.ContentUndoIcon(), func() { d.Hide(); s.settleBatch(false) })
	finish := widget.NewButtonWithIcon("Finish", theme.ConfirmIcon(), func() { d.Hide(); s.settleBatch(true) })
	finish.Importance = widget.HighImportance
	d = dialog.NewCustomWithoutButtons("Unfinished bulk edit", msg, s.win)
	d.SetButtons([]fyne.CanvasObject{later, back, finish})
	d.Resize(fyne.NewSize(640, 360))
	s.showModal(d, true)
}

// settleBatch finishes or rolls back the unfinished bulk edit and reports it.
func (s *DatasetScreen) settleBatch(finish bool) {
	var out studio.BatchOutcome
	var err error
	if finish {
		out, err = s.ds.FinishBatch()
	} else {
		out, err = s.ds.RollBackBatch()
	}
	s.afterBulk()
	if err != nil {
		s.showError(fmt.Errorf("settling the unfinished bulk edit in %s: %w", s.ds.Root(), err))
		return
	}
	verb := "Finished"
	if !finish {
		verb = "Rolled back"
	}
	s.setStatus(fmt.Sprintf("%s the interrupted bulk edit %d: %d captions settled", verb, out.BatchID, out.Restored()))
	s.showBatchConflicts(out)
}

// showBatchConflicts lists the captions a batch left alone because they were
// edited by hand since; nothing when there are none.
func (s *DatasetScreen) showBatchConflicts(out studio.BatchOutcome) {
	if len(out.Conflicts) == 0 {
		return
	}
	lines := make([]string, 0, len(out.Conflicts)+1)
	lines = append(lines, fmt.Sprintf("%d captions were edited by hand since the bulk edit and were left as they are:", len(out.Conflicts)))
	for _, c := range out.Conflicts {
		lines = append(lines, c.String())
	}
	dialog.ShowInformation("Captions left as they are", strings.Join(lines, "\n"), s.win)
}
