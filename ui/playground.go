package ui

import (
	"errors"
	"fmt"
	"image"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// customSize is the size menu's last option: width and height typed in.
const customSize = "Custom"

// recentModelCount is how many recently used models the model menu offers.
const recentModelCount = 8

// Model menu entries that open a file dialog instead of naming a model.
const (
	browseModelFile   = "Model file (.safetensors)…"
	browseModelFolder = "Diffusers model folder…"
)

// PlaygroundScreen is where a user tries prompts: prompt and negative prompt with token
// counters, model, LoRAs with weights, sampler, steps, CFG, size, seed and batch count; a
// queue of requests; the running one's latent preview and progress; the result with its
// parameters. The requests run on a studio.Queue; this screen only draws it.
type PlaygroundScreen struct {
	win      fyne.Window
	st       *studio.Studio
	queue    *studio.Queue
	closeGen func() error // frees the studio's generator; nil for another ImageGenerator

	prompt, negative      *promptEntry
	promptCount, negCount *widget.Label
	promptCut, negCut     *widget.Label
	emptyNegative         bool // the negative prompt is "" (not none) until edited: a reused request had one

	model      *widget.Select
	modelPaths map[string]string // option label → model path ("" = configured model, else demo)
	loras      []*loraRow
	loraBox    *fyne.Container
	sampler    *widget.Select
	steps, cfg *widget.Entry
	size       *widget.Select
	width      *widget.Entry
	height     *widget.Entry
	seed       *widget.Entry
	batch      *widget.Entry
	generate   *widget.Button

	queueBox     *fyne.Container
	jobs         []studio.Job // waiting and running jobs, as last reported
	progress     *widget.ProgressBar
	progressText *widget.Label
	image        *canvas.Image
	result       *widget.Label
	cacheBadge   *widget.Label
	status       *widget.Label
	lastSeed     *uint64 // the seed of the last finished image, for the recycle button

	content fyne.CanvasObject
	xy      *xyForm
	grid    *xyRun // the X/Y grid being generated, nil when none

	// LastGrid is the file of the last X/Y grid made.
	LastGrid string

	// OnGenerated, when set, is told of every finished image (the gallery refreshes).
	OnGenerated func(studio.Job)
}

// NewPlaygroundScreen builds the screen on a studio; its queue and generator run until Close.
func NewPlaygroundScreen(win fyne.Window, st *studio.Studio) *PlaygroundScreen {
	return newPlaygroundScreen(win, st, nil)
}

// newPlaygroundScreen is NewPlaygroundScreen running requests on gen (nil: the studio's own
// generator, kept between requests); tests pass a fake.
func newPlaygroundScreen(win fyne.Window, st *studio.Studio, gen studio.ImageGenerator) *PlaygroundScreen {
	p := &PlaygroundScreen{win: win, st: st, modelPaths: map[string]string{}}
	report := func(j studio.Job) { p.do(func() { p.jobChanged(j) }) }
	if gen == nil {
		var g *studio.Generator
		p.queue, g = st.NewPlaygroundQueue(report)
		p.closeGen = g.Close
	} else {
		p.queue = studio.NewQueue(gen, func(r studio.GenerateRequest) string { return st.PlaygroundOutput(r, time.Now()) }, report)
	}
	p.build()
	return p
}

// Close cancels every request and frees the device.
func (p *PlaygroundScreen) Close() {
	p.queue.Close()
	if p.closeGen != nil {
		p.closeGen()
	}
}

// Content is the screen's root object, for a tab.
func (p *PlaygroundScreen) Content() fyne.CanvasObject { return p.content }

// Actions lists the screen's commands and shortcuts, for the main menu.
func (p *PlaygroundScreen) Actions() []Action {
	return []Action{
		{Menu: "Generate", Label: "Generate", Shortcuts: []fyne.Shortcut{key(fyne.KeyReturn, ctrl), key(fyne.KeyEnter, ctrl)}, Run: p.Generate},
		{Menu: "Generate", Label: "Cancel the running generation (Esc)", Run: func() { p.CancelRunning() }},
	}
}

func (p *PlaygroundScreen) build() {
	p.prompt = newPromptEntry("a photo of …", p.Generate, func() { p.CancelRunning() })
	p.negative = newPromptEntry("negative prompt (optional)", p.Generate, func() { p.CancelRunning() })
	p.promptCount, p.negCount = widget.NewLabel("0/75"), widget.NewLabel("0/75")
	p.promptCut, p.negCut = cutLabel(), cutLabel()
	p.prompt.OnChanged = func(string) { p.updateCount(p.prompt, p.promptCount, p.promptCut) }
	p.negative.OnChanged = func(string) {
		p.emptyNegative = false
		p.updateCount(p.negative, p.negCount, p.negCut)
	}

	p.model = widget.NewSelect(nil, nil)
	p.model.OnChanged = p.modelChosen
	p.refreshModels("")

	p.loraBox = container.NewVBox()
	addLoRA := widget.NewButtonWithIcon("Add LoRA…", theme.ContentAddIcon(), p.browseLoRA)

	def := studio.DefaultGenerateRequest()
	p.sampler = widget.NewSelect(studio.Samplers, nil)
	p.sampler.SetSelected(def.Sampler)
	p.steps = numberEntry(strconv.Itoa(def.Steps))
	p.cfg = numberEntry(strconv.FormatFloat(def.CFG, 'f', -1, 64))

	var sizes []string
	for _, s := range studio.SDXLSizes {
		sizes = append(sizes, sizeLabel(s))
	}
	p.width, p.height = numberEntry(strconv.Itoa(def.Width)), numberEntry(strconv.Itoa(def.Height))
	p.size = widget.NewSelect(append(sizes, customSize), p.sizeChosen)
	p.size.SetSelected(sizeLabel(studio.Size{Width: def.Width, Height: def.Height}))

	p.seed = widget.NewEntry()
	p.seed.SetPlaceHolder("random")
	p.seed.SetText("-1")
	dice := widget.NewButtonWithIcon("", theme.ViewRefreshIcon(), p.RandomSeed)
	dice.Importance = widget.LowImportance
	recycle := widget.NewButtonWithIcon("", theme.HistoryIcon(), p.RecycleSeed)
	recycle.Importance = widget.LowImportance
	p.batch = numberEntry("1")

	p.xy = newXYForm(p.GenerateGrid)
	p.generate = widget.NewButtonWithIcon("Generate  (Ctrl+Enter)", theme.MediaPlayIcon(), p.Generate)
	p.generate.Importance = widget.HighImportance

	p.queueBox = container.NewVBox()
	p.progress = widget.NewProgressBar()
	p.progressText = widget.NewLabel("")
	p.image = canvas.NewImageFromImage(nil)
	p.image.FillMode = canvas.ImageFillContain
	p.image.SetMinSize(fyne.NewSize(384, 384))
	p.result = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	p.result.Wrapping = fyne.TextWrapWord
	p.result.Selectable = true
	p.cacheBadge = widget.NewLabelWithStyle("⚡ from the cache", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	p.cacheBadge.Importance = widget.SuccessImportance
	p.cacheBadge.Hide()
	p.status = widget.NewLabel("")
	p.status.Wrapping = fyne.TextWrapWord

	form := container.NewVBox(
		bold("Prompt"), p.prompt, container.NewHBox(p.promptCount), p.promptCut,
		bold("Negative prompt"), p.negative, container.NewHBox(p.negCount), p.negCut,
		widget.NewSeparator(),
		container.New(layout.NewFormLayout(), widget.NewLabel("Model"), p.model),
		container.NewBorder(nil, nil, bold("LoRAs"), addLoRA), p.loraBox,
		widget.NewSeparator(),
		container.New(layout.NewFormLayout(),
			widget.NewLabel("Sampler"), p.sampler,
			widget.NewLabel("Steps"), p.steps,
			widget.NewLabel("CFG"), p.cfg,
			widget.NewLabel("Size"), p.size,
			widget.NewLabel("Width × height"), container.NewGridWithColumns(2, p.width, p.height),
			widget.NewLabel("Seed"), container.NewBorder(nil, nil, nil, container.NewHBox(dice, recycle), p.seed),
			widget.NewLabel("Batch count"), p.batch,
		),
		p.generate, p.status,
		widget.NewSeparator(), p.xy.box,
	)
	right := container.NewBorder(
		container.NewVBox(container.NewBorder(nil, nil, nil, p.progressText, p.progress), p.queueBox),
		container.NewVBox(p.cacheBadge, p.result), nil, nil, p.image)
	split := container.NewHSplit(container.NewVScroll(container.NewPadded(form)), right)
	split.Offset = 0.36
	p.content = split
}

// bold is a bold label.
func bold(s string) *widget.Label {
	return widget.NewLabelWithStyle(s, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
}

// cutLabel is the hidden warning under a prompt that says what CLIP does not read.
func cutLabel() *widget.Label {
	l := widget.NewLabel("")
	l.Importance = widget.WarningImportance
	l.Wrapping = fyne.TextWrapWord
	l.Hide()
	return l
}

// numberEntry is a one-line entry holding a number.
func numberEntry(v string) *widget.Entry {
	e := widget.NewEntry()
	e.SetText(v)
	return e
}

// sizeLabel names a preset in the size menu.
func sizeLabel(s studio.Size) string { return fmt.Sprintf("%d × %d", s.Width, s.Height) }

// updateCount shows a prompt's token count and, past the limit, where CLIP stops reading.
func (p *PlaygroundScreen) updateCount(e *promptEntry, count, cut *widget.Label) {
	c, err := studio.CountTokens(e.Text)
	if err != nil {
		count.SetText("?/75")
		cut.SetText(err.Error())
		cut.Show()
		return
	}
	count.SetText(c.String())
	if !c.Over() {
		count.Importance = widget.MediumImportance
		count.Refresh()
		cut.Hide()
		return
	}
	count.Importance = widget.WarningImportance
	count.Refresh()
	ignored := strings.TrimSpace(e.Text[c.CutAt:])
	if r := []rune(ignored); len(r) > 120 {
		ignored = string(r[:120]) + " …"
	}
	cut.SetText(fmt.Sprintf("CLIP reads %d tokens (77 with its start and end tokens); this text has %d. It ignores «%s»",
		c.Limit, c.Tokens, ignored))
	cut.Show()
}

// refreshModels fills the model menu: the default (configured model, else the demo), the
// recent models, the file dialogs; sel (a path) is selected, added when new.
func (p *PlaygroundScreen) refreshModels(sel string) {
	p.modelPaths = map[string]string{}
	defLabel := "Default: " + studio.ModelLabel("")
	if m, ok, err := p.st.ConfiguredModel(); err == nil && ok {
		defLabel = "Default: " + studio.ModelLabel(m)
	}
	opts := []string{defLabel}
	p.modelPaths[defLabel] = ""
	add := func(path string) string {
		for l, pth := range p.modelPaths {
			if pth == path {
				return l
			}
		}
		label := studio.ModelLabel(path) + "  (" + filepath.Dir(path) + ")"
		opts = append(opts, label)
		p.modelPaths[label] = path
		return label
	}
	recent, _ := p.st.RecentModels(recentModelCount) // a failing list only leaves the menu short
	for _, m := range recent {
		add(m)
	}
	selLabel := defLabel
	if sel != "" {
		selLabel = add(sel)
	}
	p.model.Options = append(opts, browseModelFile, browseModelFolder)
	p.model.SetSelected(selLabel)
}

// modelChosen opens a file dialog for the browse entries.
func (p *PlaygroundScreen) modelChosen(label string) {
	switch label {
	case browseModelFile:
		d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil || r == nil {
				p.refreshModels(p.ModelPath())
				return
			}
			r.Close()
			p.SetModel(r.URI().Path())
		}, p.win)
		d.SetFilter(storage.NewExtensionFileFilter([]string{".safetensors"}))
		d.Show()
	case browseModelFolder:
		dialog.ShowFolderOpen(func(u fyne.ListableURI, err error) {
			if err != nil || u == nil {
				p.refreshModels(p.ModelPath())
				return
			}
			p.SetModel(u.Path())
		}, p.win)
	}
}

// SetModel selects a model by path ("" = the default).
func (p *PlaygroundScreen) SetModel(path string) { p.refreshModels(path) }

// ModelPath is the selected model's path, "" for the default.
func (p *PlaygroundScreen) ModelPath() string { return p.modelPaths[p.model.Selected] }

// sizeChosen fills width and height from a preset, or lets them be typed for Custom.
func (p *PlaygroundScreen) sizeChosen(label string) {
	for _, s := range studio.SDXLSizes {
		if sizeLabel(s) == label {
			p.width.SetText(strconv.Itoa(s.Width))
			p.height.SetText(strconv.Itoa(s.Height))
			p.width.Disable()
			p.height.Disable()
			return
		}
	}
	p.width.Enable()
	p.height.Enable()
}

// setSize selects the preset for w×h, else Custom with the numbers.
func (p *PlaygroundScreen) setSize(w, h int) {
	for _, s := range studio.SDXLSizes {
		if s.Width == w && s.Height == h {
			p.size.SetSelected(sizeLabel(s))
			return
		}
	}
	p.size.SetSelected(customSize)
	p.width.SetText(strconv.Itoa(w))
	p.height.SetText(strconv.Itoa(h))
}

// RandomSeed is the dice button: the next image gets a random seed.
func (p *PlaygroundScreen) RandomSeed() { p.seed.SetText("-1") }

// RecycleSeed is the recycle button: the next image reuses the last image's seed.
func (p *PlaygroundScreen) RecycleSeed() {
	if p.lastSeed == nil {
		p.setStatus("No image yet: generate one first, then the recycle button takes its seed.")
		return
	}
	p.seed.SetText(strconv.FormatUint(*p.lastSeed, 10))
}

// Request reads the form into a request and the batch count, or says what is wrong.
func (p *PlaygroundScreen) Request() (studio.GenerateRequest, int, error) {
	r := studio.DefaultGenerateRequest()
	r.Model = p.ModelPath()
	r.Prompt = p.prompt.Text
	if neg := p.negative.Text; neg != "" || p.emptyNegative {
		r.Negative = &neg
	}
	for _, l := range p.loras {
		if l.on.Checked {
			r.LoRAs = append(r.LoRAs, studio.LoRASpec{Path: l.path, Weight: float32(l.weight.Value)})
		}
	}
	r.Sampler = p.sampler.Selected
	var err error
	if r.Steps, err = strconv.Atoi(strings.TrimSpace(p.steps.Text)); err != nil {
		return r, 0, fmt.Errorf("steps %q: want a whole number", p.steps.Text)
	}
	if r.CFG, err = strconv.ParseFloat(strings.TrimSpace(p.cfg.Text), 64); err != nil {
		return r, 0, fmt.Errorf("CFG %q: want a number", p.cfg.Text)
	}
	w, werr := strconv.Atoi(strings.TrimSpace(p.width.Text))
	h, herr := strconv.Atoi(strings.TrimSpace(p.height.Text))
	if werr != nil || herr != nil {
		return r, 0, fmt.Errorf("size %q × %q: want whole numbers", p.width.Text, p.height.Text)
	}
	if err := studio.CheckSize(w, h); err != nil {
		return r, 0, errors.New(strings.TrimPrefix(err.Error(), studio.ErrInvalidRequest.Error()+": "))
	}
	r.Width, r.Height = w, h
	switch s := strings.TrimSpace(p.seed.Text); s {
	case "", "-1":
	default:
		v, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return r, 0, fmt.Errorf("seed %q: want a whole number from 0 to %d, or -1 for a random one", s, int64(math.MaxInt64))
		}
		r.Seed = &v
	}
	n, err := strconv.Atoi(strings.TrimSpace(p.batch.Text))
	if err != nil || n < 1 || n > studio.MaxBatch {
		return r, 0, fmt.Errorf("batch count %q: want 1 to %d", p.batch.Text, studio.MaxBatch)
	}
	return r, n, nil
}

// Generate queues the form's request (batch count images).
func (p *PlaygroundScreen) Generate() {
	r, n, err := p.Request()
	if err != nil {
		p.setStatus(err.Error())
		return
	}
	if _, err := p.queue.Add(r, n); err != nil {
		p.setStatus(strings.TrimPrefix(err.Error(), studio.ErrInvalidRequest.Error()+": "))
		return
	}
	if n == 1 {
		p.setStatus("Queued.")
	} else {
		p.setStatus(fmt.Sprintf("Queued %d images.", n))
	}
}

// CancelRunning stops the running generation (Esc); it reports whether one was running.
func (p *PlaygroundScreen) CancelRunning() bool { return p.queue.CancelRunning() }

// Jobs returns the waiting and running jobs as the screen shows them.
func (p *PlaygroundScreen) Jobs() []studio.Job { return append([]studio.Job(nil), p.jobs...) }

// jobChanged applies a queue report (on the UI goroutine).
func (p *PlaygroundScreen) jobChanged(j studio.Job) {
	i := -1
	for k := range p.jobs {
		if p.jobs[k].ID == j.ID {
			i = k
		}
	}
	switch {
	case j.State.Finished() && i >= 0:
		p.jobs = append(p.jobs[:i], p.jobs[i+1:]...)
	case !j.State.Finished() && i >= 0:
		p.jobs[i] = j
	case !j.State.Finished():
		p.jobs = append(p.jobs, j)
	}
	p.drawQueue()
	gridCell := p.gridJobChanged(j)
	switch j.State {
	case studio.JobRunning:
		if j.Steps > 0 {
			p.progress.SetValue(float64(j.Step) / float64(j.Steps))
			p.progressText.SetText(fmt.Sprintf("step %d/%d · %.2f s/step", j.Step, j.Steps, j.SecPerStep))
		} else {
			p.progress.SetValue(0)
			p.progressText.SetText("loading the model …")
		}
		if j.Preview != nil {
			p.showImage(j.Preview)
		}
	case studio.JobDone:
		p.progress.SetValue(1)
		seed := j.Result.Seed
		p.lastSeed = &seed
		p.progressText.SetText(fmt.Sprintf("done in %.1f s", j.Result.Duration.Seconds()))
		p.result.SetText(j.Result.Parameters)
		if j.Result.FromCache {
			p.cacheBadge.Show()
		} else {
			p.cacheBadge.Hide()
		}
		p.setStatus("Saved " + j.Result.Path)
		if j.Result.CacheErr != nil {
			p.setStatus("Saved " + j.Result.Path + " (warning: " + j.Result.CacheErr.Error() + ")")
		}
		if p.OnGenerated != nil {
			p.OnGenerated(j)
		}
		if gridCell {
			break // the grid is shown when its last cell is done
		}
		path := j.Result.Path
		go func() {
			img, err := studio.LoadImage(path)
			p.do(func() {
				if err != nil {
					p.setStatus(err.Error())
					return
				}
				p.showImage(img)
			})
		}()
	case studio.JobFailed:
		p.progress.SetValue(0)
		p.progressText.SetText("")
		p.setStatus("The generation failed: " + j.Err.Error())
	case studio.JobCancelled:
		if j.Step > 0 || i >= 0 && p.jobs == nil {
			p.progressText.SetText("cancelled")
		}
		p.setStatus(fmt.Sprintf("Cancelled #%d.", j.ID))
	}
}

// do runs f with the UI, from background work.
func (p *PlaygroundScreen) do(f func()) { fromBackground(f) }

// showImage shows a preview or result.
func (p *PlaygroundScreen) showImage(img image.Image) {
	p.image.Image = img
	p.image.Refresh()
}

// drawQueue redraws the queue list: one row a job with a cancel button.
func (p *PlaygroundScreen) drawQueue() {
	p.queueBox.RemoveAll()
	for _, j := range p.jobs {
		id := j.ID
		text := fmt.Sprintf("#%d  seed %d  %d×%d  %s", j.ID, *j.Req.Seed, j.Req.Width, j.Req.Height, j.State)
		if j.State == studio.JobRunning && j.Steps > 0 {
			text += fmt.Sprintf("  %d/%d", j.Step, j.Steps)
		}
		cancel := widget.NewButtonWithIcon("", theme.CancelIcon(), func() { p.queue.Cancel(id) })
		cancel.Importance = widget.LowImportance
		p.queueBox.Add(container.NewBorder(nil, nil, nil, cancel, widget.NewLabel(text)))
	}
}

// setStatus shows a line under the Generate button.
func (p *PlaygroundScreen) setStatus(s string) { p.status.SetText(s) }

// Reuse says which parameters of an image Apply takes.
type Reuse int

// What Apply takes from a request.
const (
	ReuseAll    Reuse = iota // every parameter
	ReuseSeed                // only the seed
	ReusePrompt              // only the prompt and negative prompt
)

// Apply loads a request's parameters into the form (all, only the seed or only the prompts).
func (p *PlaygroundScreen) Apply(r studio.GenerateRequest, what Reuse) {
	if what == ReuseAll || what == ReuseSeed {
		if r.Seed != nil {
			p.seed.SetText(strconv.FormatUint(*r.Seed, 10))
		} else {
			p.RandomSeed()
		}
	}
	if what == ReuseAll || what == ReusePrompt {
		p.prompt.SetText(r.Prompt)
		neg := ""
		if r.Negative != nil {
			neg = *r.Negative
		}
		p.negative.SetText(neg)
		p.emptyNegative = r.Negative != nil && *r.Negative == ""
	}
	if what != ReuseAll {
		return
	}
	p.SetModel(r.Model)
	p.clearLoRAs()
	for _, l := range r.LoRAs {
		p.AddLoRA(l.Path, float64(l.Weight))
	}
	p.sampler.SetSelected(r.Sampler)
	p.steps.SetText(strconv.Itoa(r.Steps))
	p.cfg.SetText(strconv.FormatFloat(r.CFG, 'f', -1, 64))
	p.setSize(r.Width, r.Height)
	p.batch.SetText("1")
}

// StartFromLast fills the form with the parameters of the newest image in the gallery (a
// random seed), so the Playground opens where the user left it; an empty gallery keeps the
// defaults.
func (p *PlaygroundScreen) StartFromLast() {
	items, err := p.st.Gallery(studio.GalleryFilter{}, 0, 1)
	if err != nil {
		p.setStatus(err.Error())
		return
	}
	if len(items) == 0 {
		return
	}
	p.Apply(items[0].Request(), ReuseAll)
	p.RandomSeed()
}

// FocusPrompt puts the keyboard in the prompt field.
func (p *PlaygroundScreen) FocusPrompt() { p.win.Canvas().Focus(p.prompt) }

// ApplyImported fills the form with what a dropped image's parameters give and returns the
// lines of what could not be applied.
func (p *PlaygroundScreen) ApplyImported(ip studio.ImportedParams) []string {
	if ip.Prompt != nil {
		p.prompt.SetText(*ip.Prompt)
	}
	if ip.Prompt != nil || ip.Negative != nil {
		neg := ""
		if ip.Negative != nil {
			neg = *ip.Negative
		}
		p.negative.SetText(neg)
		p.emptyNegative = ip.Negative != nil && *ip.Negative == ""
	}
	if ip.Steps > 0 {
		p.steps.SetText(strconv.Itoa(ip.Steps))
	}
	if ip.CFG >= 0 {
		p.cfg.SetText(strconv.FormatFloat(ip.CFG, 'f', -1, 64))
	}
	if ip.Sampler != "" {
		p.sampler.SetSelected(ip.Sampler)
	}
	if ip.Seed != nil {
		p.seed.SetText(strconv.FormatUint(*ip.Seed, 10))
	}
	if ip.Width > 0 && ip.Height > 0 {
		p.setSize(ip.Width, ip.Height)
	}
	return ip.Unmapped
}

// promptEntry is a multi-line prompt field: Ctrl+Enter generates and Escape cancels the
// running generation even while it has the focus.
type promptEntry struct {
	widget.Entry
	onGenerate, onEscape func()
}

// newPromptEntry creates a prompt field.
func newPromptEntry(placeholder string, onGenerate, onEscape func()) *promptEntry {
	e := &promptEntry{onGenerate: onGenerate, onEscape: onEscape}
	e.MultiLine = true
	e.Wrapping = fyne.TextWrapWord
	e.SetPlaceHolder(placeholder)
	e.SetMinRowsVisible(3)
	e.ExtendBaseWidget(e)
	return e
}

// TypedShortcut generates on Ctrl+Enter (for drivers that give it to the focused widget).
func (e *promptEntry) TypedShortcut(s fyne.Shortcut) {
	if isGenerateShortcut(s) {
		e.onGenerate()
		return
	}
	e.Entry.TypedShortcut(s)
}

// TypedKey cancels on Escape; other keys edit text.
func (e *promptEntry) TypedKey(k *fyne.KeyEvent) {
	if k.Name == fyne.KeyEscape {
		e.onEscape()
		return
	}
	e.Entry.TypedKey(k)
}

// isGenerateShortcut reports whether s is Ctrl+Enter (either Enter key).
func isGenerateShortcut(s fyne.Shortcut) bool {
	n := s.ShortcutName()
	return n == key(fyne.KeyReturn, ctrl).ShortcutName() || n == key(fyne.KeyEnter, ctrl).ShortcutName()
}
