package clip_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"lorastudio/engine/clip"
	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/nn"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/tokenizer"
)

// goldens is the fixture set's text-encoder goldens and prompts.
type goldens struct {
	f       *safetensors.File
	prompts []string
}

func openGoldens(t *testing.T, root string) *goldens {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(root, "goldens", "text_encoders.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	raw, err := os.ReadFile(filepath.Join(root, "goldens", "_summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Config struct {
			TEPrompts []string `json:"te_prompts"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatalf("_summary.json: %v", err)
	}
	if len(sum.Config.TEPrompts) == 0 {
		t.Fatal("_summary.json lists no config.te_prompts")
	}
	return &goldens{f: f, prompts: sum.Config.TEPrompts}
}

func (g *goldens) has(name string) bool { _, ok := g.f.Tensor(name); return ok }

// ids returns a golden id tensor as ints.
func (g *goldens) ids(t *testing.T, name string) []int {
	t.Helper()
	v, err := g.f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// maxErr tracks the largest error relative to each golden's tolerance.
type maxErr struct {
	mu    sync.Mutex
	worst map[string]float64 // kind (e.g. "te1.last_hidden_state") → max|got-ref|
}

// check compares got with the golden name: max|got-ref| <= 1e-4 * max(1, max|ref|).
func (g *goldens) check(t *testing.T, b tensor.Backend, got *tensor.Tensor, name string, m *maxErr) {
	t.Helper()
	info, ok := g.f.Tensor(name)
	if !ok {
		t.Fatalf("golden %s missing", name)
	}
	ref, err := g.f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Shape().Equal(tensor.Shape(info.Shape)) {
		t.Errorf("%s: shape %s, golden %v", name, got.Shape(), info.Shape)
		return
	}
	v, err := b.Download(got)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var worst, refMax float64
	at := 0
	for i := range v {
		refMax = math.Max(refMax, math.Abs(float64(ref[i])))
		if d := math.Abs(float64(v[i]) - float64(ref[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	tol := 1e-4 * math.Max(1, refMax)
	if !(worst <= tol) {
		t.Errorf("%s on %s: max|got-ref| %.3g at %d (got %g, ref %g) > tolerance %.3g", name, b.Name(), worst, at, v[at], ref[at], tol)
	}
	if m != nil {
		kind := name[strings.Index(name, ".")+1:]
		m.mu.Lock()
		m.worst[kind] = math.Max(m.worst[kind], worst)
		m.mu.Unlock()
	}
}

type models struct {
	te1, te2   *clip.TextModel
	tok1, tok2 *tokenizer.Tokenizer
}

func (m *models) free() {
	m.te1.Free()
	m.te2.Free()
}

func openModels(t *testing.T, b tensor.Backend, root string) *models {
	t.Helper()
	dir := filepath.Join(root, "model")
	te1, err := clip.OpenDir(b, filepath.Join(dir, "text_encoder"))
	if err != nil {
		t.Fatal(err)
	}
	te2, err := clip.OpenDir(b, filepath.Join(dir, "text_encoder_2"))
	if err != nil {
		t.Fatal(err)
	}
	tok1, err := tokenizer.FromDir(filepath.Join(dir, "tokenizer"))
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := tokenizer.FromDir(filepath.Join(dir, "tokenizer_2"))
	if err != nil {
		t.Fatal(err)
	}
	return &models{te1: te1, te2: te2, tok1: tok1, tok2: tok2}
}

// checkAll compares every text-encoder golden of the set on backend b.
func checkAll(t *testing.T, b tensor.Backend) {
	root := fixtures.Root(t)
	g := openGoldens(t, root)
	m := openModels(t, b, root)
	base := b.Memory().InUse
	errs := &maxErr{worst: map[string]float64{}}
	for i, prompt := range g.prompts {
		p := fmt.Sprintf("p%d.", i)
		if !g.has(p + "te1.last_hidden_state") {
			t.Fatalf("goldens lack prompt %d (%q)", i, prompt)
		}
		n := m.tok1.MaxLength()
		ids1, ids2 := m.tok1.EncodePadded(prompt, n), m.tok2.EncodePadded(prompt, m.tok2.MaxLength())
		if want := g.ids(t, p+"input_ids"); fmt.Sprint(ids1) != fmt.Sprint(want) {
			t.Fatalf("prompt %d: tokenizer ids %v, golden %v", i, ids1, want)
		}
		if want := g.ids(t, p+"input_ids_2"); fmt.Sprint(ids2) != fmt.Sprint(want) {
			t.Fatalf("prompt %d: tokenizer_2 ids %v, golden %v", i, ids2, want)
		}
		for _, enc := range []struct {
			name string
			te   *clip.TextModel
			ids  []int
		}{{"te1", m.te1, ids1}, {"te2", m.te2, ids2}} {
			out, err := enc.te.Forward([][]int{enc.ids}, clip.Options{AllHidden: true})
			if err != nil {
				t.Fatalf("prompt %d %s: %v", i, enc.name, err)
			}
			if len(out.Hidden) != enc.te.Config.NumHiddenLayers+1 {
				t.Fatalf("%d hidden states for %d layers", len(out.Hidden), enc.te.Config.NumHiddenLayers)
			}
			q := p + enc.name + "."
			g.check(t, b, out.Hidden[0], q+"embeddings", errs)
			g.check(t, b, out.Penultimate, q+"hidden_penultimate", errs)
			g.check(t, b, out.Hidden[len(out.Hidden)-2], q+"hidden_penultimate", nil)
			g.check(t, b, out.LastHidden, q+"last_hidden_state", errs)
			if enc.name == "te1" {
				g.check(t, b, out.Pooled, q+"pooler_output", errs)
				if out.TextEmbeds != nil {
					t.Error("text_encoder (no projection) gave text_embeds")
				}
			} else {
				g.check(t, b, out.TextEmbeds, q+"text_embeds", errs)
			}
			out.Free()
		}
		pe, err := clip.EncodePrompt(m.te1, m.te2, m.tok1, m.tok2, prompt)
		if err != nil {
			t.Fatal(err)
		}
		g.check(t, b, pe.Embeds, p+"prompt_embeds", errs)
		g.check(t, b, pe.Pooled, p+"pooled_prompt_embeds", errs)
		pe.Free()
		if g.has(p + "negative_prompt_embeds_none") {
			neg, err := clip.EncodeNegativePrompt(m.te1, m.te2, m.tok1, m.tok2, nil, true)
			if err != nil {
				t.Fatal(err)
			}
			g.check(t, b, neg.Embeds, p+"negative_prompt_embeds_none", errs)
			g.check(t, b, neg.Pooled, p+"negative_pooled_prompt_embeds_none", errs)
			neg.Free()
			empty := ""
			neg, err = clip.EncodeNegativePrompt(m.te1, m.te2, m.tok1, m.tok2, &empty, true)
			if err != nil {
				t.Fatal(err)
			}
			g.check(t, b, neg.Embeds, p+"negative_prompt_embeds_emptystr", errs)
			g.check(t, b, neg.Pooled, p+"negative_pooled_prompt_embeds_emptystr", errs)
			// the explicit "" is not zeros
			v, _ := b.Download(neg.Pooled)
			if allZero(v) {
				t.Error(`negative prompt "" encoded as zeros`)
			}
			neg.Free()
		}
	}
	if got := b.Memory().InUse; got != base {
		t.Errorf("%d bytes in use after freeing every output, %d before", got, base)
	}
	kinds := make([]string, 0, len(errs.worst))
	for k := range errs.worst {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Logf("%s: max|got-ref| %.3g over %d prompts on %s", k, errs.worst[k], len(g.prompts), b.Name())
	}
	m.free()
	if got := b.Memory().InUse; got != 0 && b.Name() == "cpu" {
		t.Errorf("%d bytes still in use after freeing both text encoders", got)
	}
}

func allZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

func TestGoldensCPU(t *testing.T) { checkAll(t, cpu.New()) }

func TestGoldensGL(t *testing.T) {
	b := gltest.Backend(t)
	before := b.Memory().InUse
	checkAll(t, b)
	if got := b.Memory().InUse; got != before {
		t.Errorf("GL: %d bytes in use after freeing the text encoders, %d before", got, before)
	}
}

// TestSingleFile loads both encoders from the Stability-layout single file
// (fused in_proj rows, transposed text_projection) through engine/sdxl and
// checks them against the same goldens.
func TestSingleFile(t *testing.T) {
	root := fixtures.Root(t)
	g := openGoldens(t, root)
	src, err := sdxl.OpenSource(filepath.Join(root, "sdxl-tiny.safetensors"), sdxl.WithConfigDir(filepath.Join(root, "model")))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b := cpu.New()
	cfg := src.Config()
	te1, err := clip.Load(b, src.Weights(sdxl.TextEncoder), clip.Config(cfg.TextEncoder))
	if err != nil {
		t.Fatal(err)
	}
	defer te1.Free()
	te2, err := clip.Load(b, src.Weights(sdxl.TextEncoder2), clip.Config(cfg.TextEncoder2))
	if err != nil {
		t.Fatal(err)
	}
	defer te2.Free()
	for i := range g.prompts {
		p := fmt.Sprintf("p%d.", i)
		for _, enc := range []struct {
			name string
			te   *clip.TextModel
			ids  string
		}{{"te1", te1, "input_ids"}, {"te2", te2, "input_ids_2"}} {
			out, err := enc.te.Forward([][]int{g.ids(t, p+enc.ids)}, clip.Options{})
			if err != nil {
				t.Fatal(err)
			}
			g.check(t, b, out.Penultimate, p+enc.name+".hidden_penultimate", nil)
			g.check(t, b, out.LastHidden, p+enc.name+".last_hidden_state", nil)
			if out.TextEmbeds != nil {
				g.check(t, b, out.TextEmbeds, p+enc.name+".text_embeds", nil)
			}
			out.Free()
		}
	}
}

// TestBatch runs two prompts as one batch and checks each row against the goldens.
func TestBatch(t *testing.T) {
	root := fixtures.Root(t)
	g := openGoldens(t, root)
	if len(g.prompts) < 2 {
		t.Skip("the set has fewer than two prompts")
	}
	b := cpu.New()
	m := openModels(t, b, root)
	defer m.free()
	out, err := m.te2.Forward([][]int{g.ids(t, "p0.input_ids_2"), g.ids(t, "p1.input_ids_2")}, clip.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Free()
	for i := range 2 {
		row, err := b.Slice(out.TextEmbeds, 0, i, i+1)
		if err != nil {
			t.Fatal(err)
		}
		g.check(t, b, row, fmt.Sprintf("p%d.te2.text_embeds", i), nil)
		row.Free()
		h, err := b.Slice(out.Penultimate, 0, i, i+1)
		if err != nil {
			t.Fatal(err)
		}
		g.check(t, b, h, fmt.Sprintf("p%d.te2.hidden_penultimate", i), nil)
		h.Free()
	}
}

// editedSource hides one key of a source or adds one.
type editedSource struct {
	nn.Source
	hide, add string
}

func (e editedSource) Names() []string {
	var out []string
	for _, n := range e.Source.Names() {
		if n != e.hide {
			out = append(out, n)
		}
	}
	if e.add != "" {
		out = append(out, e.add)
	}
	return out
}

func (e editedSource) Lookup(name string) ([]int, tensor.DType, bool) {
	if name == e.hide {
		return nil, 0, false
	}
	if name == e.add {
		return []int{1}, tensor.F32, true
	}
	return e.Source.Lookup(name)
}

func TestStrictLoading(t *testing.T) {
	root := fixtures.Root(t)
	dir := filepath.Join(root, "model", "text_encoder_2")
	cfg, err := clip.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := cpu.New()
	missing := fmt.Sprintf("text_model.encoder.layers.%d.mlp.fc2.bias", cfg.NumHiddenLayers-1)
	if _, err := clip.Load(b, editedSource{Source: nn.FileSource(f), hide: missing}, cfg); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := clip.Load(b, editedSource{Source: nn.FileSource(f), add: "text_model.surprise"}, cfg); err == nil || !strings.Contains(err.Error(), "text_model.surprise") {
		t.Fatalf("unknown key: %v", err)
	}
	ok, err := clip.Load(b, editedSource{Source: nn.FileSource(f), add: "text_model.embeddings.position_ids"}, cfg)
	if err != nil {
		t.Fatalf("position_ids should load quietly: %v", err)
	}
	ok.Free()
	wide := cfg
	wide.IntermediateSize++
	if _, err := clip.Load(b, nn.FileSource(f), wide); err == nil || !strings.Contains(err.Error(), "mlp.fc1.weight") {
		t.Fatalf("shape mismatch: %v", err)
	}
	plain := cfg
	plain.Architectures = []string{"CLIPTextModel"}
	if _, err := clip.Load(b, nn.FileSource(f), plain); err == nil || !strings.Contains(err.Error(), "text_projection.weight") {
		t.Fatalf("a CLIPTextModel config over a projection checkpoint: %v", err)
	}
	if got := b.Memory().InUse; got != 0 {
		t.Fatalf("failed loads left %d bytes on the backend", got)
	}
	if _, err := clip.OpenDir(b, t.TempDir()); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("empty folder: %v", err)
	}
}

func TestEOSPositions(t *testing.T) {
	c := clip.Config{EosTokenID: 2}
	pos, err := clip.EOSPositions(c, [][]int{{49406, 320, 49407, 49407}, {49406, 49407, 0, 0}})
	if err != nil || fmt.Sprint(pos) != "[2 1]" {
		t.Fatalf("argmax positions %v %v, want [2 1] (the first highest id)", pos, err)
	}
	c.EosTokenID = 49407
	pos, err = clip.EOSPositions(c, [][]int{{49406, 320, 49407, 5}})
	if err != nil || fmt.Sprint(pos) != "[2]" {
		t.Fatalf("eos positions %v %v", pos, err)
	}
	if _, err := clip.EOSPositions(c, [][]int{{1, 2}}); err == nil {
		t.Fatal("a sequence without the end token was accepted")
	}
}

// TestEncoders opens the whole diffusers folder and checks a prompt with
// and without a negative prompt, then that Free returns every byte.
func TestEncoders(t *testing.T) {
	root := fixtures.Root(t)
	g := openGoldens(t, root)
	b := cpu.New()
	e, err := clip.OpenEncoders(b, filepath.Join(root, "model"))
	if err != nil {
		t.Fatal(err)
	}
	if !e.ForceZerosForEmptyPrompt {
		t.Fatal("force_zeros_for_empty_prompt not read as true")
	}
	checked := 0
	for i, prompt := range g.prompts {
		p := fmt.Sprintf("p%d.", i)
		if !g.has(p + "negative_prompt_embeds_none") {
			continue
		}
		checked++
		pos, neg, err := e.Encode(prompt, nil)
		if err != nil {
			t.Fatal(err)
		}
		g.check(t, b, pos.Embeds, p+"prompt_embeds", nil)
		g.check(t, b, pos.Pooled, p+"pooled_prompt_embeds", nil)
		g.check(t, b, neg.Embeds, p+"negative_prompt_embeds_none", nil)
		g.check(t, b, neg.Pooled, p+"negative_pooled_prompt_embeds_none", nil)
		pos.Free()
		neg.Free()
		empty := ""
		pos, neg, err = e.Encode(prompt, &empty)
		if err != nil {
			t.Fatal(err)
		}
		g.check(t, b, neg.Embeds, p+"negative_prompt_embeds_emptystr", nil)
		g.check(t, b, neg.Pooled, p+"negative_pooled_prompt_embeds_emptystr", nil)
		pos.Free()
		neg.Free()
	}
	if checked == 0 {
		t.Fatal("no prompt of the set has negative-prompt goldens")
	}
	e.Free()
	if got := b.Memory().InUse; got != 0 {
		t.Fatalf("%d bytes in use after Encoders.Free", got)
	}
	if _, _, err := e.Encode("x", nil); err == nil {
		t.Fatal("Encode after Free succeeded")
	}
	if _, err := clip.OpenEncoders(b, t.TempDir()); err == nil || !strings.Contains(err.Error(), "model_index.json") {
		t.Fatalf("empty folder: %v", err)
	}
}
