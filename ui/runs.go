package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// runsList is the Runs page of the Train tab: every run (name, date,
// dataset, model, steps, last loss, status); the selected one's curves,
// samples, settings and files; a second run's curve to compare; open its
// folder, try its LoRA in the Playground, resume it, delete it to the trash
// and restore it.
type runsList struct {
	win  fyne.Window
	svc  trainService
	runs []studio.RunSummary
	list *widget.List

	selected studio.RunDetail
	hasSel   bool
	title    *widget.Label
	chart    *LossChart
	ctl      *lossChartControls
	compare  *widget.Select
	samples  *samplesGrid
	settings *widget.Label
	files    *widget.Label
	weight   *widget.Slider
	openBtn  *widget.Button
	tryBtn   *widget.Button
	resBtn   *widget.Button
	delBtn   *widget.Button
	status   *widget.Label
	content  fyne.CanvasObject

	onTry    func(path string, weight float64)
	onResume func(id int64)
	busy     func(id int64) bool // the run is training in this window
}

// newRunsList builds the page; reload fills it.
func newRunsList(win fyne.Window, svc trainService) *runsList {
	r := &runsList{win: win, svc: svc}
	r.list = widget.NewList(func() int { return len(r.runs) },
		func() fyne.CanvasObject {
			head := widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
			head.Truncation = fyne.TextTruncateEllipsis
			info := widget.NewLabel("")
			info.Truncation = fyne.TextTruncateEllipsis
			info.SizeName = theme.SizeNameCaptionText
			return container.NewVBox(head, info)
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			head, info := runRowParts(r.runs[i])
			c := o.(*fyne.Container)
			c.Objects[0].(*widget.Label).SetText(head)
			c.Objects[1].(*widget.Label).SetText(info)
		})
	r.list.OnSelected = func(i widget.ListItemID) {
		if i < len(r.runs) {
			r.show(r.runs[i].ID)
		}
	}
	r.title = widget.NewLabelWithStyle("Select a run.", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	r.title.Wrapping = fyne.TextWrapWord
	r.chart = NewLossChart()
	r.ctl = newLossChartControls(r.chart, func() int { return r.selected.StepsPerEpoch })
	r.ctl.epochs.Disable() // until a run is shown
	r.compare = widget.NewSelect(nil, r.compareWith)
	r.compare.PlaceHolder = "compare with…"
	r.samples = newSamplesGrid(win)
	r.settings = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	r.settings.Selectable = true
	r.files = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	r.files.Selectable = true
	r.files.Wrapping = fyne.TextWrapBreak
	r.weight = widget.NewSlider(0, 2)
	r.weight.Step = 0.05
	r.weight.Value = 1
	weightLabel := widget.NewLabel("weight 1.00")
	r.weight.OnChanged = func(v float64) { weightLabel.SetText(fmt.Sprintf("weight %.2f", v)) }
	r.openBtn = widget.NewButtonWithIcon("Open folder", theme.FolderOpenIcon(), r.openFolder)
	r.tryBtn = widget.NewButtonWithIcon("Try in Playground", theme.MediaPhotoIcon(), r.tryInPlayground)
	r.resBtn = widget.NewButtonWithIcon("Resume", theme.MediaReplayIcon(), func() {
		if r.hasSel && r.onResume != nil {
			r.onResume(r.selected.ID)
		}
	})
	r.delBtn = widget.NewButtonWithIcon("Delete", theme.DeleteIcon(), r.confirmDelete)
	trash := widget.NewButtonWithIcon("Trash…", theme.ContentUndoIcon(), r.showTrash)
	r.status = widget.NewLabel("")
	r.status.Wrapping = fyne.TextWrapWord

	actions := container.NewHBox(r.openBtn, r.tryBtn, container.NewGridWrap(fyne.NewSize(120, 36), r.weight), weightLabel, r.resBtn, r.delBtn)
	detailTabs := container.NewAppTabs(
		container.NewTabItem("Curves", container.NewBorder(container.NewBorder(nil, nil, widget.NewLabel("Compare"), nil, r.compare), r.ctl.content, nil, nil, r.chart)),
		container.NewTabItem("Samples", r.samples.content),
		container.NewTabItem("Settings", container.NewScroll(r.settings)),
		container.NewTabItem("Files", container.NewVScroll(r.files)),
	)
	detail := container.NewBorder(container.NewVBox(r.title, actions, r.status), nil, nil, nil, detailTabs)
	left := container.NewBorder(container.NewHBox(widget.NewLabelWithStyle("Runs", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), layoutSpacer(), trash), nil, nil, nil, r.list)
	split := container.NewHSplit(left, detail)
	split.Offset = 0.4
	r.content = split
	r.enableActions()
	return r
}

// runRow is a run on one line.
func runRow(s studio.RunSummary) string {
	head, info := runRowParts(s)
	return head + " · " + info
}

// runRowParts is a run as the list shows it: the name and status, then the
// date, dataset, model, steps and last loss.
func runRowParts(s studio.RunSummary) (head, info string) {
	loss := "—"
	if s.LastLoss != nil {
		loss = fmt.Sprintf("%.4g", *s.LastLoss)
	}
	model := s.ModelName
	if model == "" {
		model = baseName(s.BaseModel)
	}
	head = fmt.Sprintf("#%d %s · %s", s.ID, s.Name, studio.RunStatusLabel(s.Status))
	info = fmt.Sprintf("%s · %s · %s · %d/%d steps · loss %s",
		s.CreatedAt.Local().Format("2006-01-02 15:04"), baseName(s.DatasetPath), model, s.StepsDone, s.StepsTotal, loss)
	return head, info
}

// reload reads the runs again, keeping the selection.
func (r *runsList) reload() {
	go func() {
		runs, err := r.svc.Runs()
		fromBackground(func() {
			if err != nil {
				r.status.SetText(err.Error())
				return
			}
			r.runs = runs
			var names []string
			for _, x := range runs {
				names = append(names, fmt.Sprintf("#%d %s", x.ID, x.Name))
			}
			r.compare.SetOptions(names)
			r.list.Refresh()
			if r.hasSel {
				r.show(r.selected.ID)
			}
		})
	}()
}

// show loads run id's detail.
func (r *runsList) show(id int64) {
	go func() {
		d, err := r.svc.Run(id)
		fromBackground(func() {
			if err != nil {
				r.status.SetText(err.Error())
				return
			}
			r.selected, r.hasSel = d, true
			r.draw()
		})
	}()
}

// draw shows the selected run.
func (r *runsList) draw() {
	d := r.selected
	status := studio.RunStatusLabel(d.Status)
	if d.Error != "" {
		status += ": " + d.Error
	}
	r.title.SetText(fmt.Sprintf("#%d %s — %s, %d of %d steps, on %s with %s", d.ID, d.Name, status, d.StepsDone, d.StepsTotal, d.DatasetPath, d.BaseModel))
	steps, loss, lr := metricSeries(d.Metrics)
	r.chart.SetSeries(0, d.Name, steps, loss, lr)
	r.ctl.setStepsPerEpoch(r.chart, d.StepsPerEpoch)
	r.samples.clear()
	for _, s := range d.Samples {
		r.samples.add(s.Step, s.Prompt, s.ImagePath)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, []byte(d.ConfigJSON), "", "  ") == nil {
		r.settings.SetText(pretty.String())
	} else {
		r.settings.SetText(d.ConfigJSON)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "folder  %s\noutput  %s\n", d.RunDir, d.OutputPath)
	for _, f := range d.Files {
		fmt.Fprintf(&b, "%-10s step %-6d %s\n", f.Kind, f.Step, f.Path)
	}
	r.files.SetText(b.String())
	r.status.SetText("")
	r.enableActions()
}

// lora is the selected run's LoRA to try: its output when finished, else
// its newest checkpoint.
func (r *runsList) lora() string {
	if !r.hasSel {
		return ""
	}
	d := r.selected
	var out, ckpt string
	for _, f := range d.Files {
		switch f.Kind {
		case studio.FileOutput:
			out = f.Path
		case studio.FileCheckpoint:
			ckpt = f.Path
		}
	}
	if out != "" {
		return out
	}
	return ckpt
}

// enableActions enables what the selection allows.
func (r *runsList) enableActions() {
	sel := r.hasSel
	training := sel && r.busy != nil && r.busy(r.selected.ID)
	setEnabled(r.openBtn, sel && r.selected.RunDir != "")
	setEnabled(r.tryBtn, sel && r.lora() != "")
	setEnabled(r.resBtn, sel && !training && (r.selected.Status == studio.RunStopped || r.selected.Status == studio.RunFailed))
	setEnabled(r.delBtn, sel && !training)
}

// compareWith draws the run named choice ("#id name") as the second curve.
func (r *runsList) compareWith(choice string) {
	var id int64
	if _, err := fmt.Sscanf(choice, "#%d", &id); err != nil {
		r.chart.ClearSeries(1)
		return
	}
	go func() {
		d, err := r.svc.Run(id)
		fromBackground(func() {
			if err != nil {
				r.status.SetText(err.Error())
				return
			}
			steps, loss, lr := metricSeries(d.Metrics)
			r.chart.SetSeries(1, d.Name, steps, loss, lr)
			r.status.SetText(fmt.Sprintf("Blue: #%d %s; orange: #%d %s.", r.selected.ID, r.selected.Name, d.ID, d.Name))
		})
	}()
}

// openFolder opens the run's folder in the file manager.
func (r *runsList) openFolder() {
	if !r.hasSel || r.selected.RunDir == "" {
		return
	}
	u := &url.URL{Scheme: "file", Path: filepath.ToSlash(r.selected.RunDir)}
	if err := fyne.CurrentApp().OpenURL(u); err != nil {
		r.status.SetText(fmt.Sprintf("opening %s: %v", r.selected.RunDir, err))
	}
}

// tryInPlayground hands the run's LoRA and the weight to the Playground.
func (r *runsList) tryInPlayground() {
	p := r.lora()
	if p == "" {
		return
	}
	if r.onTry == nil {
		dialog.ShowInformation("Try in Playground", "Add this LoRA in the Playground tab:\n"+p, r.win)
		return
	}
	r.onTry(p, r.weight.Value)
}

// confirmDelete deletes the selected run to the trash after asking.
func (r *runsList) confirmDelete() {
	if !r.hasSel {
		return
	}
	d := r.selected
	dialog.ShowConfirm("Delete run", fmt.Sprintf("Move run #%d %s and its files to the trash? Trash… restores it.", d.ID, d.Name), func(ok bool) {
		if ok {
			r.delete(d.ID)
		}
	}, r.win)
}

// delete moves run id to the trash.
func (r *runsList) delete(id int64) {
	if err := r.svc.DeleteRun(id); err != nil {
		r.status.SetText(err.Error())
		return
	}
	r.hasSel = false
	r.list.UnselectAll()
	r.title.SetText(fmt.Sprintf("Run #%d is in the trash (Trash… restores it).", id))
	r.chart.ClearSeries(0)
	r.samples.clear()
	r.settings.SetText("")
	r.files.SetText("")
	r.enableActions()
	r.reload()
}

// restore brings run id back from the trash.
func (r *runsList) restore(id int64) error {
	if err := r.svc.RestoreRun(id); err != nil {
		return err
	}
	r.reload()
	return nil
}

// showTrash lists the deleted runs with a Restore button each.
func (r *runsList) showTrash() {
	runs, err := r.svc.TrashedRuns()
	if err != nil {
		dialog.ShowError(err, r.win)
		return
	}
	box := container.NewVBox()
	if len(runs) == 0 {
		box.Add(widget.NewLabel("The trash holds no runs."))
	}
	var d dialog.Dialog
	for _, x := range runs {
		id := x.ID
		box.Add(container.NewBorder(nil, nil, nil, widget.NewButton("Restore", func() {
			if err := r.restore(id); err != nil {
				dialog.ShowError(err, r.win)
				return
			}
			d.Hide()
		}), widget.NewLabel(runRow(x))))
	}
	d = dialog.NewCustom("Deleted runs", "Close", container.NewVScroll(box), r.win)
	d.Resize(fyne.NewSize(760, 400))
	d.Show()
}
