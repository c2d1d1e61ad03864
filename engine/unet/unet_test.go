package unet_test

import (
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/nn"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/unet"
)

// goldens is the open unet.safetensors of a fixture set.
type goldens struct {
	f     *safetensors.File
	cases []string // "case0", "case1", ...
}

func openGoldens(t *testing.T, root string) *goldens {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(root, "goldens", "unet.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	g := &goldens{f: f}
	re := regexp.MustCompile(`^(case\d+)\.sample$`)
	for _, n := range f.Names() {
		if m := re.FindStringSubmatch(n); m != nil {
			g.cases = append(g.cases, m[1])
		}
	}
	slices.Sort(g.cases)
	if len(g.cases) == 0 {
		t.Fatal("unet goldens hold no case*.sample")
	}
	return g
}

func (g *goldens) host(t *testing.T, name string) ([]float32, []int) {
	t.Helper()
	info, ok := g.f.Tensor(name)
	if !ok {
		t.Fatalf("golden %s missing", name)
	}
	v, err := g.f.Float32(name)
	if err != nil {
		t.Fatalf("golden %s: %v", name, err)
	}
	return v, info.Shape
}

func (g *goldens) upload(t *testing.T, b tensor.Backend, name string) *tensor.Tensor {
	t.Helper()
	v, shape := g.host(t, name)
	x, err := b.Upload(v, shape, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// compare checks got against the golden ref with the UNet goldens'
// tolerance, 2e-4 · max(1, max|ref|), and logs or reports max-abs and
// relative error.
func compare(t *testing.T, what string, got []float32, gotShape tensor.Shape, ref []float32, refShape []int) {
	t.Helper()
	if !gotShape.Equal(refShape) {
		t.Errorf("%s: shape %s, golden %v", what, gotShape, refShape)
		return
	}
	var worst, refMax float64
	for i := range ref {
		refMax = math.Max(refMax, math.Abs(float64(ref[i])))
		if d := math.Abs(float64(got[i] - ref[i])); d > worst || math.IsNaN(d) {
			worst = d
		}
	}
	tol := 2e-4 * math.Max(1, refMax)
	rel := worst / math.Max(refMax, 1e-30)
	if !(worst <= tol) {
		t.Errorf("%s: max|got-ref| %.3g (relative %.3g) > tolerance %.3g", what, worst, rel, tol)
	} else {
		t.Logf("%s: max|got-ref| %.3g (relative %.3g, tolerance %.3g)", what, worst, rel, tol)
	}
}

// runCase runs the UNet on one golden case and compares noise_pred; with
// hooks it also compares every hooked block output the goldens hold.
func runCase(t *testing.T, b tensor.Backend, m *unet.Model, g *goldens, cs string, hooks bool) {
	t.Helper()
	sample := g.upload(t, b, cs+".sample")
	ctx := g.upload(t, b, cs+".encoder_hidden_states")
	text := g.upload(t, b, cs+".text_embeds")
	ids := g.upload(t, b, cs+".time_ids")
	defer tensor.FreeAll(sample, ctx, text, ids)
	ts, _ := g.host(t, cs+".timestep")
	got := map[string][]float32{}
	shapes := map[string]tensor.Shape{}
	if hooks {
		m.Hook = func(name string, x *tensor.Tensor) {
			v, err := b.Download(x)
			if err != nil {
				t.Errorf("hook %s: %v", name, err)
				return
			}
			got[name], shapes[name] = v, x.Shape()
		}
		defer func() { m.Hook = nil }()
	}
	out, err := m.Forward(sample, ts, ctx, text, ids)
	if err != nil {
		t.Fatalf("%s: %v", cs, err)
	}
	defer out.Free()
	v, err := b.Download(out)
	if err != nil {
		t.Fatal(err)
	}
	ref, refShape := g.host(t, cs+".noise_pred")
	compare(t, cs+".noise_pred on "+b.Name(), v, out.Shape(), ref, refShape)
	if !hooks {
		return
	}
	prefix := cs + ".hook."
	checked := 0
	for _, n := range g.f.Names() {
		name, ok := strings.CutPrefix(n, prefix)
		if !ok || strings.Contains(name, ".transformer_blocks.") {
			continue // the transformer blocks' insides are engine/nn's, checked there
		}
		gv, ok := got[name]
		if !ok {
			t.Errorf("the UNet never hooked %q, which the goldens record", name)
			continue
		}
		ref, refShape := g.host(t, n)
		compare(t, n+" on "+b.Name(), gv, shapes[name], ref, refShape)
		checked++
	}
	if checked < 10 {
		t.Errorf("only %d hooked tensors compared", checked)
	}
}

// loadFolder loads the UNet from the diffusers folder's unet/ files,
// strictly (every key of the file must be read).
func loadFolder(t *testing.T, b tensor.Backend, root string) *unet.Model {
	t.Helper()
	cfg, err := sdxl.LoadConfig(filepath.Join(root, "model"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.Open(filepath.Join(root, "model", "unet", "diffusion_pytorch_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	m, err := unet.Load(b, cfg.UNet, nn.FileSource(w))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// loadSingleFile loads the UNet from the Stability-layout single file with
// the folder's configs.
func loadSingleFile(t *testing.T, b tensor.Backend, root string) *unet.Model {
	t.Helper()
	src, err := sdxl.OpenSource(filepath.Join(root, "sdxl-tiny.safetensors"), sdxl.WithConfigDir(filepath.Join(root, "model")))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m, err := unet.FromSource(b, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// goldenCases runs every case (hooks on the first) with a model from the
// folder and one from the single file.
func goldenCases(t *testing.T, b tensor.Backend) {
	root := fixtures.Root(t)
	g := openGoldens(t, root)
	t.Run("folder", func(t *testing.T) {
		m := loadFolder(t, b, root)
		for i, cs := range g.cases {
			runCase(t, b, m, g, cs, i == 0)
		}
	})
	t.Run("single-file", func(t *testing.T) {
		m := loadSingleFile(t, b, root)
		for i, cs := range g.cases {
			runCase(t, b, m, g, cs, i == 0)
		}
	})
}

// TestGoldens compares noise_pred of every golden case, and every block
// output of the first, with diffusers' on CPU and GL.
func TestGoldens(t *testing.T) {
	t.Run("cpu", func(t *testing.T) { goldenCases(t, cpu.New()) })
	t.Run("gl", func(t *testing.T) { goldenCases(t, gltest.Backend(t)) })
}

// TestForwardFreesIntermediates checks that a forward pass leaves nothing
// on the device but its output.
func TestForwardFreesIntermediates(t *testing.T) {
	root := fixtures.Root(t)
	g := openGoldens(t, root)
	b := cpu.New()
	m := loadFolder(t, b, root)
	cs := g.cases[0]
	sample := g.upload(t, b, cs+".sample")
	ctx := g.upload(t, b, cs+".encoder_hidden_states")
	text := g.upload(t, b, cs+".text_embeds")
	ids := g.upload(t, b, cs+".time_ids")
	defer tensor.FreeAll(sample, ctx, text, ids)
	ts, _ := g.host(t, cs+".timestep")
	before := b.Memory().InUse
	out, err := m.Forward(sample, ts, ctx, text, ids)
	if err != nil {
		t.Fatal(err)
	}
	outBytes := int64(out.Shape().Numel() * 4)
	if after := b.Memory().InUse; after-before != outBytes {
		t.Errorf("after Forward %d bytes more are in use, want only the output's %d", after-before, outBytes)
	}
	out.Free()
	if after := b.Memory().InUse; after != before {
		t.Errorf("after freeing the output %d bytes are in use, before Forward %d", after, before)
	}
	// a failing forward (bad time_ids) frees what it made too
	bad, err := b.Zeros(tensor.Shape{sample.Dim(0), 5}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Free()
	before = b.Memory().InUse
	if _, err := m.Forward(sample, ts, ctx, text, bad); err == nil || !strings.Contains(err.Error(), "time_ids") {
		t.Errorf("Forward with time_ids %s: error %v, want one naming time_ids", bad.Shape(), err)
	}
	if after := b.Memory().InUse; after != before {
		t.Errorf("a failed Forward left %d bytes in use", after-before)
	}
	m.Free()
	if _, err := m.Forward(sample, ts, ctx, text, ids); err == nil {
		t.Error("Forward after Free succeeded")
	}
}

// TestForwardRejectsBadInputs checks the shape errors name the input.
func TestForwardRejectsBadInputs(t *testing.T) {
	root := fixtures.Root(t)
	g := openGoldens(t, root)
	b := cpu.New()
	m := loadFolder(t, b, root)
	cs := g.cases[0]
	sample := g.upload(t, b, cs+".sample")
	ctx := g.upload(t, b, cs+".encoder_hidden_states")
	text := g.upload(t, b, cs+".text_embeds")
	ids := g.upload(t, b, cs+".time_ids")
	defer tensor.FreeAll(sample, ctx, text, ids)
	n := sample.Dim(0)
	f := m.Factor()
	if levels := len(m.Config().BlockOutChannels); f != 1<<(levels-1) {
		t.Errorf("Factor %d, want %d for the fixture's %d blocks (one downsample between each)", f, 1<<(levels-1), levels)
	}
	bad, _ := b.Zeros(tensor.Shape{n, m.Config().InChannels + 1, f, f}, tensor.F32)
	defer bad.Free()
	if _, err := m.Forward(bad, []float32{1}, ctx, text, ids); err == nil || !strings.Contains(err.Error(), "sample") {
		t.Errorf("sample %s: error %v, want one naming the sample", bad.Shape(), err)
	}
	if _, err := m.Forward(sample, []float32{1, 2, 3}, ctx, text, ids); err == nil || !strings.Contains(err.Error(), "timesteps") {
		t.Errorf("3 timesteps for batch %d: error %v", n, err)
	}
	if _, err := m.Forward(sample, []float32{1}, ctx, ids, ids); err == nil || !strings.Contains(err.Error(), "text_embeds") {
		t.Errorf("text_embeds %s: error %v", ids.Shape(), err)
	}
	if _, err := m.Forward(sample, []float32{1}, text, text, ids); err == nil || !strings.Contains(err.Error(), "encoder_hidden_states") {
		t.Errorf("encoder_hidden_states %s: error %v", text.Shape(), err)
	}
}

// TestLoadIsStrict checks that a missing key and an unused key are errors
// that name the key.
func TestLoadIsStrict(t *testing.T) {
	root := fixtures.Root(t)
	cfg, err := sdxl.LoadConfig(filepath.Join(root, "model"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.Open(filepath.Join(root, "model", "unet", "diffusion_pytorch_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	src := nn.MapSource{}
	for _, n := range w.Names() {
		info, _ := w.Tensor(n)
		v, err := w.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		src[n] = nn.HostTensor{Shape: info.Shape, DType: tensor.F32, Data: v}
	}
	b := cpu.New()
	m, err := unet.Load(b, cfg.UNet, src)
	if err != nil {
		t.Fatalf("all keys: %v", err)
	}
	m.Free()
	if b.Memory().InUse != 0 {
		t.Errorf("Free left %d bytes in use", b.Memory().InUse)
	}

	// a key deep in the tree: the first up block's last conv_shortcut
	var key string
	for _, n := range w.Names() {
		if strings.HasPrefix(n, "up_blocks.0.") && strings.HasSuffix(n, ".conv_shortcut.weight") && n > key {
			key = n
		}
	}
	if key == "" {
		t.Fatal("the fixture UNet has no up_blocks.0.*.conv_shortcut.weight")
	}
	missing := nn.MapSource{}
	for k, v := range src {
		if k != key {
			missing[k] = v
		}
	}
	if _, err := unet.Load(b, cfg.UNet, missing); err == nil || !strings.Contains(err.Error(), key) {
		t.Errorf("without %s: error %v, want one naming the key", key, err)
	}
	if b.Memory().InUse != 0 {
		t.Errorf("a failed Load left %d bytes in use", b.Memory().InUse)
	}
	// mid_block holds one attention: a second is a key no module reads
	const extra = "mid_block.attentions.1.proj_in.weight"
	src[extra] = nn.HostTensor{Shape: []int{1}, DType: tensor.F32, Data: []float32{0}}
	if _, err := unet.Load(b, cfg.UNet, src); err == nil || !strings.Contains(err.Error(), extra) {
		t.Errorf("with extra %s: error %v, want one naming the key", extra, err)
	}
	// a config with other head counts does not fit the weights' widths
	// (diffusers' SDXL config spells the head count attention_head_dim): the
	// smallest count that does not divide the last block's width, which the
	// mid block's attention splits
	bad := cfg.UNet
	last := cfg.UNet.BlockOutChannels[len(cfg.UNet.BlockOutChannels)-1]
	heads := 2
	for last%heads == 0 {
		heads++
	}
	bad.NumAttentionHeads = nil
	bad.AttentionHeadDim = sdxl.IntOrList{heads}
	delete(src, extra)
	if _, err := unet.Load(b, bad, src); err == nil || !strings.Contains(err.Error(), "heads") {
		t.Errorf("attention_head_dim %d for width %d: error %v, want one about heads", heads, last, err)
	}
}
