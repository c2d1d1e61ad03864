package ui

import (
	"bytes"
	"flag"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
)

// update rewrites the golden images under testdata/ instead of comparing.
var update = flag.Bool("update", false, "rewrite the golden images in ui/testdata")

// knownRun is a deterministic loss curve: an exponential decay with a
// periodic wobble and noise from a fixed seed, a warm-up then cosine lr.
func knownRun(n int, seed uint64) (steps []int, loss, lr []float64) {
	r := rand.New(rand.NewPCG(seed, 7))
	for i := 1; i <= n; i++ {
		steps = append(steps, i)
		loss = append(loss, 0.05+0.4*math.Exp(-float64(i)/60)+0.03*math.Sin(float64(i)/5)+0.04*r.Float64())
		l := 1e-4 * float64(i) / 20
		if i > 20 {
			l = 1e-4 * 0.5 * (1 + math.Cos(math.Pi*float64(i-20)/float64(n-20)))
		}
		lr = append(lr, l)
	}
	return
}

// assertGolden compares img with ui/testdata/name, pixel for pixel; with
// -update it writes the file instead. A mismatch writes the image under
// testdata/failed/ to look at.
func assertGolden(t *testing.T, name string, img image.Image) {
	t.Helper()
	p := filepath.Join("testdata", name)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", p)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatalf("golden %s: %v (run go test ./ui -run %s -update to write it)", p, err, t.Name())
	}
	defer f.Close()
	want, err := png.Decode(f)
	if err != nil {
		t.Fatalf("golden %s: %v", p, err)
	}
	fail := func(format string, a ...any) {
		t.Helper()
		os.MkdirAll(filepath.Join("testdata", "failed"), 0o755)
		out := filepath.Join("testdata", "failed", name)
		os.WriteFile(out, buf.Bytes(), 0o644)
		t.Fatalf(format+" (the image drawn is in %s)", append(a, out)...)
	}
	if want.Bounds() != img.Bounds() {
		fail("%s: size %v, golden %v", name, img.Bounds(), want.Bounds())
	}
	diff := 0
	first := image.Point{-1, -1}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := img.At(x, y).RGBA()
			r2, g2, b2, a2 := want.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				if diff == 0 {
					first = image.Pt(x, y)
				}
				diff++
			}
		}
	}
	if diff > 0 {
		fail("%s: %d pixels differ from the golden, the first at %v", name, diff, first)
	}
}

// TestLossChartGolden renders a chart of two known runs (one smoothed, with
// lr) in the test driver and compares it with the golden image.
func TestLossChartGolden(t *testing.T) {
	test.NewTempApp(t)
	c := NewLossChart()
	steps, loss, lr := knownRun(300, 1)
	c.SetSeries(0, "a", steps, loss, lr)
	steps2, loss2, lr2 := knownRun(200, 2)
	for i := range loss2 {
		loss2[i] *= 1.3
	}
	c.SetSeries(1, "b", steps2, loss2, lr2)
	waitChartIdle(t, c)
	w := test.NewTempWindow(t, c)
	w.SetPadded(false)
	w.Resize(fyne.NewSize(480, 300))
	img := w.Canvas().Capture()
	assertGolden(t, "losschart.png", img)

	// Log scale and a zoom change the picture: the golden is not a blank.
	c.SetLogScale(true)
	c.ZoomTo(50, 150)
	if sameImage(img, w.Canvas().Capture()) {
		t.Fatal("log scale and zoom drew the same image")
	}
	c.SetLogScale(false)
	c.ResetZoom()
	if !sameImage(img, w.Canvas().Capture()) {
		t.Fatal("back at linear scale, unzoomed, the chart differs from the first drawing")
	}
}

// waitChartIdle waits until the chart's throttled redraw has run: the test
// driver runs fyne.Do on the timer's goroutine, which must not lay out the
// labels while the test resizes the window.
func waitChartIdle(t *testing.T, c *LossChart) {
	t.Helper()
	waitFor(t, "the chart's pending redraw", func() (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.refreshTimer == nil, "a redraw is pending"
	})
}

// sameImage reports whether a and b have the same pixels.
func sameImage(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

// TestDecimateKeepsMinMax checks every column of a decimated random series
// against a brute-force pass: the same count, min, max, first and last.
func TestDecimateKeepsMinMax(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n, cols = 100_000, 317
	xs, ys := make([]float64, n), make([]float64, n)
	for i := range xs {
		xs[i] = float64(i + 1)
		ys[i] = r.NormFloat64()
	}
	ys[4242] = math.NaN() // skipped, never a min or max
	x0, x1 := 1000.0, 90_000.0
	got := decimate(xs, ys, x0, x1, cols)
	want := make([]chartColumn, cols)
	for i, x := range xs {
		if x < x0 || x > x1 || math.IsNaN(ys[i]) {
			continue
		}
		c := min(int((x-x0)/(x1-x0)*cols), cols-1)
		w := &want[c]
		if w.N == 0 {
			w.Min, w.Max, w.First = ys[i], ys[i], ys[i]
		}
		w.Min, w.Max, w.Last = math.Min(w.Min, ys[i]), math.Max(w.Max, ys[i]), ys[i]
		w.N++
	}
	total := 0
	for c := range want {
		if got[c] != want[c] {
			t.Fatalf("column %d: got %+v, want %+v", c, got[c], want[c])
		}
		total += got[c].N
	}
	if total != 89_000 { // steps 1000..90000, less the NaN at step 4243
		t.Fatalf("columns hold %d points, want 89000", total)
	}
	// A spike inside a column survives decimation.
	ys[50_000] = 1e6
	got = decimate(xs, ys, x0, x1, cols)
	col := int((xs[50_000] - x0) / (x1 - x0) * cols)
	if got[col].Max != 1e6 {
		t.Fatalf("the spike at step %v is lost: column %d max %v", xs[50_000], col, got[col].Max)
	}
}

// TestEMASmooth checks the debiased EMA against values worked by hand.
func TestEMASmooth(t *testing.T) {
	ys := []float64{1, 3, math.NaN(), 2}
	got := emaSmooth(ys, 0.5)
	// m1 = .5, s1 = .5/.5 = 1; m2 = .25+1.5 = 1.75, s2 = 1.75/.75; NaN repeats;
	// m3 = .875+1 = 1.875, s3 = 1.875/.875.
	want := []float64{1, 1.75 / 0.75, 1.75 / 0.75, 1.875 / 0.875}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("ema[%d] = %v, want %v (all %v)", i, got[i], want[i], got)
		}
	}
	raw := emaSmooth(ys[:2], 0)
	if raw[0] != 1 || raw[1] != 3 {
		t.Fatalf("smoothing 0 changed the values: %v", raw)
	}
}

// TestLossChartReadout checks the hover text names the nearest step.
func TestLossChartReadout(t *testing.T) {
	test.NewTempApp(t)
	c := NewLossChart()
	c.SetSeries(0, "a", []int{10, 20, 30}, []float64{0.5, 0.25, 0.125}, []float64{1e-4, 2e-4, 3e-4})
	if got, want := c.Readout(21), "step 20 · loss 0.25 · lr 0.0002"; got != want {
		t.Fatalf("readout %q, want %q", got, want)
	}
	c.SetEpochs(true, 10)
	if got, want := c.Readout(29), "step 30 (epoch 3.00) · loss 0.125 · lr 0.0003"; got != want {
		t.Fatalf("readout %q, want %q", got, want)
	}
}

// BenchmarkLossChartRaster draws a chart of 100 and of 100,000 points: the
// per-column decimation keeps the two close.
func BenchmarkLossChartRaster(b *testing.B) {
	test.NewTempApp(b)
	for _, n := range []int{100, 100_000} {
		b.Run(fmtInt(n), func(b *testing.B) {
			c := NewLossChart()
			steps, loss, lr := knownRun(n, 1)
			c.SetSeries(0, "a", steps, loss, lr)
			sz := fyne.NewSize(800, 400)
			for b.Loop() {
				c.rasterImage(800, 400, sz)
			}
		})
	}
}

func fmtInt(n int) string { return strconv.Itoa(n) }
