package ui

import (
	"fmt"
	"sort"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"
)

// sampleThumb is the side of a sample's cell in the grid.
const sampleThumb = 112

// samplesGrid shows a run's sample images: one row per sampling step, one
// column per prompt. A click opens the large view, where ←/→ move between
// prompts and ↑/↓ between steps.
type samplesGrid struct {
	win     fyne.Window
	steps   []int
	prompts []string
	paths   map[sampleKey]string
	rows    *fyne.Container
	content fyne.CanvasObject
	viewer  *sampleViewer // the open large view, nil when closed
}

// sampleKey is a cell: a step and a prompt's column.
type sampleKey struct{ step, prompt int }

// newSamplesGrid returns an empty grid whose large view opens over win.
func newSamplesGrid(win fyne.Window) *samplesGrid {
	g := &samplesGrid{win: win, paths: map[sampleKey]string{}}
	g.rows = container.NewVBox()
	g.content = container.NewVScroll(g.rows)
	g.rebuild()
	return g
}

// clear removes every sample.
func (g *samplesGrid) clear() {
	g.steps, g.prompts, g.paths = nil, nil, map[sampleKey]string{}
	g.rebuild()
}

// add puts the image at path in the cell of (step, prompt).
func (g *samplesGrid) add(step int, prompt, path string) {
	col := -1
	for i, p := range g.prompts {
		if p == prompt {
			col = i
		}
	}
	if col < 0 {
		col = len(g.prompts)
		g.prompts = append(g.prompts, prompt)
	}
	i := sort.SearchInts(g.steps, step)
	if i == len(g.steps) || g.steps[i] != step {
		g.steps = append(g.steps, 0)
		copy(g.steps[i+1:], g.steps[i:])
		g.steps[i] = step
	}
	g.paths[sampleKey{step, col}] = path
	g.rebuild()
}

// count is the number of sample images shown.
func (g *samplesGrid) count() int { return len(g.paths) }

// rebuild redraws the rows from the cells.
func (g *samplesGrid) rebuild() {
	g.rows.RemoveAll()
	if len(g.steps) == 0 {
		l := widget.NewLabel("Samples appear here every \"Sample every\" steps and on Sample now.")
		l.Importance = widget.LowImportance
		g.rows.Add(l)
		g.rows.Refresh()
		return
	}
	for si := len(g.steps) - 1; si >= 0; si-- { // newest first
		step := g.steps[si]
		row := container.NewHBox(container.NewGridWrap(fyne.NewSize(70, sampleThumb), widget.NewLabel(fmt.Sprintf("step %d", step))))
		for pi := range g.prompts {
			p, ok := g.paths[sampleKey{step, pi}]
			if !ok {
				row.Add(container.NewGridWrap(fyne.NewSize(sampleThumb, sampleThumb), widget.NewLabel("—")))
				continue
			}
			si, pi := si, pi
			row.Add(container.NewGridWrap(fyne.NewSize(sampleThumb, sampleThumb), newTapImage(p, func() { g.open(si, pi) })))
		}
		g.rows.Add(row)
	}
	g.rows.Refresh()
}

// open shows the large view of the cell (step index si, prompt pi).
func (g *samplesGrid) open(si, pi int) {
	v := newSampleViewer(g, si, pi)
	d := dialog.NewCustom("Sample", "Close", v.content, g.win)
	v.onClose = func() { d.Hide() }
	d.SetOnClosed(func() { g.viewer = nil })
	d.Resize(fyne.NewSize(720, 720))
	g.viewer = v
	d.Show()
	g.win.Canvas().Focus(v)
}

// tapImage is an image that reacts to a click.
type tapImage struct {
	widget.BaseWidget
	img   *canvas.Image
	onTap func()
}

// newTapImage shows the image file at path and calls onTap when clicked.
func newTapImage(path string, onTap func()) *tapImage {
	t := &tapImage{img: canvas.NewImageFromFile(path), onTap: onTap}
	t.img.FillMode = canvas.ImageFillContain
	t.img.ScaleMode = canvas.ImageScaleFastest
	t.ExtendBaseWidget(t)
	return t
}

// Tapped opens the image.
func (t *tapImage) Tapped(*fyne.PointEvent) {
	if t.onTap != nil {
		t.onTap()
	}
}

// CreateRenderer draws the image.
func (t *tapImage) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(t.img) }

// sampleViewer is the large view of one sample; it takes the arrow keys.
type sampleViewer struct {
	widget.BaseWidget
	g       *samplesGrid
	si, pi  int
	img     *canvas.Image
	caption *widget.Label
	content fyne.CanvasObject
	onClose func()
}

// newSampleViewer opens on cell (si, pi) of g.
func newSampleViewer(g *samplesGrid, si, pi int) *sampleViewer {
	v := &sampleViewer{g: g, si: si, pi: pi, img: &canvas.Image{FillMode: canvas.ImageFillContain}, caption: widget.NewLabel("")}
	v.caption.Wrapping = fyne.TextWrapWord
	v.ExtendBaseWidget(v)
	hint := widget.NewLabel("←/→ prompts · ↑/↓ steps")
	hint.Importance = widget.LowImportance
	v.content = container.NewBorder(v.caption, hint, nil, nil, container.NewStack(v, v.img))
	v.show()
	return v
}

// show loads the current cell.
func (v *sampleViewer) show() {
	step := v.g.steps[v.si]
	v.img.File = v.g.paths[sampleKey{step, v.pi}]
	v.img.Image = nil
	v.img.Refresh()
	text := fmt.Sprintf("step %d · prompt %d of %d: %s", step, v.pi+1, len(v.g.prompts), v.g.prompts[v.pi])
	if v.img.File == "" {
		text += " (no image at this step)"
	}
	v.caption.SetText(text)
}

// Current is the step and prompt shown.
func (v *sampleViewer) Current() (step int, prompt string) {
	return v.g.steps[v.si], v.g.prompts[v.pi]
}

// TypedKey moves through the grid: ←/→ prompts, ↑/↓ steps (↑ newer).
func (v *sampleViewer) TypedKey(k *fyne.KeyEvent) {
	switch k.Name {
	case fyne.KeyLeft:
		v.pi = max(v.pi-1, 0)
	case fyne.KeyRight:
		v.pi = min(v.pi+1, len(v.g.prompts)-1)
	case fyne.KeyUp:
		v.si = min(v.si+1, len(v.g.steps)-1)
	case fyne.KeyDown:
		v.si = max(v.si-1, 0)
	case fyne.KeyEscape:
		if v.onClose != nil {
			v.onClose()
		}
		return
	default:
		return
	}
	v.show()
}

// TypedRune ignores text.
func (v *sampleViewer) TypedRune(rune) {}

// FocusGained is part of fyne.Focusable.
func (v *sampleViewer) FocusGained() {}

// FocusLost is part of fyne.Focusable.
func (v *sampleViewer) FocusLost() {}

// Tapped takes the focus back (after a click elsewhere in the dialog).
func (v *sampleViewer) Tapped(*fyne.PointEvent) {
	if c := fyne.CurrentApp().Driver().CanvasForObject(v); c != nil {
		c.Focus(v)
	}
}

// CreateRenderer draws nothing: the image lies under it in the stack.
func (v *sampleViewer) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(container.NewStack())
}
