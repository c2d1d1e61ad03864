package ui

import (
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// stepGenerator is a fake engine: each request reports its steps one at a time, each when
// the test sends on step, with a preview the size of the step number, and stops at the next
// step when cancelled.
type stepGenerator struct {
	steps int
	step  chan struct{}
	mu    sync.Mutex
	reqs  []studio.GenerateRequest
}

func (f *stepGenerator) Generate(ctx context.Context, req studio.GenerateRequest, progress func(int, int, image.Image)) (studio.GenerateResult, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	for i := 1; i <= f.steps; i++ {
		select {
		case <-ctx.Done():
			return studio.GenerateResult{}, ctx.Err()
		case <-f.step:
		}
		progress(i, f.steps, image.NewGray(image.Rect(0, 0, 8*i, 8*i)))
	}
	// Write a real PNG where the engine would, so the screen can show it.
	if err := os.MkdirAll(filepath.Dir(req.Out), 0o755); err != nil {
		return studio.GenerateResult{}, err
	}
	out, err := os.Create(req.Out)
	if err != nil {
		return studio.GenerateResult{}, err
	}
	png.Encode(out, image.NewGray(image.Rect(0, 0, 64, 64)))
	if err := out.Close(); err != nil {
		return studio.GenerateResult{}, err
	}
	return studio.GenerateResult{Path: req.Out, Seed: *req.Seed, Parameters: "fake parameters, Seed: " + strconv.FormatUint(*req.Seed, 10)}, nil
}

func (f *stepGenerator) requests() []studio.GenerateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]studio.GenerateRequest(nil), f.reqs...)
}

// newTestPlayground builds a Playground on a real studio with a fake engine in a test window.
func newTestPlayground(t *testing.T, gen studio.ImageGenerator) (*PlaygroundScreen, fyne.Window) {
	t.Helper()
	a := test.NewTempApp(t)
	st, err := studio.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := a.NewWindow("playground")
	p := newPlaygroundScreen(w, st, gen)
	t.Cleanup(func() {
		p.Close()
		st.Close()
	})
	w.SetContent(p.Content())
	w.Resize(fyne.NewSize(1280, 800))
	return p, w
}

func TestPlaygroundTokenCounter(t *testing.T) {
	p, w := newTestPlayground(t, &stepGenerator{steps: 1, step: make(chan struct{})})
	w.Canvas().Focus(p.prompt)
	test.Type(p.prompt, "a photo of a cat")
	want, err := studio.CountTokens("a photo of a cat")
	if err != nil {
		t.Fatal(err)
	}
	if p.promptCount.Text != want.String() || want.Tokens == 0 || p.promptCut.Visible() {
		t.Fatalf("counter %q (want %q), warning shown %v", p.promptCount.Text, want.String(), p.promptCut.Visible())
	}
	long := strings.Repeat("red cat, ", 40) + "TAILWORD"
	p.prompt.SetText(long)
	c, _ := studio.CountTokens(long)
	if !c.Over() || p.promptCount.Text != c.String() || !p.promptCut.Visible() {
		t.Fatalf("long prompt: counter %q, warning %v", p.promptCount.Text, p.promptCut.Visible())
	}
	ignored := strings.TrimSpace(long[c.CutAt:])[:20]
	if !strings.Contains(p.promptCut.Text, "«"+ignored) || !strings.Contains(p.promptCut.Text, "has "+strconv.Itoa(c.Tokens)) {
		t.Errorf("warning %q does not show the ignored tail and the count", p.promptCut.Text)
	}
	p.prompt.SetText("short again")
	if p.promptCut.Visible() {
		t.Error("the warning stays after the prompt got short")
	}
	p.negative.SetText(long)
	if !p.negCut.Visible() || p.negCount.Text != c.String() {
		t.Errorf("negative counter %q, warning %v", p.negCount.Text, p.negCut.Visible())
	}
}

func TestPlaygroundSizePresets(t *testing.T) {
	p, _ := newTestPlayground(t, &stepGenerator{steps: 1, step: make(chan struct{})})
	if len(p.size.Options) != 10 || p.size.Options[9] != customSize {
		t.Fatalf("size options %v", p.size.Options)
	}
	for _, s := range studio.SDXLSizes {
		p.size.SetSelected(sizeLabel(s))
		r, _, err := p.Request()
		if err != nil || r.Width != s.Width || r.Height != s.Height || !p.width.Disabled() {
			t.Errorf("preset %v: request %dx%d, %v, width entry disabled %v", s, r.Width, r.Height, err, p.width.Disabled())
		}
	}
	p.size.SetSelected(customSize)
	if p.width.Disabled() || p.height.Disabled() {
		t.Fatal("custom size entries are disabled")
	}
	p.width.SetText("640")
	p.height.SetText("448")
	if r, _, err := p.Request(); err != nil || r.Width != 640 || r.Height != 448 {
		t.Errorf("custom 640x448: %dx%d, %v", r.Width, r.Height, err)
	}
	p.width.SetText("641")
	p.Generate()
	if !strings.Contains(p.status.Text, "multiples of 8") || len(p.queue.Jobs()) != 0 {
		t.Errorf("641 wide: status %q, jobs %v", p.status.Text, p.queue.Jobs())
	}
	// A reused request selects its preset, or Custom with its numbers.
	p.setSize(832, 1216)
	if p.size.Selected != sizeLabel(studio.Size{Width: 832, Height: 1216}) {
		t.Errorf("setSize(832, 1216) selected %q", p.size.Selected)
	}
	p.setSize(512, 512)
	if p.size.Selected != customSize || p.width.Text != "512" || p.height.Text != "512" {
		t.Errorf("setSize(512, 512): %q %s×%s", p.size.Selected, p.width.Text, p.height.Text)
	}
}

func TestPlaygroundQueueSeedsAndCancel(t *testing.T) {
	gen := &stepGenerator{steps: 2, step: make(chan struct{})}
	p, w := newTestPlayground(t, gen)
	p.prompt.SetText("a red cube")
	p.size.SetSelected(customSize)
	p.width.SetText("64")
	p.height.SetText("64")

	// Recycle before any image only explains; dice asks for a random seed.
	p.seed.SetText("5")
	p.RecycleSeed()
	if p.seed.Text != "5" || !strings.Contains(p.status.Text, "No image yet") {
		t.Errorf("recycle with no image: seed %q, status %q", p.seed.Text, p.status.Text)
	}
	p.RandomSeed()
	if p.seed.Text != "-1" {
		t.Errorf("dice: seed %q", p.seed.Text)
	}
	if r, _, _ := p.Request(); r.Seed != nil {
		t.Errorf("dice: the request has seed %d", *r.Seed)
	}

	// A batch of two from seed 40, queued with Ctrl+Enter in the prompt.
	p.seed.SetText("40")
	p.batch.SetText("2")
	w.Canvas().Focus(p.prompt)
	p.prompt.TypedShortcut(key(fyne.KeyReturn, ctrl))
	waitUI(t, "the first job to run", func() (bool, string) {
		js := p.Jobs()
		return len(js) == 2 && js[0].State == studio.JobRunning, p.queueText()
	})
	if q := p.queueText(); !strings.Contains(q, "seed 40") || !strings.Contains(q, "seed 41") {
		t.Errorf("queue shows %q", q)
	}
	gen.step <- struct{}{}
	waitUI(t, "a latent preview and progress", func() (bool, string) {
		return p.image.Image != nil && p.image.Image.Bounds().Dx() == 8 && p.progress.Value == 0.5 &&
			strings.Contains(p.progressText.Text, "s/step"), p.progressText.Text
	})
	gen.step <- struct{}{}
	waitUI(t, "the first image", func() (bool, string) {
		return p.lastSeed != nil && *p.lastSeed == 40 && strings.Contains(p.result.Text, "Seed: 40") &&
			p.image.Image != nil && p.image.Image.Bounds().Dx() == 64, p.result.Text
	})
	// Esc in the prompt cancels the running second image.
	waitUI(t, "the second job to run", func() (bool, string) {
		js := p.Jobs()
		return len(js) == 1 && js[0].State == studio.JobRunning, p.queueText()
	})
	p.prompt.TypedKey(&fyne.KeyEvent{Name: fyne.KeyEscape})
	waitUI(t, "the cancel", func() (bool, string) {
		return len(p.Jobs()) == 0 && strings.Contains(p.status.Text, "Cancelled"), p.status.Text
	})
	p.RecycleSeed()
	if p.seed.Text != "40" {
		t.Errorf("recycle: seed %q, want the last image's 40", p.seed.Text)
	}

	// A waiting job's cancel button takes it out before it runs.
	p.batch.SetText("2")
	p.Generate()
	waitUI(t, "two jobs", func() (bool, string) { return len(p.Jobs()) == 2, p.queueText() })
	row := p.queueBox.Objects[1].(*fyne.Container)
	var cancel *widget.Button
	for _, o := range row.Objects {
		if b, ok := o.(*widget.Button); ok {
			cancel = b
		}
	}
	if cancel == nil {
		t.Fatal("no cancel button on the waiting row")
	}
	test.Tap(cancel)
	waitUI(t, "the waiting job to leave and the other to run", func() (bool, string) {
		js := p.Jobs()
		return len(js) == 1 && js[0].State == studio.JobRunning, p.queueText()
	})
	if !p.CancelRunning() {
		t.Fatal("CancelRunning found nothing running")
	}
	waitUI(t, "an empty queue", func() (bool, string) { return len(p.Jobs()) == 0, p.queueText() })
	reqs := gen.requests()
	if len(reqs) != 3 || *reqs[0].Seed != 40 || *reqs[1].Seed != 41 || *reqs[2].Seed != 40 {
		var seeds []uint64
		for _, r := range reqs {
			seeds = append(seeds, *r.Seed)
		}
		t.Errorf("the engine ran seeds %v, want [40 41 40] (the cancelled waiting job never runs)", seeds)
	}
}

// queueText is the queue list's text.
func (p *PlaygroundScreen) queueText() string { return texts(p.queueBox) }

// TestTryInPlayground hands a LoRA over as the Train tab's "Try in Playground" does: it
// lands in the LoRA list at its weight, switched on, and the Playground comes to the front.
func TestTryInPlayground(t *testing.T) {
	m, _ := newTestWindow(t, "")
	m.tryInPlayground("/runs/cats/cats.safetensors", 0.8)
	p := m.Playground
	if !m.playgroundShown() || len(p.loras) != 1 {
		t.Fatalf("shown %v, %d LoRAs", m.playgroundShown(), len(p.loras))
	}
	m.tryInPlayground("/runs/cats/cats.safetensors", 1.25) // the same LoRA again: its weight changes
	p.loras[0].on.SetChecked(true)
	r, _, err := p.Request()
	if err != nil || len(r.LoRAs) != 1 || r.LoRAs[0].Path != "/runs/cats/cats.safetensors" || r.LoRAs[0].Weight != 1.25 {
		t.Fatalf("request LoRAs %+v, %v", r.LoRAs, err)
	}
	p.loras[0].on.SetChecked(false)
	if r, _, _ := p.Request(); len(r.LoRAs) != 0 {
		t.Errorf("a switched-off LoRA is still applied: %+v", r.LoRAs)
	}
	p.loras[0].weight.SetValue(5)
	if p.loras[0].weight.Value != loraWeightMax {
		t.Errorf("weight slider went to %v, past %v", p.loras[0].weight.Value, loraWeightMax)
	}
}

// TestGenerateShortcutInWindow presses Ctrl+Enter in the real window: the main menu's
// Generate reads the form (here a bad batch count, so nothing runs) and says what is wrong.
func TestGenerateShortcutInWindow(t *testing.T) {
	m, _ := newTestWindow(t, "")
	m.showPlayground()
	m.Playground.batch.SetText("0")
	press(m.Window, key(fyne.KeyReturn, ctrl))
	if !strings.Contains(m.Playground.status.Text, "batch count") {
		t.Errorf("status after Ctrl+Enter: %q", m.Playground.status.Text)
	}
	if len(m.Playground.queue.Jobs()) != 0 {
		t.Error("a job was queued")
	}
}

// waitUI is waitFor with cond run while no background update touches the screens (see
// backgroundMu), so a test looks at a screen only between updates.
func waitUI(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	waitFor(t, what, func() (bool, string) {
		backgroundMu.Lock()
		defer backgroundMu.Unlock()
		return cond()
	})
}

// TestPlaygroundStartsFromLast opens the window on a history: the form holds the newest
// image's parameters with a random seed, and Ctrl+P shows the Playground with the prompt
// focused.
func TestPlaygroundStartsFromLast(t *testing.T) {
	a := test.NewTempApp(t)
	st, err := studio.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.ImportGenerations([]studio.GalleryItem{
		{Prompt: "older", Model: "/m/a", Seed: 1, Steps: 30, CFG: 7, Sampler: "euler", Width: 1024, Height: 1024, File: "/o/1.png"},
		{Prompt: "newest", Model: "/m/b", Seed: 2, Steps: 3, CFG: 2, Sampler: "euler_a", Width: 64, Height: 64, File: "/o/2.png"},
	}); err != nil {
		t.Fatal(err)
	}
	m := NewMainWindow(a, st, "test")
	p := m.Playground
	r, _, err := p.Request()
	if err != nil || r.Prompt != "newest" || r.Model != "/m/b" || r.Steps != 3 || r.Width != 64 || r.Sampler != "euler_a" || r.Seed != nil {
		t.Fatalf("the form starts with %+v (%v), want the newest image's parameters and a random seed", r, err)
	}
	press(m.Window, key(fyne.KeyP, ctrl))
	if !m.playgroundShown() || m.Window.Canvas().Focused() != p.prompt {
		t.Errorf("Ctrl+P: playground shown %v, focus %T", m.playgroundShown(), m.Window.Canvas().Focused())
	}
}

// TestPlaygroundXYGrid generates a 2×2 grid of CFG against seed on the fake engine: four
// cells are queued with the grid's parameters, and when the last is done the labelled grid
// is saved and shown.
func TestPlaygroundXYGrid(t *testing.T) {
	gen := &stepGenerator{steps: 1, step: make(chan struct{}, 4)}
	p, _ := newTestPlayground(t, gen)
	p.prompt.SetText("a red cube")
	p.size.SetSelected(customSize)
	p.width.SetText("64")
	p.height.SetText("64")
	p.xy.xParam.SetSelected("CFG")
	p.xy.xValues.SetText("3, 5")
	p.xy.yParam.SetSelected("CFG")
	p.xy.yValues.SetText("1, 2")
	p.GenerateGrid()
	if !strings.Contains(p.status.Text, "pick two") || len(p.queue.Jobs()) != 0 {
		t.Fatalf("same parameter on both axes: status %q", p.status.Text)
	}
	p.xy.yParam.SetSelected("Seed")
	p.GenerateGrid()
	for i := 0; i < 4; i++ {
		gen.step <- struct{}{}
	}
	waitUI(t, "the grid", func() (bool, string) { return p.LastGrid != "", p.status.Text })
	reqs := gen.requests()
	if len(reqs) != 4 || reqs[0].CFG != 3 || reqs[1].CFG != 5 || *reqs[0].Seed != 1 || *reqs[2].Seed != 2 || reqs[3].CFG != 5 {
		t.Fatalf("cells %+v", reqs)
	}
	f, err := os.Open(p.LastGrid)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width < 2*256 || cfg.Height < 2*256 {
		t.Errorf("grid %s: %dx%d, %v", p.LastGrid, cfg.Width, cfg.Height, err)
	}
	waitUI(t, "the grid shown", func() (bool, string) {
		return p.image.Image != nil && p.image.Image.Bounds().Dx() == cfg.Width, p.result.Text
	})
}
