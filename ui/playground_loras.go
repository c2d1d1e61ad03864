package ui

import (
	"path/filepath"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// LoRA weights the slider offers: kohya and A1111 users go below zero to remove a concept
// and above one to strengthen it; past ±2 images break.
const (
	loraWeightMin  = -2
	loraWeightMax  = 2
	loraWeightStep = 0.05
)

// loraRow is one LoRA of the Playground: on/off, its name, a weight slider and a remove button.
type loraRow struct {
	path   string
	on     *widget.Check
	weight *widget.Slider
	value  *widget.Label
	row    fyne.CanvasObject
}

// newLoRARow builds the row for a LoRA at a weight; remove takes it out of the screen.
func newLoRARow(path string, weight float64, remove func(*loraRow)) *loraRow {
	r := &loraRow{path: path}
	name := filepath.Base(path)
	name = strings.TrimSuffix(name, filepath.Ext(name))
	r.on = widget.NewCheck(name, nil)
	r.on.Checked = true
	r.value = widget.NewLabel("")
	r.weight = widget.NewSlider(loraWeightMin, loraWeightMax)
	r.weight.Step = loraWeightStep
	r.weight.OnChanged = func(v float64) { r.value.SetText(strconv.FormatFloat(v, 'f', 2, 64)) }
	r.weight.SetValue(min(max(weight, loraWeightMin), loraWeightMax))
	r.value.SetText(strconv.FormatFloat(r.weight.Value, 'f', 2, 64))
	del := widget.NewButtonWithIcon("", theme.DeleteIcon(), func() { remove(r) })
	del.Importance = widget.LowImportance
	r.row = container.NewVBox(
		container.NewBorder(nil, nil, nil, del, r.on),
		container.NewBorder(nil, nil, nil, r.value, r.weight),
	)
	return r
}

// AddLoRA adds a LoRA file (or peft folder) at a weight, switched on ("Try in Playground"
// from a finished training run lands here too). A LoRA already in the list gets the weight.
func (p *PlaygroundScreen) AddLoRA(path string, weight float64) {
	for _, l := range p.loras {
		if l.path == path {
			l.weight.SetValue(weight)
			l.on.SetChecked(true)
			return
		}
	}
	r := newLoRARow(path, weight, p.removeLoRA)
	p.loras = append(p.loras, r)
	p.loraBox.Add(r.row)
}

// removeLoRA takes a LoRA out of the list.
func (p *PlaygroundScreen) removeLoRA(r *loraRow) {
	for i, l := range p.loras {
		if l == r {
			p.loras = append(p.loras[:i], p.loras[i+1:]...)
			p.loraBox.Remove(r.row)
			return
		}
	}
}

// clearLoRAs empties the list.
func (p *PlaygroundScreen) clearLoRAs() {
	p.loras = nil
	p.loraBox.RemoveAll()
}

// browseLoRA picks a LoRA file with a dialog.
func (p *PlaygroundScreen) browseLoRA() {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil || r == nil {
			return
		}
		r.Close()
		p.AddLoRA(r.URI().Path(), 1)
	}, p.win)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".safetensors"}))
	d.Show()
}
