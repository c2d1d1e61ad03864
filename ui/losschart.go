package ui

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// chartRefreshInterval is the shortest time between two redraws of a loss
// chart while points arrive (at most 10 a second).
const chartRefreshInterval = 100 * time.Millisecond

// chartPalette colours the series of a chart in order (the first is the
// live run; the second the run it is compared with).
var chartPalette = []color.NRGBA{
	{R: 0x21, G: 0x96, B: 0xf3, A: 0xff},
	{R: 0xf4, G: 0x6d, B: 0x1b, A: 0xff},
	{R: 0x2e, G: 0xa0, B: 0x4a, A: 0xff},
	{R: 0xa8, G: 0x3c, B: 0xd0, A: 0xff},
}

// chartSeries is one run's curve: the step, loss and learning rate of every
// recorded optimizer step, in step order.
type chartSeries struct {
	name  string
	steps []float64
	loss  []float64
	lr    []float64
}

// LossChart draws training curves: each series' raw loss faint, its
// EMA-smoothed loss on top, and the learning rate in a strip below. It
// decimates to one min/max pair per pixel column, so a run of 100,000 steps
// draws as fast as one of 100. Drag across it to zoom to a range of steps,
// double-tap to zoom back out; hovering shows the nearest step's loss and lr.
// Append and SetSeries may be called as often as points arrive: the chart
// redraws at most 10 times a second.
type LossChart struct {
	widget.BaseWidget

	mu     sync.Mutex
	series []*chartSeries
	// smoothing is the EMA weight of the previous value (0 = raw, 0.99 = very smooth).
	smoothing float64
	logScale  bool
	// stepsPerEpoch, when > 0 and epochs is set, turns the x axis into epochs.
	stepsPerEpoch int
	epochs        bool
	// zoom is the visible step range; zoomed false shows every step.
	zoomed       bool
	zoomLo       float64
	zoomHi       float64
	hover        fyne.Position
	hovering     bool
	dragFrom     float32
	dragTo       float32
	dragging     bool
	lastRefresh  time.Time
	refreshTimer *time.Timer // a redraw is scheduled or running
	dirty        bool        // points changed since the last redraw began
}

// NewLossChart returns an empty chart with a smoothing of 0.9.
func NewLossChart() *LossChart {
	c := &LossChart{smoothing: 0.9}
	c.ExtendBaseWidget(c)
	return c
}

// SetSeries replaces series i (0 is the first; the list grows as needed)
// with the given points; steps, loss and lr have the same length.
func (c *LossChart) SetSeries(i int, name string, steps []int, loss, lr []float64) {
	c.mu.Lock()
	for len(c.series) <= i {
		c.series = append(c.series, &chartSeries{})
	}
	s := &chartSeries{name: name, steps: make([]float64, len(steps)), loss: append([]float64(nil), loss...), lr: append([]float64(nil), lr...)}
	for k, st := range steps {
		s.steps[k] = float64(st)
	}
	for len(s.lr) < len(s.steps) {
		s.lr = append(s.lr, math.NaN())
	}
	c.series[i] = s
	c.mu.Unlock()
	c.scheduleRefresh()
}

// Append adds one step to series i (made when missing).
func (c *LossChart) Append(i int, step int, loss, lr float64) {
	c.mu.Lock()
	for len(c.series) <= i {
		c.series = append(c.series, &chartSeries{})
	}
	s := c.series[i]
	s.steps = append(s.steps, float64(step))
	s.loss = append(s.loss, loss)
	s.lr = append(s.lr, lr)
	c.mu.Unlock()
	c.scheduleRefresh()
}

// ClearSeries drops every series after the first n.
func (c *LossChart) ClearSeries(n int) {
	c.mu.Lock()
	if len(c.series) > n {
		c.series = c.series[:n]
	}
	c.mu.Unlock()
	c.scheduleRefresh()
}

// Points returns how many points series i holds (0 when it does not exist).
func (c *LossChart) Points(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i >= len(c.series) {
		return 0
	}
	return len(c.series[i].steps)
}

// SetSmoothing sets the EMA weight of the previous value, clamped to [0, 0.999].
func (c *LossChart) SetSmoothing(w float64) {
	c.mu.Lock()
	c.smoothing = math.Max(0, math.Min(0.999, w))
	c.mu.Unlock()
	c.Refresh()
}

// SetLogScale shows the loss axis logarithmic (non-positive losses are left out).
func (c *LossChart) SetLogScale(on bool) {
	c.mu.Lock()
	c.logScale = on
	c.mu.Unlock()
	c.Refresh()
}

// SetEpochs shows the x axis in epochs of stepsPerEpoch steps (on) or in steps.
func (c *LossChart) SetEpochs(on bool, stepsPerEpoch int) {
	c.mu.Lock()
	c.epochs, c.stepsPerEpoch = on, stepsPerEpoch
	c.mu.Unlock()
	c.Refresh()
}

// ZoomTo shows only the steps in [lo, hi].
func (c *LossChart) ZoomTo(lo, hi float64) {
	if hi < lo {
		lo, hi = hi, lo
	}
	c.mu.Lock()
	if hi-lo >= 1 {
		c.zoomed, c.zoomLo, c.zoomHi = true, lo, hi
	}
	c.mu.Unlock()
	c.Refresh()
}

// ResetZoom shows every step again.
func (c *LossChart) ResetZoom() {
	c.mu.Lock()
	c.zoomed = false
	c.mu.Unlock()
	c.Refresh()
}

// scheduleRefresh redraws now if the last redraw is older than
// chartRefreshInterval, else once when it is; further calls in between only
// mark the chart dirty, and a change made during the redraw schedules the
// next. Safe from any goroutine: the redraw goes through fromBackground.
func (c *LossChart) scheduleRefresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	if c.refreshTimer != nil {
		return
	}
	wait := chartRefreshInterval - time.Since(c.lastRefresh)
	if wait < 0 {
		wait = 0
	}
	c.refreshTimer = time.AfterFunc(wait, func() {
		fromBackground(func() {
			c.mu.Lock()
			c.dirty = false
			c.lastRefresh = time.Now()
			c.mu.Unlock()
			c.Refresh()
			c.mu.Lock()
			c.refreshTimer = nil
			again := c.dirty
			c.mu.Unlock()
			if again {
				c.scheduleRefresh()
			}
		})
	})
}

// MinSize is enough for the plot, its labels and the LR strip.
func (c *LossChart) MinSize() fyne.Size { return fyne.NewSize(320, 220) }

// chartGeom is where the parts of the chart lie, in widget units.
type chartGeom struct {
	plot fyne.Position // top-left of the loss plot
	pw   float32       // plot width
	ph   float32       // loss plot height
	lrY  float32       // top of the LR strip
	lrH  float32       // LR strip height
}

// geometry lays out the chart in a widget of size sz.
func geometry(sz fyne.Size) chartGeom {
	const left, right, top, bottom, gap = 56, 8, 22, 18, 6
	lrH := float32(math.Max(30, float64(sz.Height)*0.2))
	g := chartGeom{plot: fyne.NewPos(left, top), pw: sz.Width - left - right}
	g.ph = sz.Height - top - bottom - gap - lrH
	g.lrY = top + g.ph + gap
	g.lrH = lrH
	if g.pw < 1 {
		g.pw = 1
	}
	if g.ph < 1 {
		g.ph = 1
	}
	return g
}

// chartView is a consistent copy of what a frame draws.
type chartView struct {
	series    []*chartSeries
	smooth    [][]float64
	smoothing float64
	logScale  bool
	x0, x1    float64 // visible steps
	y0, y1    float64 // visible loss (log10 when logScale)
	lr1       float64 // the largest visible lr (the strip's top)
	epochs    bool
	spe       int
}

// view snapshots the chart's state and computes its ranges.
func (c *LossChart) view() chartView {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := chartView{series: c.series, smoothing: c.smoothing, logScale: c.logScale, epochs: c.epochs && c.stepsPerEpoch > 0, spe: c.stepsPerEpoch}
	v.x0, v.x1 = math.Inf(1), math.Inf(-1)
	for _, s := range c.series {
		if n := len(s.steps); n > 0 {
			v.x0 = math.Min(v.x0, s.steps[0])
			v.x1 = math.Max(v.x1, s.steps[n-1])
		}
	}
	if c.zoomed {
		v.x0, v.x1 = c.zoomLo, c.zoomHi
	}
	if math.IsInf(v.x0, 0) {
		v.x0, v.x1 = 0, 1
	}
	if v.x1-v.x0 < 1 {
		v.x1 = v.x0 + 1
	}
	v.y0, v.y1 = math.Inf(1), math.Inf(-1)
	v.smooth = make([][]float64, len(c.series))
	for i, s := range c.series {
		v.smooth[i] = emaSmooth(s.loss, c.smoothing)
		for k, x := range s.steps {
			if x < v.x0 || x > v.x1 {
				continue
			}
			if y, ok := v.yOf(s.loss[k]); ok {
				v.y0, v.y1 = math.Min(v.y0, y), math.Max(v.y1, y)
			}
			if lr := s.lr[k]; lr > v.lr1 && !math.IsInf(lr, 0) {
				v.lr1 = lr
			}
		}
	}
	if math.IsInf(v.y0, 0) {
		v.y0, v.y1 = 0, 1
	}
	if pad := (v.y1 - v.y0) * 0.05; pad > 0 {
		v.y0, v.y1 = v.y0-pad, v.y1+pad
	} else {
		v.y0, v.y1 = v.y0-0.5, v.y1+0.5
	}
	return v
}

// yOf maps a loss to the plot's axis (log10 in log scale); false when it
// cannot be shown (NaN, infinite, or not positive on a log axis).
func (v chartView) yOf(loss float64) (float64, bool) {
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return 0, false
	}
	if v.logScale {
		if loss <= 0 {
			return 0, false
		}
		return math.Log10(loss), true
	}
	return loss, true
}

// emaSmooth is TensorBoard's smoothing: an exponential moving average with
// weight w on the previous value, debiased so the first points are not
// pulled toward zero: s_i = m_i / (1 - w^(i+1)), m_i = w·m_{i-1} + (1-w)·y_i.
// NaN and infinite values are skipped (the previous smoothed value repeats).
func emaSmooth(ys []float64, w float64) []float64 {
	out := make([]float64, len(ys))
	m, wp, n := 0.0, 1.0, 0
	for i, y := range ys {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			if n == 0 {
				out[i] = math.NaN()
			} else {
				out[i] = out[i-1]
			}
			continue
		}
		m = w*m + (1-w)*y
		wp *= w
		n++
		if w == 0 {
			out[i] = y
			continue
		}
		out[i] = m / (1 - wp)
	}
	return out
}

// chartColumn is one pixel column of a decimated series: the smallest and
// largest value in it, the first and last (to join neighbouring columns),
// and how many points fell in it (0: the column is empty).
type chartColumn struct {
	Min, Max, First, Last float64
	N                     int
}

// decimate bins the points (xs ascending) whose x lies in [x0, x1] into
// cols equal columns, keeping each column's min, max, first and last y.
// NaN and infinite ys are left out. Cost: one pass over the points.
func decimate(xs, ys []float64, x0, x1 float64, cols int) []chartColumn {
	out := make([]chartColumn, cols)
	if cols <= 0 || x1 <= x0 {
		return out
	}
	scale := float64(cols) / (x1 - x0)
	for k, x := range xs {
		if x < x0 || x > x1 {
			continue
		}
		y := ys[k]
		if math.IsNaN(y) || math.IsInf(y, 0) {
			continue
		}
		col := int((x - x0) * scale)
		if col >= cols {
			col = cols - 1
		}
		c := &out[col]
		if c.N == 0 {
			c.Min, c.Max, c.First = y, y, y
		} else {
			c.Min, c.Max = math.Min(c.Min, y), math.Max(c.Max, y)
		}
		c.Last = y
		c.N++
	}
	return out
}

// rasterImage draws the chart's curves, grid and LR strip into a w×h image
// for a widget of size sz (scale = w / sz.Width pixels per unit).
func (c *LossChart) rasterImage(w, h int, sz fyne.Size) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	if w <= 0 || h <= 0 || sz.Width <= 0 {
		return img
	}
	th := c.Theme()
	variant := fyne.CurrentApp().Settings().ThemeVariant()
	bg := toNRGBA(th.Color(theme.ColorNameInputBackground, variant))
	grid := toNRGBA(th.Color(theme.ColorNameSeparator, variant))
	fill(img, bg)
	scale := float64(w) / float64(sz.Width)
	g := geometry(sz)
	px := int(float64(g.plot.X) * scale)
	pw := int(float64(g.pw) * scale)
	py := int(float64(g.plot.Y) * scale)
	ph := int(float64(g.ph) * scale)
	ly := int(float64(g.lrY) * scale)
	lh := int(float64(g.lrH) * scale)
	if pw < 2 || ph < 2 {
		return img
	}
	v := c.view()
	// Grid: five horizontal lines on the loss plot, the strip's frame.
	for i := 0; i <= 4; i++ {
		y := py + (ph-1)*i/4
		hline(img, px, px+pw-1, y, grid)
	}
	hline(img, px, px+pw-1, ly, grid)
	hline(img, px, px+pw-1, ly+lh-1, grid)
	vline(img, px, py, py+ph-1, grid)
	vline(img, px, ly, ly+lh-1, grid)

	toY := func(y float64) float64 { return float64(py) + (v.y1-y)/(v.y1-v.y0)*float64(ph-1) }
	for i, s := range v.series {
		col := chartPalette[i%len(chartPalette)]
		faint := col
		faint.A = 0x50
		ys := make([]float64, len(s.loss))
		sm := make([]float64, len(s.loss))
		for k := range s.loss {
			var ok bool
			if ys[k], ok = v.yOf(s.loss[k]); !ok {
				ys[k] = math.NaN()
			}
			if sm[k], ok = v.yOf(v.smooth[i][k]); !ok {
				sm[k] = math.NaN()
			}
		}
		drawColumns(img, decimate(s.steps, ys, v.x0, v.x1, pw), px, toY, faint)
		if v.smoothing > 0 {
			drawColumns(img, decimate(s.steps, sm, v.x0, v.x1, pw), px, toY, col)
		}
		if v.lr1 > 0 {
			lrY := func(lr float64) float64 { return float64(ly+lh-2) - lr/v.lr1*float64(lh-3) }
			lrc := col
			lrc.A = 0xb0
			drawColumns(img, decimate(s.steps, s.lr, v.x0, v.x1, pw), px, lrY, lrc)
		}
	}
	return img
}

// drawColumns draws decimated columns: a vertical bar from min to max in
// each, joined to the previous non-empty column from its last value to this
// one's first.
func drawColumns(img *image.NRGBA, cols []chartColumn, x0 int, toY func(float64) float64, col color.NRGBA) {
	prev := -1
	for i, c := range cols {
		if c.N == 0 {
			continue
		}
		x := x0 + i
		if prev >= 0 {
			line(img, x0+prev, int(math.Round(toY(cols[prev].Last))), x, int(math.Round(toY(c.First))), col)
		}
		vline(img, x, int(math.Round(toY(c.Max))), int(math.Round(toY(c.Min))), col)
		prev = i
	}
}

// fill paints the whole image with c.
func fill(img *image.NRGBA, c color.NRGBA) {
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
}

// blend draws c over the pixel at (x, y) with c's alpha (clipped to the image).
func blend(img *image.NRGBA, x, y int, c color.NRGBA) {
	if !(image.Point{X: x, Y: y}).In(img.Rect) {
		return
	}
	i := img.PixOffset(x, y)
	a := uint32(c.A)
	mix := func(dst uint8, src uint8) uint8 { return uint8((uint32(src)*a + uint32(dst)*(255-a)) / 255) }
	img.Pix[i] = mix(img.Pix[i], c.R)
	img.Pix[i+1] = mix(img.Pix[i+1], c.G)
	img.Pix[i+2] = mix(img.Pix[i+2], c.B)
	img.Pix[i+3] = 0xff
}

// hline draws a horizontal line from x0 to x1 at y.
func hline(img *image.NRGBA, x0, x1, y int, c color.NRGBA) {
	for x := x0; x <= x1; x++ {
		blend(img, x, y, c)
	}
}

// vline draws a vertical line at x between y0 and y1 (either order).
func vline(img *image.NRGBA, x, y0, y1 int, c color.NRGBA) {
	if y1 < y0 {
		y0, y1 = y1, y0
	}
	for y := y0; y <= y1; y++ {
		blend(img, x, y, c)
	}
}

// line draws a straight line (Bresenham), each pixel once.
func line(img *image.NRGBA, x0, y0, x1, y1 int, c color.NRGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	err := dx + dy
	for {
		blend(img, x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

func abs(a int) int {
	if a < 0 {
		return -a
	}
	return a
}

// toNRGBA converts any colour to non-premultiplied RGBA.
func toNRGBA(c color.Color) color.NRGBA { return color.NRGBAModel.Convert(c).(color.NRGBA) }

// stepAt is the step under widget x (clamped to the visible range).
func (c *LossChart) stepAt(x float32) float64 {
	g := geometry(c.Size())
	v := c.view()
	f := float64((x - g.plot.X) / g.pw)
	f = math.Max(0, math.Min(1, f))
	return v.x0 + f*(v.x1-v.x0)
}

// Readout is the hover text for the step nearest to step in the first
// series that has points ("" when none): "step S · loss L · lr R".
func (c *LossChart) Readout(step float64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.series {
		if len(s.steps) == 0 {
			continue
		}
		k := nearest(s.steps, step)
		txt := fmt.Sprintf("step %d · loss %.4g", int(s.steps[k]), s.loss[k])
		if c.epochs && c.stepsPerEpoch > 0 {
			txt = fmt.Sprintf("step %d (epoch %.2f) · loss %.4g", int(s.steps[k]), s.steps[k]/float64(c.stepsPerEpoch), s.loss[k])
		}
		if lr := s.lr[k]; !math.IsNaN(lr) {
			txt += fmt.Sprintf(" · lr %.3g", lr)
		}
		return txt
	}
	return ""
}

// nearest is the index of the value of xs (ascending) closest to x.
func nearest(xs []float64, x float64) int {
	lo, hi := 0, len(xs)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if xs[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo > 0 && math.Abs(xs[lo-1]-x) <= math.Abs(xs[lo]-x) {
		return lo - 1
	}
	return lo
}

// MouseIn starts the hover readout.
func (c *LossChart) MouseIn(e *desktop.MouseEvent) { c.MouseMoved(e) }

// MouseMoved moves the hover readout.
func (c *LossChart) MouseMoved(e *desktop.MouseEvent) {
	c.mu.Lock()
	c.hover, c.hovering = e.Position, true
	c.mu.Unlock()
	c.Refresh()
}

// MouseOut hides the hover readout.
func (c *LossChart) MouseOut() {
	c.mu.Lock()
	c.hovering = false
	c.mu.Unlock()
	c.Refresh()
}

// Dragged grows the zoom selection.
func (c *LossChart) Dragged(e *fyne.DragEvent) {
	c.mu.Lock()
	if !c.dragging {
		c.dragging = true
		c.dragFrom = e.Position.X - e.Dragged.DX
	}
	c.dragTo = e.Position.X
	c.mu.Unlock()
	c.Refresh()
}

// DragEnd zooms to the selected range of steps.
func (c *LossChart) DragEnd() {
	c.mu.Lock()
	from, to, ok := c.dragFrom, c.dragTo, c.dragging
	c.dragging = false
	c.mu.Unlock()
	if ok && math.Abs(float64(to-from)) >= 4 {
		c.ZoomTo(c.stepAt(from), c.stepAt(to))
		return
	}
	c.Refresh()
}

// DoubleTapped zooms back out.
func (c *LossChart) DoubleTapped(*fyne.PointEvent) { c.ResetZoom() }

// CreateRenderer builds the raster and the axis labels.
func (c *LossChart) CreateRenderer() fyne.WidgetRenderer {
	r := &lossChartRenderer{c: c}
	r.raster = canvas.NewRaster(func(w, h int) image.Image { return c.rasterImage(w, h, c.Size()) })
	text := func() *canvas.Text {
		t := canvas.NewText("", theme.Color(theme.ColorNameForeground))
		t.TextSize = theme.CaptionTextSize()
		return t
	}
	r.yMax, r.yMin, r.xMin, r.xMax, r.lrMax, r.readout = text(), text(), text(), text(), text(), text()
	r.title = text()
	r.selection = canvas.NewRectangle(color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x40})
	r.cursor = canvas.NewRectangle(color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xa0})
	return r
}

// lossChartRenderer lays the raster under the axis labels, the hover
// readout and the drag selection.
type lossChartRenderer struct {
	c                                      *LossChart
	raster                                 *canvas.Raster
	yMax, yMin, xMin, xMax, lrMax, readout *canvas.Text
	title                                  *canvas.Text
	selection, cursor                      *canvas.Rectangle
}

func (r *lossChartRenderer) Destroy() {}

func (r *lossChartRenderer) MinSize() fyne.Size { return r.c.MinSize() }

func (r *lossChartRenderer) Objects() []fyne.CanvasObject {
	return []fyne.CanvasObject{r.raster, r.selection, r.cursor, r.yMax, r.yMin, r.xMin, r.xMax, r.lrMax, r.title, r.readout}
}

// Layout places the labels around the plot.
func (r *lossChartRenderer) Layout(sz fyne.Size) {
	r.raster.Resize(sz)
	r.raster.Move(fyne.NewPos(0, 0))
	r.update(sz)
}

// update sets the labels' text and positions from the chart's state.
func (r *lossChartRenderer) update(sz fyne.Size) {
	g := geometry(sz)
	v := r.c.view()
	fg := theme.Color(theme.ColorNameForeground)
	for _, t := range []*canvas.Text{r.yMax, r.yMin, r.xMin, r.xMax, r.lrMax, r.readout, r.title} {
		t.Color = fg
	}
	yLabel := func(y float64) string {
		if v.logScale {
			return fmt.Sprintf("%.3g", math.Pow(10, y))
		}
		return fmt.Sprintf("%.3g", y)
	}
	xLabel := func(x float64) string {
		if v.epochs {
			return fmt.Sprintf("epoch %.2f", x/float64(v.spe))
		}
		return fmt.Sprintf("step %d", int(math.Round(x)))
	}
	r.yMax.Text, r.yMin.Text = yLabel(v.y1), yLabel(v.y0)
	r.xMin.Text, r.xMax.Text = xLabel(v.x0), xLabel(v.x1)
	r.lrMax.Text = ""
	if v.lr1 > 0 {
		r.lrMax.Text = fmt.Sprintf("lr %.2g", v.lr1)
	}
	r.title.Text = "loss"
	if v.logScale {
		r.title.Text = "loss (log)"
	}
	place := func(t *canvas.Text, x, y float32, alignRight bool) {
		t.Refresh()
		ms := t.MinSize()
		if alignRight {
			x -= ms.Width
		}
		t.Move(fyne.NewPos(x, y))
		t.Resize(ms)
	}
	place(r.yMax, g.plot.X-4, g.plot.Y-6, true)
	place(r.yMin, g.plot.X-4, g.plot.Y+g.ph-12, true)
	place(r.lrMax, g.plot.X-4, g.lrY-2, true)
	place(r.xMin, g.plot.X, g.lrY+g.lrH+1, false)
	place(r.xMax, g.plot.X+g.pw, g.lrY+g.lrH+1, true)
	place(r.title, g.plot.X, 2, false)

	r.c.mu.Lock()
	hover, hovering := r.c.hover, r.c.hovering
	from, to, dragging := r.c.dragFrom, r.c.dragTo, r.c.dragging
	r.c.mu.Unlock()
	r.readout.Text = ""
	r.cursor.Hide()
	if hovering && hover.X >= g.plot.X && hover.X <= g.plot.X+g.pw {
		r.readout.Text = r.c.Readout(r.c.stepAt(hover.X))
		r.cursor.Move(fyne.NewPos(hover.X, g.plot.Y))
		r.cursor.Resize(fyne.NewSize(1, g.lrY+g.lrH-g.plot.Y))
		r.cursor.Show()
	}
	place(r.readout, g.plot.X+g.pw, 2, true)
	if dragging {
		lo, hi := min(from, to), max(from, to)
		r.selection.Move(fyne.NewPos(lo, g.plot.Y))
		r.selection.Resize(fyne.NewSize(hi-lo, g.lrY+g.lrH-g.plot.Y))
		r.selection.Show()
	} else {
		r.selection.Hide()
	}
}

// Refresh redraws the raster and the labels.
func (r *lossChartRenderer) Refresh() {
	r.update(r.c.Size())
	r.raster.Refresh()
}
