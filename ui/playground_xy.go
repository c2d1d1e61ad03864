package ui

import (
	"fmt"
	"image"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// xyForm is the X/Y grid part of the Playground's form.
type xyForm struct {
	xParam, yParam   *widget.Select
	xValues, yValues *widget.Entry
	button           *widget.Button
	box              fyne.CanvasObject
}

// xyRun is a grid being generated: its axes, its cells' jobs in grid order and their images.
type xyRun struct {
	x, y    studio.XYAxis
	ids     []int64
	images  map[int64]image.Image
	pending int // cells not yet finished (done, failed or cancelled)
}

// newXYForm builds the grid controls; generate runs a grid.
func newXYForm(generate func()) *xyForm {
	f := &xyForm{}
	f.xParam = widget.NewSelect(studio.XYParams, nil)
	f.xParam.SetSelected("CFG")
	f.yParam = widget.NewSelect(studio.XYParams, nil)
	f.yParam.SetSelected("Seed")
	f.xValues, f.yValues = widget.NewEntry(), widget.NewEntry()
	f.xValues.SetPlaceHolder("values, e.g. 4, 7, 10")
	f.yValues.SetPlaceHolder("values, e.g. 1, 2")
	f.button = widget.NewButton("Generate X/Y grid", generate)
	f.box = container.NewVBox(bold("X/Y grid"),
		container.New(layout.NewFormLayout(),
			widget.NewLabel("X"), container.NewGridWithColumns(2, f.xParam, f.xValues),
			widget.NewLabel("Y"), container.NewGridWithColumns(2, f.yParam, f.yValues)),
		f.button)
	return f
}

// axes reads the two axes.
func (f *xyForm) axes() (studio.XYAxis, studio.XYAxis) {
	return studio.XYAxis{Param: f.xParam.Selected, Values: studio.ParseXYValues(f.xValues.Text)},
		studio.XYAxis{Param: f.yParam.Selected, Values: studio.ParseXYValues(f.yValues.Text)}
}

// GenerateGrid queues one image for every cell of the X/Y grid over the form's request;
// when the last is finished the labelled grid is composed, saved and shown. Each cell is
// an image of the gallery too.
func (p *PlaygroundScreen) GenerateGrid() {
	r, _, err := p.Request()
	if err != nil {
		p.setStatus(err.Error())
		return
	}
	x, y := p.xy.axes()
	reqs, err := studio.XYRequests(r, x, y)
	if err != nil {
		p.setStatus(strings.TrimPrefix(err.Error(), studio.ErrInvalidRequest.Error()+": "))
		return
	}
	run := &xyRun{x: x, y: y, images: map[int64]image.Image{}}
	for _, rq := range reqs {
		jobs, err := p.queue.Add(rq, 1)
		if err != nil {
			p.setStatus(err.Error())
			for _, id := range run.ids {
				p.queue.Cancel(id)
			}
			return
		}
		run.ids = append(run.ids, jobs[0].ID)
	}
	run.pending = len(run.ids)
	p.grid = run
	p.setStatus(fmt.Sprintf("Queued an X/Y grid of %d×%d images.", len(x.Values), len(y.Values)))
}

// gridJobChanged follows a finished job of the grid being generated and reports whether
// the job is one of its cells.
func (p *PlaygroundScreen) gridJobChanged(j studio.Job) bool {
	run := p.grid
	if run == nil || !j.State.Finished() {
		return false
	}
	mine := false
	for _, id := range run.ids {
		mine = mine || id == j.ID
	}
	if !mine {
		return false
	}
	run.pending--
	path := j.Result.Path
	last := run.pending == 0
	go func() {
		var img image.Image
		if j.State == studio.JobDone {
			img, _ = studio.LoadImage(path) // an unreadable cell stays white in the grid
		}
		p.do(func() {
			run.images[j.ID] = img
			if last && p.grid == run {
				p.grid = nil
				p.finishGrid(run)
			}
		})
	}()
	return true
}

// finishGrid composes and saves the grid off the UI goroutine, then shows it.
func (p *PlaygroundScreen) finishGrid(run *xyRun) {
	cells := make([]image.Image, len(run.ids))
	for i, id := range run.ids {
		cells[i] = run.images[id]
	}
	go func() {
		grid, err := studio.ComposeXYGrid(cells, run.x, run.y)
		var path string
		if err == nil {
			path, err = p.st.SaveXYGrid(grid, run.x, run.y, time.Now())
		}
		p.do(func() {
			if err != nil {
				p.setStatus("The X/Y grid: " + err.Error())
				return
			}
			p.LastGrid = path
			p.showImage(grid)
			p.result.SetText(fmt.Sprintf("X/Y grid — X: %s = %s; Y: %s = %s", run.x.Param, strings.Join(run.x.Values, ", "),
				run.y.Param, strings.Join(run.y.Values, ", ")))
			p.setStatus("Saved the X/Y grid " + path)
		})
	}()
}
