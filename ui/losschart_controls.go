package ui

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// lossChartControls is the row under a loss chart: the smoothing slider,
// the log-scale and epochs switches, and the zoom reset.
type lossChartControls struct {
	content   fyne.CanvasObject
	smoothing *widget.Slider
	logScale  *widget.Check
	epochs    *widget.Check
	reset     *widget.Button
	spe       func() int // steps per epoch of the run shown
}

// newLossChartControls builds the controls of c; spe gives the steps per
// epoch the epochs axis divides by.
func newLossChartControls(c *LossChart, spe func() int) *lossChartControls {
	k := &lossChartControls{spe: spe}
	label := widget.NewLabel("smoothing 0.90")
	k.smoothing = widget.NewSlider(0, 0.99)
	k.smoothing.Step = 0.01
	k.smoothing.Value = 0.9
	k.smoothing.OnChanged = func(v float64) {
		label.SetText(fmt.Sprintf("smoothing %.2f", v))
		c.SetSmoothing(v)
	}
	k.logScale = widget.NewCheck("log scale", c.SetLogScale)
	k.epochs = widget.NewCheck(epochsLabel, func(on bool) { c.SetEpochs(on, k.spe()) })
	k.reset = widget.NewButtonWithIcon("", theme.ZoomFitIcon(), c.ResetZoom)
	k.content = container.NewBorder(nil, nil, label, container.NewHBox(k.logScale, k.epochs, k.reset), k.smoothing)
	return k
}

// epochsLabel is the epochs switch's text; epochsUnknownLabel says why it is
// off for a run that recorded no steps per epoch.
const (
	epochsLabel        = "x in epochs"
	epochsUnknownLabel = "x in epochs (not recorded for this run)"
)

// setStepsPerEpoch offers the epochs axis for a run of spe steps an epoch,
// or, when spe is 0 (a run recorded before runs kept it), turns it off and
// disables the switch with a hint.
func (k *lossChartControls) setStepsPerEpoch(c *LossChart, spe int) {
	if spe <= 0 {
		k.epochs.SetChecked(false)
		k.epochs.Text = epochsUnknownLabel
		k.epochs.Disable()
		k.epochs.Refresh()
		return
	}
	k.epochs.Text = epochsLabel
	k.epochs.Enable()
	k.epochs.Refresh()
	c.SetEpochs(k.epochs.Checked, spe)
}
