package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"
)

// captionEntry is the multi-line, word-wrapping caption editor. The screen's
// shortcuts work while it has focus: they are looked up before the entry's
// own (so Ctrl+Z is the studio's caption undo, not only the text field's),
// and PageUp/PageDown move between images.
type captionEntry struct {
	widget.Entry
	table      actionTable
	next, prev func()
}

// newCaptionEntry creates the editor bound to a screen's actions.
func newCaptionEntry(table actionTable, next, prev func()) *captionEntry {
	e := &captionEntry{table: table, next: next, prev: prev}
	e.MultiLine = true
	e.Wrapping = fyne.TextWrapWord
	e.ExtendBaseWidget(e)
	return e
}

// TypedShortcut runs the screen's action for s, else the entry's own.
func (e *captionEntry) TypedShortcut(s fyne.Shortcut) {
	if e.table.run(s) {
		return
	}
	e.Entry.TypedShortcut(s)
}

// TypedKey moves between images on PageUp/PageDown; other keys edit text.
func (e *captionEntry) TypedKey(k *fyne.KeyEvent) {
	switch k.Name {
	case fyne.KeyPageDown:
		e.next()
	case fyne.KeyPageUp:
		e.prev()
	default:
		e.Entry.TypedKey(k)
	}
}

// escEntry is a one-line entry that closes its dialog on Escape.
type escEntry struct {
	widget.Entry
	onEscape func()
}

// newEscEntry creates an entry that calls onEscape when Escape is typed.
func newEscEntry(onEscape func()) *escEntry {
	e := &escEntry{onEscape: onEscape}
	e.ExtendBaseWidget(e)
	return e
}

// TypedKey closes the dialog on Escape; other keys edit text.
func (e *escEntry) TypedKey(k *fyne.KeyEvent) {
	if k.Name == fyne.KeyEscape {
		e.onEscape()
		return
	}
	e.Entry.TypedKey(k)
}
