package studio

import "strings"

// WarningKind says what an item's warning is about, so screens and commands
// group, filter and word warnings by kind instead of matching their text.
type WarningKind int

const (
	// WarnSmall: the shorter side is below DefaultResolution; training upscales it.
	WarnSmall WarningKind = iota + 1
	// WarnColour: CMYK or 16-bit channels, converted for training.
	WarnColour
	// WarnSize: width or height not divisible by 8; training crops it.
	WarnSize
	// WarnTruncated: the file may be cut short (a JPEG with no end marker).
	WarnTruncated
	// WarnSharedCaption: another image maps to the same caption file.
	WarnSharedCaption
	// WarnCaptionFile: the caption file cannot be used (Item.CaptionErr says why).
	WarnCaptionFile
)

// Warning is one problem of a dataset item that does not stop training.
type Warning struct {
	Kind WarningKind
	Text string // the sentence shown to the user, without the image's name
}

// String returns the warning's text.
func (w Warning) String() string { return w.Text }

// WarningTexts returns the texts of the item's warnings, in order.
func (it *Item) WarningTexts() []string {
	if len(it.Warnings) == 0 {
		return nil
	}
	out := make([]string, len(it.Warnings))
	for i, w := range it.Warnings {
		out[i] = w.Text
	}
	return out
}

// HasWarning reports whether the item has a warning of kind k.
func (it *Item) HasWarning(k WarningKind) bool {
	for _, w := range it.Warnings {
		if w.Kind == k {
			return true
		}
	}
	return false
}

// NeedsCaption reports whether the item still needs a caption: no caption
// file, or one holding only white space. A caption file that cannot be read
// as text is not counted as needing one (its bytes are left alone until the
// user replaces them). This is the one rule behind Dataset.Progress,
// Uncaptioned, NextUncaptioned and the screens' "uncaptioned" badges.
func (it *Item) NeedsCaption() bool {
	if !it.HasCaption {
		return true
	}
	return it.CaptionErr == nil && strings.TrimSpace(it.Caption) == ""
}
