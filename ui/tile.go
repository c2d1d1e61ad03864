package ui

import (
	"image"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// thumbSize is the edge, in pixels, of the thumbnails the grid asks for.
const thumbSize = 256

// tileEdge is the edge of a tile's picture area on screen, in Fyne units.
const tileEdge = 132

// tileState is what a tile shows about its image besides the picture.
type tileState int

const (
	tileCaptioned tileState = iota
	tileUncaptioned
	tileBroken
)

// thumbTile is one cell of the dataset grid: the thumbnail (or a placeholder
// icon while it loads), the file name, and a badge for uncaptioned or
// unreadable images.
type thumbTile struct {
	widget.BaseWidget

	rel         string    // the item this tile shows now ("" for none)
	state       tileState // its badge
	bg          *canvas.Rectangle
	placeholder *widget.Icon
	img         *canvas.Image
	name        *widget.Label
	badgeBox    *fyne.Container
	badgeBg     *canvas.Rectangle
	badgeText   *canvas.Text
}

// newThumbTile creates an empty tile.
func newThumbTile() *thumbTile {
	t := &thumbTile{
		bg:          canvas.NewRectangle(theme.Color(theme.ColorNameInputBackground)),
		placeholder: widget.NewIcon(theme.FileImageIcon()),
		img:         canvas.NewImageFromImage(nil),
		name:        widget.NewLabel(""),
		badgeBg:     canvas.NewRectangle(color.Transparent),
		badgeText:   canvas.NewText("", color.White),
	}
	t.bg.CornerRadius = theme.InputRadiusSize()
	t.bg.SetMinSize(fyne.NewSquareSize(tileEdge))
	t.img.FillMode = canvas.ImageFillContain
	t.img.ScaleMode = canvas.ImageScaleSmooth
	t.name.Truncation = fyne.TextTruncateEllipsis
	t.name.Alignment = fyne.TextAlignCenter
	t.name.SizeName = theme.SizeNameCaptionText
	t.badgeBg.CornerRadius = 4
	t.badgeText.TextSize = 10
	t.badgeText.TextStyle = fyne.TextStyle{Bold: true}
	t.badgeBox = container.NewStack(t.badgeBg, container.New(&padLayout{h: 5, v: 1}, t.badgeText))
	t.badgeBox.Hide()
	t.ExtendBaseWidget(t)
	return t
}

// CreateRenderer lays the picture above the name, the badge in the top-left corner.
func (t *thumbTile) CreateRenderer() fyne.WidgetRenderer {
	picture := container.NewStack(t.bg, container.NewCenter(t.placeholder), container.NewPadded(t.img),
		container.NewBorder(container.NewPadded(container.NewHBox(t.badgeBox)), nil, nil, nil))
	return widget.NewSimpleRenderer(container.NewBorder(nil, t.name, nil, nil, picture))
}

// show points the tile at an item: name, badge, and the picture if known.
// Unchanged parts are left alone (text shaping is the costly part of a grid refresh).
func (t *thumbTile) show(rel, name string, state tileState, img image.Image) {
	sameItem := t.rel == rel && t.state == state && rel != ""
	t.rel = rel
	if t.name.Text != name {
		t.name.SetText(name)
	}
	if !sameItem {
		t.state = state
		switch state {
		case tileUncaptioned:
			t.badgeText.Text = "NO CAPTION"
			t.badgeBg.FillColor = theme.Color(theme.ColorNameWarning)
			t.badgeBox.Show()
		case tileBroken:
			t.badgeText.Text = "UNREADABLE"
			t.badgeBg.FillColor = theme.Color(theme.ColorNameError)
			t.badgeBox.Show()
		default:
			t.badgeBox.Hide()
		}
		t.badgeText.Refresh()
		t.badgeBg.Refresh()
		if state == tileBroken {
			t.placeholder.SetResource(theme.BrokenImageIcon())
		} else {
			t.placeholder.SetResource(theme.FileImageIcon())
		}
	}
	if sameItem && img == nil && t.img.Image != nil {
		return // keep the thumbnail already shown while a fresh one loads
	}
	if img != t.img.Image || img == nil {
		t.setImage(img)
	}
}

// setImage shows a thumbnail, or the placeholder when img is nil.
func (t *thumbTile) setImage(img image.Image) {
	t.img.Image = img
	if img == nil {
		t.placeholder.Show()
	} else {
		t.placeholder.Hide()
	}
	t.img.Refresh()
}

// padLayout pads its single child by fixed horizontal and vertical margins.
type padLayout struct{ h, v float32 }

// Layout places every object inside the margins.
func (p *padLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Move(fyne.NewPos(p.h, p.v))
		o.Resize(fyne.NewSize(size.Width-2*p.h, size.Height-2*p.v))
	}
}

// MinSize is the largest child's minimum plus the margins.
func (p *padLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var m fyne.Size
	for _, o := range objs {
		m = m.Max(o.MinSize())
	}
	return m.Add(fyne.NewSize(2*p.h, 2*p.v))
}
