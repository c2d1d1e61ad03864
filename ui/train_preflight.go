package ui

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// maxIssuesShown bounds the warnings listed (the rest are counted).
const maxIssuesShown = 40

// preflightPanel shows the pre-flight of the settings in the form: counts,
// the bucket histogram, steps, the memory estimate held against the
// device's memory, the time estimate and per-image warnings (a click opens
// the image in the Dataset tab).
type preflightPanel struct {
	content  fyne.CanvasObject
	status   *widget.Label // "checking…" or the error
	counts   *widget.Label
	buckets  *fyne.Container
	steps    *widget.Label
	memory   *widget.Label
	advice   *widget.Label
	time     *widget.Label
	issues   *fyne.Container
	openPath func(path string)
	fits     bool // the last estimate fits the device (or the device says nothing)
}

// newPreflightPanel returns an empty panel; openPath opens a warned image.
func newPreflightPanel(openPath func(string)) *preflightPanel {
	p := &preflightPanel{openPath: openPath, fits: true}
	wrap := func() *widget.Label {
		l := widget.NewLabel("")
		l.Wrapping = fyne.TextWrapWord
		return l
	}
	p.status, p.counts, p.steps, p.memory, p.advice, p.time = wrap(), wrap(), wrap(), wrap(), wrap(), wrap()
	p.memory.TextStyle.Bold = true
	p.advice.Importance = widget.DangerImportance
	p.buckets = container.NewVBox()
	p.issues = container.NewVBox()
	head := widget.NewLabelWithStyle("Pre-flight", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	p.content = container.NewVBox(head, p.status, p.counts, p.buckets, p.steps, p.memory, p.advice, p.time, p.issues)
	p.status.SetText("Open a dataset to see what the run will do.")
	return p
}

// checking says a new pre-flight is under way.
func (p *preflightPanel) checking() {
	p.status.Importance = widget.LowImportance
	p.status.SetText("checking…")
}

// fail shows why the settings cannot train.
func (p *preflightPanel) fail(err error) {
	p.status.Importance = widget.DangerImportance
	p.status.SetText(err.Error())
	p.counts.SetText("")
	p.buckets.RemoveAll()
	p.steps.SetText("")
	p.memory.SetText("")
	p.advice.SetText("")
	p.time.SetText("")
	p.issues.RemoveAll()
}

// gib formats bytes as GiB.
func gib(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }

// show draws the pre-flight pf of cfg against the device dm.
func (p *preflightPanel) show(pf studio.TrainPreflight, cfg studio.TrainConfig, dm studio.DeviceMemory) {
	p.status.Importance = widget.MediumImportance
	model := filepath.Base(pf.Model)
	if pf.IsDemo {
		model = "the demo model (random weights: for trying the studio)"
	}
	p.status.SetText("Base model: " + model)
	var b strings.Builder
	fmt.Fprintf(&b, "%d images × repeats = %d samples an epoch", pf.Images, pf.TrainImages)
	for _, f := range pf.Folders {
		fmt.Fprintf(&b, "\n  %s: %d images × %d", f.Folder, f.Images, f.Repeats)
	}
	p.counts.SetText(b.String())

	p.buckets.RemoveAll()
	most := 1
	for _, bk := range pf.Buckets {
		most = max(most, bk.Samples)
	}
	barColor := theme.Color(theme.ColorNamePrimary)
	for _, bk := range pf.Buckets {
		bar := canvas.NewRectangle(barColor)
		w := float32(160 * bk.Samples / most)
		bar.SetMinSize(fyne.NewSize(max(w, 2), 10))
		p.buckets.Add(container.NewHBox(
			container.NewGridWrap(fyne.NewSize(80, 20), widget.NewLabelWithStyle(bk.Bucket, fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})),
			container.NewCenter(bar),
			widget.NewLabel(fmt.Sprintf("%d images, %d samples", bk.Images, bk.Samples))))
	}

	p.steps.SetText(fmt.Sprintf("%d steps an epoch at batch %d; %d steps in all (%d epochs)", pf.StepsPerEpoch, cfg.Batch, pf.TotalSteps, pf.Epochs))

	dev := dm.Backend
	if dev == "" {
		dev = "the device"
	}
	p.fits = true
	p.advice.SetText("")
	switch {
	case dm.Total > 0:
		p.fits = pf.DeviceBytes <= dm.Total
		p.memory.SetText(fmt.Sprintf("Memory: %s of %s on %s", gib(pf.DeviceBytes), gib(dm.Total), dev))
		if !p.fits {
			p.advice.SetText("Will not fit. " + memoryAdvice(pf, cfg))
		}
	default:
		p.memory.SetText(fmt.Sprintf("Memory: %s on %s (the driver does not report its total)", gib(pf.DeviceBytes), dev))
	}
	if p.fits {
		p.memory.Importance = widget.MediumImportance
	} else {
		p.memory.Importance = widget.DangerImportance
	}
	p.memory.Refresh()
	p.time.SetText(fmt.Sprintf("Time: about %s (estimated from the model's size; the chart's ETA measures it)", roundDuration(pf.Estimate)))

	p.issues.RemoveAll()
	if len(pf.Issues) > 0 {
		p.issues.Add(widget.NewLabelWithStyle(fmt.Sprintf("Warnings (%d) — click to open the image", len(pf.Issues)), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
	}
	for i, is := range pf.Issues {
		if i == maxIssuesShown {
			p.issues.Add(widget.NewLabel(fmt.Sprintf("and %d more", len(pf.Issues)-i)))
			break
		}
		path := is.Path
		btn := widget.NewButtonWithIcon(filepath.Base(path)+": "+is.Text, theme.WarningIcon(), func() {
			if p.openPath != nil {
				p.openPath(path)
			}
		})
		btn.Alignment = widget.ButtonAlignLeading
		btn.Importance = widget.LowImportance
		p.issues.Add(btn)
	}
}

// memoryAdvice says what to change so a run fits.
func memoryAdvice(pf studio.TrainPreflight, cfg studio.TrainConfig) string {
	var tips []string
	if !cfg.GradientCheckpointing {
		tips = append(tips, fmt.Sprintf("turn on gradient checkpointing (%s)", gib(pf.DeviceBytesOther)))
	}
	if cfg.Batch > 1 {
		tips = append(tips, fmt.Sprintf("use batch 1 with gradient accumulation %d", cfg.Batch*cfg.GradAccum))
	}
	if cfg.Data.Resolution > 512 {
		tips = append(tips, "lower the resolution")
	}
	if len(tips) == 0 {
		return "Use a device with more memory."
	}
	return "Try: " + strings.Join(tips, "; ") + "."
}

// roundDuration shows a duration to the second (minutes past an hour).
func roundDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}
