package lora

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/nn"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/unet"
)

// loadTinyUNet loads the fixture model's UNet on be.
func loadTinyUNet(t testing.TB, be tensor.Backend) (*unet.Model, sdxl.Config) {
	t.Helper()
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
	m, err := unet.Load(be, cfg.UNet, nn.FileSource(w))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m, cfg
}

// transformerCounts derives from the UNet config how many Transformer2D
// models (attentions) and transformer blocks the model has.
func transformerCounts(c sdxl.UNetConfig) (attentions, blocks int) {
	for i := range c.DownBlockTypes {
		if c.HasCrossAttention(i) {
			attentions += c.LayersPerBlock
			blocks += c.LayersPerBlock * c.TransformerDepth(i)
		}
	}
	if c.MidBlockType == "UNetMidBlock2DCrossAttn" {
		attentions++
		blocks += c.TransformerDepth(len(c.BlockOutChannels) - 1)
	}
	for i := range c.UpBlockTypes {
		if c.UpHasCrossAttention(i) {
			attentions += c.LayersPerBlock + 1
			blocks += (c.LayersPerBlock + 1) * c.UpTransformerDepth(i)
		}
	}
	return attentions, blocks
}

func TestTargetPreset(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", []string{"to_q", "to_k", "to_v", "to_out.0"}},
		{"attn", []string{"to_q", "to_k", "to_v", "to_out.0"}},
		{"attn-mlp", []string{"to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"}},
		{"to_q, to_v", []string{"to_q", "to_v"}},
		{"ff.net.2", []string{"ff.net.2"}},
	} {
		got, err := TargetPreset(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("TargetPreset(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"to_q,,to_k", "attn mlp", "to_q,to_q", "to_out.", "../x"} {
		if got, err := TargetPreset(bad); err == nil {
			t.Errorf("TargetPreset(%q) = %v, want an error", bad, got)
		}
	}
}

// TestPresetsMatchConfig attaches each preset to the fixture UNet and checks
// the modules against the counts the config implies.
func TestPresetsMatchConfig(t *testing.T) {
	be := cpu.New()
	m, cfg := loadTinyUNet(t, be)
	attentions, blocks := transformerCounts(cfg.UNet)
	if blocks == 0 {
		t.Fatal("the fixture UNet config has no transformer blocks")
	}
	linears := m.Linears()
	for _, c := range []struct {
		preset string
		want   int
	}{
		{PresetAttn, blocks * 2 * 4},                          // attn1, attn2 × q, k, v, out
		{PresetAttnMLP, blocks*2*4 + blocks*2 + attentions*2}, // + ff.net.0.proj, ff.net.2; + proj_in, proj_out
	} {
		targets, err := TargetPreset(c.preset)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultNetworkConfig()
		cfg.Targets = targets
		n, err := NewNetwork(be, linears, cfg, 1)
		if err != nil {
			t.Fatalf("%s: %v", c.preset, err)
		}
		if len(n.Adapters) != c.want {
			t.Errorf("%s: %d adapters, the config implies %d", c.preset, len(n.Adapters), c.want)
		}
		if !slices.IsSortedFunc(n.Adapters, func(a, b *Adapter) int { return strings.Compare(a.Module, b.Module) }) {
			t.Errorf("%s: adapters not sorted by module", c.preset)
		}
		for _, a := range n.Adapters {
			l := linears[a.Module]
			if l.Adapter != a || a.In != l.In || a.Out != l.Out || a.Rank != cfg.Rank || a.Scale != cfg.Alpha/float32(cfg.Rank) {
				t.Errorf("%s: adapter %s (%d → %d r %d scale %g) does not fit its linear (%d → %d)", c.preset, a.Module, a.In, a.Out, a.Rank, a.Scale, l.In, l.Out)
			}
			if !slices.ContainsFunc(targets, func(s string) bool { return strings.HasSuffix(a.Module, "."+s) }) {
				t.Errorf("%s: %s matches no target", c.preset, a.Module)
			}
			if strings.Contains(a.Module, "attn") && !strings.Contains(a.Module, ".attn1.") && !strings.Contains(a.Module, ".attn2.") {
				t.Errorf("%s: %s is not an attn1/attn2 projection", c.preset, a.Module)
			}
		}
		if _, err := NewNetwork(be, linears, cfg, 1); err == nil {
			t.Errorf("%s: a second network on the same linears was accepted", c.preset)
		}
		n.Free()
		for _, a := range n.Adapters {
			if linears[a.Module].Adapter != nil {
				t.Fatalf("%s: Free left %s attached", c.preset, a.Module)
			}
		}
	}
	cfg2 := DefaultNetworkConfig()
	cfg2.Targets = []string{"to_q", "no_such_layer"}
	if _, err := NewNetwork(be, linears, cfg2, 1); err == nil || !strings.Contains(err.Error(), "no_such_layer") {
		t.Errorf("a target matching nothing: %v", err)
	}
	for _, a := range linears {
		if a.Adapter != nil {
			t.Fatal("a failed NewNetwork left an adapter attached")
		}
	}
}

// fakeLinears returns linears with only sizes (NewNetwork reads no weight).
func fakeLinears(sizes map[string][2]int) map[string]*nn.Linear {
	out := map[string]*nn.Linear{}
	for name, s := range sizes {
		out[name] = &nn.Linear{In: s[0], Out: s[1]}
	}
	return out
}

func TestKaimingUniformBound(t *testing.T) {
	for _, fanIn := range []int{1, 3, 320, 1280, 2048} {
		got := KaimingUniformBound(math.Sqrt(5), fanIn)
		if want := 1 / math.Sqrt(float64(fanIn)); math.Abs(got-want) > 1e-12*want {
			t.Errorf("bound(a=√5, fan_in %d) = %.17g, want 1/√fan_in = %.17g", fanIn, got, want)
		}
	}
	// a = 0 is kaiming_uniform_'s ReLU case: √6/√fan_in.
	if got, want := KaimingUniformBound(0, 100), math.Sqrt(6)/10; math.Abs(got-want) > 1e-12 {
		t.Errorf("bound(a=0, fan_in 100) = %g, want %g", got, want)
	}
}

// TestInitStatistics checks both inits' distributions, the zero up factor
// and determinism by (seed, module).
func TestInitStatistics(t *testing.T) {
	be := cpu.New()
	const in, out, rank = 1000, 24, 16
	sizes := map[string][2]int{"a.to_q": {in, out}, "b.to_q": {in, out}, "b.to_k": {in, out}}
	for _, init := range []string{InitKohya, InitGaussian} {
		cfg := NetworkConfig{Rank: rank, Alpha: 8, Targets: []string{"to_q"}, Init: init}
		n, err := NewNetwork(be, fakeLinears(sizes), cfg, 7)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := n.Values()
		if err != nil {
			t.Fatal(err)
		}
		down := vals[0]
		var sum, sq, maxAbs float64
		for _, v := range down {
			sum += float64(v)
			sq += float64(v) * float64(v)
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		cnt := float64(len(down))
		mean, std := sum/cnt, math.Sqrt(sq/cnt-(sum/cnt)*(sum/cnt))
		var wantStd float64
		switch init {
		case InitKohya:
			bound := 1 / math.Sqrt(in)
			wantStd = bound / math.Sqrt(3)
			if maxAbs > bound {
				t.Errorf("kohya: |down| reaches %g, beyond the bound 1/√in = %g", maxAbs, bound)
			}
			if maxAbs < 0.99*bound {
				t.Errorf("kohya: |down| stays below %g, 0.99 of the bound %g", maxAbs, bound)
			}
		case InitGaussian:
			wantStd = 1.0 / rank
		}
		// 16000 samples: the sample std is within 2% of σ, the mean within 4σ/√n.
		if math.Abs(std-wantStd) > 0.02*wantStd || math.Abs(mean) > 4*wantStd/math.Sqrt(cnt) {
			t.Errorf("%s: down mean %.3g std %.5g, want 0 and %.5g", init, mean, std, wantStd)
		}
		for i, v := range vals {
			if i%2 == 1 && slices.ContainsFunc(v, func(x float32) bool { return x != 0 }) {
				t.Errorf("%s: %s is not zero at init", init, n.Params()[i].Name)
			}
		}
		if slices.Equal(vals[0], vals[2]) {
			t.Errorf("%s: two modules drew the same down factor", init)
		}
		// the same seed gives the same weights even when other modules are
		// targeted as well; another seed gives others
		cfg.Targets = []string{"to_k", "to_q"}
		again, err := NewNetwork(be, fakeLinears(sizes), cfg, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range again.Adapters {
			if a.Module == "a.to_q" {
				v, _ := be.Download(a.Down)
				if !slices.Equal(v, down) {
					t.Errorf("%s: a.to_q's init changed when b.to_k was targeted too", init)
				}
			}
		}
		other, err := NewNetwork(be, fakeLinears(sizes), NetworkConfig{Rank: rank, Alpha: 8, Targets: []string{"to_q"}, Init: init}, 8)
		if err != nil {
			t.Fatal(err)
		}
		ov, _ := other.Values()
		if slices.Equal(ov[0], down) {
			t.Errorf("%s: seeds 7 and 8 drew the same weights", init)
		}
		n.Free()
		again.Free()
		other.Free()
	}
}

func TestNetworkConfigValidate(t *testing.T) {
	good := DefaultNetworkConfig()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if good.Scale() != 2 {
		t.Errorf("default scale %g, want 16/8", good.Scale())
	}
	for name, edit := range map[string]func(*NetworkConfig){
		"rank 0":      func(c *NetworkConfig) { c.Rank = 0 },
		"alpha -1":    func(c *NetworkConfig) { c.Alpha = -1 },
		"alpha NaN":   func(c *NetworkConfig) { c.Alpha = float32(math.NaN()) },
		"no targets":  func(c *NetworkConfig) { c.Targets = nil },
		"init xavier": func(c *NetworkConfig) { c.Init = "xavier" },
		"dropout 1":   func(c *NetworkConfig) { c.Dropout = 1 },
		"dropout -.1": func(c *NetworkConfig) { c.Dropout = -0.1 },
		"bad target":  func(c *NetworkConfig) { c.Targets = []string{"to q"} },
	} {
		c := DefaultNetworkConfig()
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// hostAdapter computes an adapter's forward and backward on the host from
// its definition, in float64: y = s·Up·Down·(m⊙x), with the gradients.
func hostAdapter(x, down, up, mask, dout []float64, rows, in, out, rank int, s float64) (y, dx, ddown, dup []float64) {
	xm := make([]float64, len(x))
	for i := range x {
		xm[i] = x[i]
		if mask != nil {
			xm[i] *= mask[i]
		}
	}
	h := make([]float64, rows*rank) // (rows, rank): s·Down·xm
	for n := range rows {
		for r := range rank {
			var acc float64
			for i := range in {
				acc += down[r*in+i] * xm[n*in+i]
			}
			h[n*rank+r] = s * acc
		}
	}
	y = make([]float64, rows*out)
	for n := range rows {
		for o := range out {
			for r := range rank {
				y[n*out+o] += up[o*rank+r] * h[n*rank+r]
			}
		}
	}
	dup = make([]float64, out*rank)
	dh := make([]float64, rows*rank)
	for n := range rows {
		for o := range out {
			for r := range rank {
				dup[o*rank+r] += dout[n*out+o] * h[n*rank+r]
				dh[n*rank+r] += s * dout[n*out+o] * up[o*rank+r]
			}
		}
	}
	ddown = make([]float64, rank*in)
	dx = make([]float64, rows*in)
	for n := range rows {
		for r := range rank {
			for i := range in {
				ddown[r*in+i] += dh[n*rank+r] * xm[n*in+i]
				dx[n*in+i] += dh[n*rank+r] * down[r*in+i]
			}
		}
	}
	if mask != nil {
		for i := range dx {
			dx[i] *= mask[i]
		}
	}
	return y, dx, ddown, dup
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// closeTo reports the worst |got−want| relative to max|want|.
func closeTo(got []float32, want []float64) float64 {
	var worst, ref float64
	for i := range want {
		ref = math.Max(ref, math.Abs(want[i]))
		worst = math.Max(worst, math.Abs(float64(got[i])-want[i]))
	}
	return worst / math.Max(ref, 1e-30)
}

// TestAdapterMatchesDefinition runs one adapter's forward and backward,
// with and without dropout, against hostAdapter; gradients accumulate
// over two backwards until ZeroGrad.
func TestAdapterMatchesDefinition(t *testing.T) {
	be := cpu.New()
	const rows, in, out, rank = 6, 10, 7, 3
	for _, p := range []float32{0, 0.3} {
		cfg := NetworkConfig{Rank: rank, Alpha: 5, Targets: []string{"l"}, Dropout: p}
		n, err := NewNetwork(be, fakeLinears(map[string][2]int{"m.l": {in, out}}), cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Free()
		a := n.Adapters[0]
		vals, _ := n.Values()
		up := make([]float32, out*rank)
		for i := range up {
			up[i] = float32(math.Sin(float64(i) + 0.5))
		}
		vals[1] = up
		if err := n.SetParams(vals); err != nil {
			t.Fatal(err)
		}
		xv := make([]float32, rows*in)
		dv := make([]float32, rows*out)
		for i := range xv {
			xv[i] = float32(math.Cos(float64(3 * i)))
		}
		for i := range dv {
			dv[i] = float32(math.Sin(float64(7*i) + 1))
		}
		x, _ := be.Upload(xv, tensor.Shape{2, rows / 2, in}, tensor.F32)
		dout, _ := be.Upload(dv, tensor.Shape{2, rows / 2, out}, tensor.F32)
		defer tensor.FreeAll(x, dout)

		n.Train(true)
		n.SetDropoutSeed(11, 4)
		var mask []float64
		if p > 0 {
			mask = f64(DropoutMask(mix(mix(11, 4), a.salt), rows*in, p))
		}
		wantY, wantDX, wantDD, wantDU := hostAdapter(f64(xv), f64(vals[0]), f64(up), mask, f64(dv), rows, in, out, rank, float64(cfg.Scale()))
		// a forward that keeps nothing (checkpointing's first pass) and the
		// training forward agree
		y0, err := a.Forward(x, false)
		if err != nil {
			t.Fatal(err)
		}
		y, err := a.Forward(x, true)
		if err != nil {
			t.Fatal(err)
		}
		g0, _ := be.Download(y0)
		g, _ := be.Download(y)
		tensor.FreeAll(y0, y)
		if !slices.Equal(g0, g) {
			t.Errorf("p %g: the forward that keeps nothing differs from the training forward", p)
		}
		if r := closeTo(g, wantY); r > 1e-5 {
			t.Errorf("p %g: forward off by %.3g of max", p, r)
		}
		for k := 1; k <= 2; k++ {
			if k == 2 {
				y, _ := a.Forward(x, true)
				y.Free()
			}
			dx, err := a.Backward(dout)
			if err != nil {
				t.Fatal(err)
			}
			gdx, _ := be.Download(dx)
			dx.Free()
			grads, _ := n.Grads()
			if r := closeTo(gdx, wantDX); r > 1e-5 {
				t.Errorf("p %g: dx off by %.3g", p, r)
			}
			scaled := func(v []float64) []float64 {
				o := slices.Clone(v)
				for i := range o {
					o[i] *= float64(k)
				}
				return o
			}
			if r := closeTo(grads[0], scaled(wantDD)); r > 1e-5 {
				t.Errorf("p %g backward %d: dDown off by %.3g", p, k, r)
			}
			if r := closeTo(grads[1], scaled(wantDU)); r > 1e-5 {
				t.Errorf("p %g backward %d: dUp off by %.3g", p, k, r)
			}
		}
		a.FreeCache()
		n.ZeroGrad()
		if ps := n.Params(); ps[0].Grad != nil || ps[1].Grad != nil {
			t.Errorf("ZeroGrad left gradients")
		}
		if _, err := a.Backward(dout); err == nil {
			t.Errorf("a backward after FreeCache was accepted")
		}
	}
}

// TestDropoutDeterminism: masks are a pure function of (seed, step, module),
// drop about p of the elements, scale the rest by 1/(1−p), and vanish when
// the network is not training.
func TestDropoutDeterminism(t *testing.T) {
	const p = 0.25
	m := DropoutMask(42, 1<<17, p) // large enough to be split across goroutines
	var zeros int
	for _, v := range m {
		switch v {
		case 0:
			zeros++
		case 1 / (1 - p):
		default:
			t.Fatalf("mask value %g, want 0 or %g", v, 1/(1-p))
		}
	}
	if frac := float64(zeros) / float64(len(m)); math.Abs(frac-p) > 0.005 {
		t.Errorf("dropped %.4f of the elements, want %g", frac, p)
	}
	if !slices.Equal(m, DropoutMask(42, 1<<17, p)) {
		t.Error("the same key drew another mask")
	}
	if small := DropoutMask(42, 1000, p); !slices.Equal(small, m[:1000]) {
		t.Error("a mask's prefix depends on its length")
	}
	if slices.Equal(m, DropoutMask(43, 1<<17, p)) {
		t.Error("keys 42 and 43 drew the same mask")
	}

	be := cpu.New()
	cfg := NetworkConfig{Rank: 2, Alpha: 2, Targets: []string{"l"}, Dropout: 0.5}
	n, err := NewNetwork(be, fakeLinears(map[string][2]int{"a.l": {64, 8}, "b.l": {64, 8}}), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Free()
	vals, _ := n.Values()
	for i := 1; i < len(vals); i += 2 {
		for j := range vals[i] {
			vals[i][j] = 1
		}
	}
	if err := n.SetParams(vals); err != nil {
		t.Fatal(err)
	}
	// both adapters get the same down so only the masks can tell them apart
	vals[2] = vals[0]
	if err := n.SetParams(vals); err != nil {
		t.Fatal(err)
	}
	x, _ := be.Upload(slices.Repeat([]float32{1}, 4*64), tensor.Shape{4, 64}, tensor.F32)
	defer x.Free()
	run := func(a *Adapter, seed uint64, step int) []float32 {
		n.SetDropoutSeed(seed, step)
		y, err := a.Forward(x, false)
		if err != nil {
			t.Fatal(err)
		}
		defer y.Free()
		v, _ := be.Download(y)
		return v
	}
	n.Train(false)
	clean := run(n.Adapters[0], 1, 1)
	if !slices.Equal(clean, run(n.Adapters[0], 2, 9)) {
		t.Error("dropout applied while not training")
	}
	n.Train(true)
	s1 := run(n.Adapters[0], 1, 1)
	if slices.Equal(s1, clean) {
		t.Error("no dropout while training")
	}
	if !slices.Equal(s1, run(n.Adapters[0], 1, 1)) {
		t.Error("(seed 1, step 1) drew two masks")
	}
	if slices.Equal(s1, run(n.Adapters[0], 1, 2)) || slices.Equal(s1, run(n.Adapters[0], 2, 1)) {
		t.Error("another step or seed drew the same mask")
	}
	if slices.Equal(s1, run(n.Adapters[1], 1, 1)) {
		t.Error("two modules drew the same mask")
	}
}

// TestParamsExportLoad: Params' order and names, SetParams' checks, and
// Export → Load and Export → WriteKohya → Open → Load round trips.
func TestParamsExportLoad(t *testing.T) {
	be := cpu.New()
	m, cfg := loadTinyUNet(t, be)
	nc := NetworkConfig{Rank: 3, Alpha: 6, Targets: []string{"to_k", "ff.net.2"}}
	n, err := NewNetwork(be, m.Linears(), nc, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Free()
	ps := n.Params()
	if len(ps) != 2*len(n.Adapters) {
		t.Fatalf("%d params for %d adapters", len(ps), len(n.Adapters))
	}
	total := 0
	for i, a := range n.Adapters {
		if ps[2*i].Name != a.Module+".lora_down" || ps[2*i+1].Name != a.Module+".lora_up" {
			t.Fatalf("params %d, %d are %s, %s", 2*i, 2*i+1, ps[2*i].Name, ps[2*i+1].Name)
		}
		total += ps[2*i].Value.Numel() + ps[2*i+1].Value.Numel()
	}
	if total != n.NumParams() {
		t.Errorf("NumParams %d, the tensors hold %d", n.NumParams(), total)
	}
	vals, _ := n.Values()
	for i := range vals {
		for j := range vals[i] {
			vals[i][j] = float32(math.Sin(float64(i*131+j))) / 4
		}
	}
	if err := n.SetParams(vals[:len(vals)-1]); err == nil {
		t.Error("SetParams with a tensor missing was accepted")
	}
	short := slices.Clone(vals)
	short[1] = short[1][1:]
	if err := n.SetParams(short); err == nil || !strings.Contains(err.Error(), n.Adapters[0].Module) {
		t.Errorf("SetParams with a short tensor: %v", err)
	}
	if err := n.SetParams(vals); err != nil {
		t.Fatal(err)
	}
	l, err := n.Export()
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Layers) != len(n.Adapters) {
		t.Fatalf("Export gave %d layers for %d adapters", len(l.Layers), len(n.Adapters))
	}
	path := filepath.Join(t.TempDir(), "net.safetensors")
	if err := WriteKohya(path, l, cfg, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	back, err := Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := NewNetwork(be, fakeLinearsOf(m.Linears()), nc, 99)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Free()
	if err := n2.Load(back); err != nil {
		t.Fatal(err)
	}
	got, _ := n2.Values()
	for i := range vals {
		if !slices.Equal(got[i], vals[i]) {
			t.Fatalf("%s changed through Export, WriteKohya F32, Open and Load", ps[i].Name)
		}
	}

	// Load names what differs
	other := *l
	other.Layers = map[string]*Layer{}
	for k, v := range l.Layers {
		c := *v
		other.Layers[k] = &c
	}
	first := n.Adapters[0]
	key := LayerKey(sdxl.UNet, first.Module)
	c := *other.Layers[key]
	c.Alpha = 3
	other.Layers[key] = &c
	if err := n2.Load(&other); err == nil || !strings.Contains(err.Error(), "scale") || !strings.Contains(err.Error(), key) {
		t.Errorf("Load with another alpha: %v", err)
	}
	delete(other.Layers, key)
	if err := n2.Load(&other); err == nil || !strings.Contains(err.Error(), key) {
		t.Errorf("Load with a layer missing: %v", err)
	}
	other.Layers[key] = l.Layers[key]
	extra := *l.Layers[key]
	extra.Module = "up_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
	other.Layers[extra.Key()] = &extra
	if err := n2.Load(&other); err == nil || !strings.Contains(err.Error(), extra.Key()) {
		t.Errorf("Load with an extra layer: %v", err)
	}
	r2 := NetworkConfig{Rank: 2, Alpha: 4, Targets: nc.Targets}
	n3, err := NewNetwork(be, fakeLinearsOf(m.Linears()), r2, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer n3.Free()
	if err := n3.Load(l); err == nil || !strings.Contains(err.Error(), "rank 3") {
		t.Errorf("Load of rank 3 into rank 2: %v", err)
	}

	// Detach and Attach
	n.Detach()
	for _, a := range n.Adapters {
		if m.Linears()[a.Module].Adapter != nil {
			t.Fatal("Detach left an adapter")
		}
	}
	if err := n.Attach(); err != nil {
		t.Fatal(err)
	}
	if m.Linears()[first.Module].Adapter != first {
		t.Error("Attach did not put the adapters back")
	}
}

// fakeLinearsOf copies linears' sizes into weightless stand-ins, for a second
// network over the same modules.
func fakeLinearsOf(linears map[string]*nn.Linear) map[string]*nn.Linear {
	out := map[string]*nn.Linear{}
	for k, l := range linears {
		out[k] = &nn.Linear{In: l.In, Out: l.Out}
	}
	return out
}

// TestAdapterKeepsOnlyWhatBackwardNeeds: a training forward keeps a view of
// its input (no new memory) and the (rows, rank) hidden, with or without
// dropout, and FreeCache gives it back.
func TestAdapterKeepsOnlyWhatBackwardNeeds(t *testing.T) {
	be := cpu.New()
	const rows, in, out, rank = 50, 40, 30, 4
	for _, p := range []float32{0, 0.5} {
		n, err := NewNetwork(be, fakeLinears(map[string][2]int{"m.l": {in, out}}), NetworkConfig{Rank: rank, Alpha: 4, Targets: []string{"l"}, Dropout: p}, 1)
		if err != nil {
			t.Fatal(err)
		}
		n.Train(true)
		x, _ := be.Upload(make([]float32, rows*in), tensor.Shape{rows, in}, tensor.F32)
		before := be.Memory().InUse
		y, err := n.Adapters[0].Forward(x, true)
		if err != nil {
			t.Fatal(err)
		}
		kept := be.Memory().InUse - before - y.Bytes()
		if want := int64(rows * rank * 4); kept != want {
			t.Errorf("dropout %g: a training forward keeps %d bytes beyond its output, want the (rows, rank) hidden's %d", p, kept, want)
		}
		y.Free()
		n.Adapters[0].FreeCache()
		if got := be.Memory().InUse; got != before {
			t.Errorf("dropout %g: %d bytes in use after FreeCache, %d before the forward", p, got, before)
		}
		x.Free()
		n.Free()
	}
}
