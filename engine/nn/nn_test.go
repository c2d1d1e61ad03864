package nn

import (
	"fmt"
	"maps"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/tensor"
)

// randSource fills a MapSource with standard-normal parameters scaled by s,
// in sorted name order: Go's map order is random, and a model that changed from run to run made the finite-
// difference tests flaky (about 1 run in 6 drew values where h = 1e-2 is
// too coarse).
func randSource(r *rand.Rand, s float64, shapes map[string][]int) MapSource {
	m := MapSource{}
	for _, name := range slices.Sorted(maps.Keys(shapes)) {
		shape := shapes[name]
		v := make([]float32, tensor.Shape(shape).Numel())
		for i := range v {
			v[i] = float32(s * r.NormFloat64())
		}
		m[name] = HostTensor{Shape: shape, DType: tensor.F32, Data: v}
	}
	return m
}

func TestLoaderStrict(t *testing.T) {
	b := cpu.New()
	r := rand.New(rand.NewSource(1))
	src := randSource(r, 1, map[string][]int{
		"enc.layers.0.fc.weight": {3, 5},
		"enc.layers.0.fc.bias":   {3},
		"enc.layers.1.fc.weight": {3, 4},
		"extra":                  {2},
	})
	l := NewLoader(b, src)
	s := l.Root().Sub("enc").Sub("layers")
	lin, err := LoadLinear(s.Index(0).Sub("fc"), 5, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	defer lin.Free()
	_, err = LoadLinear(s.Index(1).Sub("fc"), 5, 3, false)
	if err == nil || !strings.Contains(err.Error(), "enc.layers.1.fc.weight") || !strings.Contains(err.Error(), "(3, 4)") {
		t.Fatalf("shape mismatch error = %v, want it to name the key and its shape", err)
	}
	_, err = LoadLinear(s.Index(2).Sub("fc"), 5, 3, false)
	if err == nil || !strings.Contains(err.Error(), "missing parameter enc.layers.2.fc.weight") {
		t.Fatalf("missing key error = %v", err)
	}
	if got, want := l.Unused(), []string{"enc.layers.1.fc.weight", "extra"}; !slices.Equal(got, want) {
		t.Fatalf("Unused = %q, want %q", got, want)
	}
	if got := l.Unused("extra", "enc.layers.1.fc.weight"); len(got) != 0 {
		t.Fatalf("Unused with ignores = %q", got)
	}
	if err := l.CheckUnused(); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("CheckUnused = %v", err)
	}
}

func TestPackedWeights(t *testing.T) {
	b := cpu.New()
	src := MapSource{
		"w": {Shape: []int{2, 3}, DType: tensor.F16, Data: []float32{1, 2, 3, 4, 5, 6}},
		"b": {Shape: []int{2}, DType: tensor.F16, Data: []float32{0.5, -1}},
	}
	l := NewLoader(b, src)
	s := l.Root()
	w, err := s.Param("w", tensor.Shape{2, 3}, true)
	if err != nil {
		t.Fatal(err)
	}
	bias, err := s.Param("b", tensor.Shape{2}, false)
	if err != nil {
		t.Fatal(err)
	}
	if w.DType() != tensor.F16 || bias.DType() != tensor.F32 {
		t.Fatalf("weight %s bias %s, want a packed f16 weight and an f32 bias", w, bias)
	}
	lin := &Linear{Weight: w, Bias: bias, In: 3, Out: 2}
	x, _ := b.Upload([]float32{1, 0, -1, 2, 1, 0}, tensor.Shape{2, 3}, tensor.F32)
	y, err := lin.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := b.Download(y)
	// rows of x·wᵀ + b: (1-3, 4-6) + b, (2+2, 8+5) + b
	want := []float32{-1.5, -3, 4.5, 12}
	if !slices.Equal(got, want) {
		t.Fatalf("linear = %v, want %v", got, want)
	}
	if _, err := lin.Forward(y); err == nil {
		t.Fatal("linear accepted an input of the wrong width")
	}
	tensor.FreeAll(x, y)
	lin.Free()
	if m := b.Memory(); m.InUse != 0 {
		t.Fatalf("%d bytes in use after Free", m.InUse)
	}
}

func TestEmbedding(t *testing.T) {
	b := cpu.New()
	src := MapSource{"tok.weight": {Shape: []int{4, 2}, DType: tensor.F16, Data: []float32{0, 1, 2, 3, 4, 5, 6, 7}}}
	e, err := LoadEmbedding(NewLoader(b, src).Root().Sub("tok"), 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	y, err := e.Forward(b, []int{3, 0, 3})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := b.Download(y)
	if want := []float32{6, 7, 0, 1, 6, 7}; !slices.Equal(got, want) || !y.Shape().Equal(tensor.Shape{3, 2}) {
		t.Fatalf("embedding = %v %s, want %v (3, 2)", got, y.Shape(), want)
	}
	if _, err := e.Rows([]int{4}); err == nil {
		t.Fatal("embedding accepted id 4 of a 4-row table")
	}
}

// fdCase is one layer checked against central differences of its own forward.
type fdCase struct {
	name   string
	params map[string][]int
	inputs []tensor.Shape
	// load builds the layer (Trainable) from s.
	load func(s Scope) (any, error)
	// fwd runs the layer's forward (ForwardTrain when train).
	fwd func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error)
	// bwd returns one gradient per input (nil where there is none).
	bwd func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error)
	// grads returns the accumulated parameter gradients by parameter name.
	grads func(m any) map[string]*tensor.Tensor
	free  func(m any)
	// frozen lists parameters that get no gradient.
	frozen []string
}

// lowRank is a LoRA-style Adapter for the tests: scale · up(down(x)).
type lowRank struct {
	down, up *Linear
	scale    float32
}

func (a *lowRank) Forward(x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	f := a.down.Forward
	g := a.up.Forward
	if train {
		f, g = a.down.ForwardTrain, a.up.ForwardTrain
	}
	h, err := f(x)
	if err != nil {
		return nil, err
	}
	y, err := g(h)
	h.Free()
	if err != nil {
		return nil, err
	}
	defer y.Free()
	return x.Backend().Scale(y, a.scale)
}

func (a *lowRank) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	d, err := dout.Backend().Scale(dout, a.scale)
	if err != nil {
		return nil, err
	}
	dh, err := a.up.Backward(d)
	d.Free()
	if err != nil {
		return nil, err
	}
	defer dh.Free()
	return a.down.Backward(dh)
}

func (a *lowRank) FreeCache() { a.down.FreeCache(); a.up.FreeCache() }

func fdCases() []fdCase {
	lin := func(m any) *Linear { return m.(*Linear) }
	linGrads := func(prefix string, l *Linear) map[string]*tensor.Tensor {
		g := map[string]*tensor.Tensor{prefix + "weight": l.WeightGrad}
		if l.Bias != nil {
			g[prefix+"bias"] = l.BiasGrad
		}
		return g
	}
	attn := func(causal bool, ctx int) fdCase {
		names := map[string][]int{}
		kv := 6
		if ctx > 0 {
			kv = ctx
		}
		for _, p := range []string{"q_proj", "k_proj", "v_proj"} {
			in := 6
			if p != "q_proj" {
				in = kv
			}
			names["a."+p+".weight"] = []int{8, in}
			names["a."+p+".bias"] = []int{8}
		}
		names["a.out_proj.weight"] = []int{6, 8}
		names["a.out_proj.bias"] = []int{6}
		inputs := []tensor.Shape{{2, 5, 6}}
		if ctx > 0 {
			inputs = append(inputs, tensor.Shape{2, 3, ctx})
		}
		name := "attention"
		if causal {
			name += "-causal"
		}
		if ctx > 0 {
			name += "-cross"
		}
		return fdCase{
			name: name, params: names, inputs: inputs,
			load: func(s Scope) (any, error) {
				a, err := LoadAttention(s.Sub("a"), CLIPAttentionNames, AttentionConfig{QueryDim: 6, ContextDim: ctx, Heads: 2, HeadDim: 4, QKVBias: true, OutBias: true, Causal: causal})
				if err == nil {
					a.SetTrainable(true)
				}
				return a, err
			},
			fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
				a := m.(*Attention)
				var c *tensor.Tensor
				if len(xs) > 1 {
					c = xs[1]
				}
				if train {
					return a.ForwardTrain(xs[0], c)
				}
				return a.Forward(xs[0], c)
			},
			bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, dc, err := m.(*Attention).Backward(dy)
				return []*tensor.Tensor{dx, dc}, err
			},
			grads: func(m any) map[string]*tensor.Tensor {
				a := m.(*Attention)
				g := linGrads("a.q_proj.", a.Q)
				for k, v := range linGrads("a.k_proj.", a.K) {
					g[k] = v
				}
				for k, v := range linGrads("a.v_proj.", a.V) {
					g[k] = v
				}
				for k, v := range linGrads("a.out_proj.", a.Out) {
					g[k] = v
				}
				return g
			},
			free: func(m any) { m.(*Attention).Free() },
		}
	}
	cases := []fdCase{
		resnetCase(true), resnetCase(false),
		transformerCase(true, 2), transformerCase(false, 1),
		downCase(1), downCase(0), upCase(), tembCase(),
	}
	cases = append(cases, []fdCase{
		{
			// a frozen base with a trainable low-rank adapter: the LoRA case
			name: "linear-adapter", params: map[string][]int{"l.weight": {5, 7}, "l.bias": {5}, "a.down.weight": {2, 7}, "a.up.weight": {5, 2}},
			inputs: []tensor.Shape{{2, 3, 7}},
			load: func(s Scope) (any, error) {
				l, err := LoadLinear(s.Sub("l"), 7, 5, true)
				if err != nil {
					return nil, err
				}
				a := &lowRank{scale: 1.5}
				if a.down, err = LoadLinear(s.Sub("a").Sub("down"), 7, 2, false); err != nil {
					return nil, err
				}
				if a.up, err = LoadLinear(s.Sub("a").Sub("up"), 2, 5, false); err != nil {
					return nil, err
				}
				a.down.Trainable, a.up.Trainable = true, true
				l.Adapter = a
				return l, nil
			},
			fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
				if train {
					return lin(m).ForwardTrain(xs[0])
				}
				return lin(m).Forward(xs[0])
			},
			bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := lin(m).Backward(dy)
				return []*tensor.Tensor{dx}, err
			},
			grads: func(m any) map[string]*tensor.Tensor {
				a := lin(m).Adapter.(*lowRank)
				g := map[string]*tensor.Tensor{"a.down.weight": a.down.WeightGrad, "a.up.weight": a.up.WeightGrad}
				if lin(m).WeightGrad != nil { // a frozen weight must get none: the count check fails
					g["l.weight"] = lin(m).WeightGrad
				}
				return g
			},
			free: func(m any) {
				a := lin(m).Adapter.(*lowRank)
				lin(m).Free()
				a.down.Free()
				a.up.Free()
			},
			frozen: []string{"l.weight", "l.bias"},
		},
		{
			name: "linear", params: map[string][]int{"l.weight": {5, 7}, "l.bias": {5}},
			inputs: []tensor.Shape{{2, 3, 7}},
			load: func(s Scope) (any, error) {
				l, err := LoadLinear(s.Sub("l"), 7, 5, true)
				if err == nil {
					l.Trainable = true
				}
				return l, err
			},
			fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
				if train {
					return lin(m).ForwardTrain(xs[0])
				}
				return lin(m).Forward(xs[0])
			},
			bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := lin(m).Backward(dy)
				return []*tensor.Tensor{dx}, err
			},
			grads: func(m any) map[string]*tensor.Tensor { return linGrads("l.", lin(m)) },
			free:  func(m any) { lin(m).Free() },
		},
		{
			name: "layernorm", params: map[string][]int{"n.weight": {6}, "n.bias": {6}},
			inputs: []tensor.Shape{{3, 6}},
			load: func(s Scope) (any, error) {
				n, err := LoadLayerNorm(s.Sub("n"), 6, 1e-5)
				if err == nil {
					n.Trainable = true
				}
				return n, err
			},
			fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
				if train {
					return m.(*LayerNorm).ForwardTrain(xs[0])
				}
				return m.(*LayerNorm).Forward(xs[0])
			},
			bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := m.(*LayerNorm).Backward(dy)
				return []*tensor.Tensor{dx}, err
			},
			grads: func(m any) map[string]*tensor.Tensor {
				n := m.(*LayerNorm)
				return map[string]*tensor.Tensor{"n.weight": n.WeightGrad, "n.bias": n.BiasGrad}
			},
			free: func(m any) { m.(*LayerNorm).Free() },
		},
		{
			name: "groupnorm", params: map[string][]int{"n.weight": {6}, "n.bias": {6}},
			inputs: []tensor.Shape{{2, 6, 3, 2}},
			load: func(s Scope) (any, error) {
				n, err := LoadGroupNorm(s.Sub("n"), 3, 6, 1e-5)
				if err == nil {
					n.Trainable = true
				}
				return n, err
			},
			fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
				if train {
					return m.(*GroupNorm).ForwardTrain(xs[0])
				}
				return m.(*GroupNorm).Forward(xs[0])
			},
			bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := m.(*GroupNorm).Backward(dy)
				return []*tensor.Tensor{dx}, err
			},
			grads: func(m any) map[string]*tensor.Tensor {
				n := m.(*GroupNorm)
				return map[string]*tensor.Tensor{"n.weight": n.WeightGrad, "n.bias": n.BiasGrad}
			},
			free: func(m any) { m.(*GroupNorm).Free() },
		},
		{
			name: "conv2d", params: map[string][]int{"c.weight": {4, 3, 3, 3}, "c.bias": {4}},
			inputs: []tensor.Shape{{2, 3, 5, 4}},
			load: func(s Scope) (any, error) {
				c, err := LoadConv2d(s.Sub("c"), 3, 4, 3, tensor.ConvParams(2, 1), true)
				if err == nil {
					c.Trainable = true
				}
				return c, err
			},
			fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
				if train {
					return m.(*Conv2d).ForwardTrain(xs[0])
				}
				return m.(*Conv2d).Forward(xs[0])
			},
			bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := m.(*Conv2d).Backward(dy)
				return []*tensor.Tensor{dx}, err
			},
			grads: func(m any) map[string]*tensor.Tensor {
				c := m.(*Conv2d)
				return map[string]*tensor.Tensor{"c.weight": c.WeightGrad, "c.bias": c.BiasGrad}
			},
			free: func(m any) { m.(*Conv2d).Free() },
		},
		attn(false, 0),
		attn(true, 0),
		attn(false, 7),
		{
			name: "mlp", params: map[string][]int{"m.fc1.weight": {9, 4}, "m.fc1.bias": {9}, "m.fc2.weight": {4, 9}, "m.fc2.bias": {4}},
			inputs: []tensor.Shape{{2, 3, 4}},
			load: func(s Scope) (any, error) {
				m, err := LoadMLP(s.Sub("m"), 4, 9, tensor.QuickGELU)
				if err == nil {
					m.SetTrainable(true)
				}
				return m, err
			},
			fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
				if train {
					return m.(*MLP).ForwardTrain(xs[0])
				}
				return m.(*MLP).Forward(xs[0])
			},
			bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := m.(*MLP).Backward(dy)
				return []*tensor.Tensor{dx}, err
			},
			grads: func(m any) map[string]*tensor.Tensor {
				p := m.(*MLP)
				g := linGrads("m.fc1.", p.FC1)
				for k, v := range linGrads("m.fc2.", p.FC2) {
					g[k] = v
				}
				return g
			},
			free: func(m any) { m.(*MLP).Free() },
		},
		{
			name: "feedforward", params: map[string][]int{"f.net.0.proj.weight": {10, 4}, "f.net.0.proj.bias": {10}, "f.net.2.weight": {4, 5}, "f.net.2.bias": {4}},
			inputs: []tensor.Shape{{2, 3, 4}},
			load: func(s Scope) (any, error) {
				f, err := LoadFeedForward(s.Sub("f"), 4, 5)
				if err == nil {
					f.SetTrainable(true)
				}
				return f, err
			},
			fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
				if train {
					return m.(*FeedForward).ForwardTrain(xs[0])
				}
				return m.(*FeedForward).Forward(xs[0])
			},
			bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
				dx, err := m.(*FeedForward).Backward(dy)
				return []*tensor.Tensor{dx}, err
			},
			grads: func(m any) map[string]*tensor.Tensor {
				f := m.(*FeedForward)
				g := linGrads("f.net.0.proj.", f.Proj)
				for k, v := range linGrads("f.net.2.", f.Out) {
					g[k] = v
				}
				return g
			},
			free: func(m any) { m.(*FeedForward).Free() },
		},
	}...)
	return append(cases, variantCases(cases)...)
}

// variantCases are the checkpointed and input-gradient-free variants of
// some of cases: Checkpoint on a resnet and a transformer (the same
// gradients, nothing left behind), a transformer whose cross-attentions
// skip the context gradient (NoContextGrad), and BackwardParams of a conv,
// a frozen linear with an adapter and a timestep embedding (the same
// parameter gradients without an input gradient).
func variantCases(cases []fdCase) []fdCase {
	params := func(f func(m any, dy *tensor.Tensor) error) func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
		return func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
			return []*tensor.Tensor{nil}, f(m, dy)
		}
	}
	var out []fdCase
	for _, c := range cases {
		load, bwd := c.load, c.bwd
		switch c.name {
		case "resnet-temb-shortcut", "transformer2d-linear":
			v := c
			v.name += "-checkpoint"
			v.load = func(s Scope) (any, error) {
				m, err := load(s)
				switch l := m.(type) {
				case *ResnetBlock2D:
					l.Checkpoint = true
				case *Transformer2DModel:
					l.Checkpoint = true
				}
				return m, err
			}
			out = append(out, v)
			if c.name != "transformer2d-linear" {
				continue
			}
			w := v
			w.name += "-no-context-grad"
			w.load = func(s Scope) (any, error) {
				m, err := v.load(s)
				if err == nil {
					for _, blk := range m.(*Transformer2DModel).Blocks {
						blk.Attn2.NoContextGrad = true
					}
				}
				return m, err
			}
			w.bwd = func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
				ds, err := bwd(m, dy)
				if err == nil && ds[1] != nil {
					tensor.FreeAll(ds...)
					return nil, fmt.Errorf("a context gradient with NoContextGrad")
				}
				return ds, err
			}
			out = append(out, w)
		case "conv2d", "linear-adapter", "timestep-embedding":
			v := c
			v.name += "-params-only"
			v.bwd = params(func(m any, dy *tensor.Tensor) error {
				switch l := m.(type) {
				case *Conv2d:
					return l.BackwardParams(dy)
				case *Linear:
					return l.BackwardParams(dy)
				case *TimestepEmbedding:
					return l.BackwardParams(dy)
				}
				return fmt.Errorf("%T has no BackwardParams", m)
			})
			out = append(out, v)
		}
	}
	return out
}

// TestBackwardFiniteDiff checks every layer's input and parameter gradients
// against central differences of its forward, and that a layer returns all
// its memory after Free.
func TestBackwardFiniteDiff(t *testing.T) {
	for _, c := range fdCases() {
		t.Run(c.name, func(t *testing.T) { runFD(t, cpu.New(), c, 12) })
	}
}

// TestBackwardFiniteDiffGL runs the same checks on the GL backend (skipped
// without a GL 4.3 context unless LORASTUDIO_REQUIRE_GL=1).
func TestBackwardFiniteDiffGL(t *testing.T) {
	b := gltest.Backend(t)
	for _, c := range fdCases() {
		t.Run(c.name, func(t *testing.T) { runFD(t, b, c, 4) }) // llvmpipe is slow: fewer probes
	}
}

func runFD(t *testing.T, b tensor.Backend, c fdCase, probes int) {
	base := b.Memory().InUse
	r := rand.New(rand.NewSource(7))
	src := randSource(r, 0.5, c.params)
	xv := make([][]float32, len(c.inputs))
	for i, s := range c.inputs {
		xv[i] = make([]float32, s.Numel())
		for j := range xv[i] {
			xv[i][j] = float32(r.NormFloat64())
		}
	}
	upload := func() []*tensor.Tensor {
		xs := make([]*tensor.Tensor, len(xv))
		for i := range xv {
			x, err := b.Upload(xv[i], c.inputs[i], tensor.F32)
			if err != nil {
				t.Fatal(err)
			}
			xs[i] = x
		}
		return xs
	}
	load := func() any {
		l := NewLoader(b, src)
		m, err := c.load(l.Root())
		if err != nil {
			t.Fatal(err)
		}
		if u := l.Unused(); len(u) > 0 {
			t.Fatalf("unused parameters %q", u)
		}
		return m
	}
	var dyv []float32
	// loss runs a fresh forward and returns sum(y * dy) in float64.
	loss := func(m any) float64 {
		xs := upload()
		y, err := c.fwd(m, xs, false)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := b.Download(y)
		y.Free()
		tensor.FreeAll(xs...)
		var l float64
		for i := range v {
			l += float64(v[i]) * float64(dyv[i])
		}
		return l
	}

	m := load()
	xs := upload()
	y, err := c.fwd(m, xs, true)
	if err != nil {
		t.Fatal(err)
	}
	tensor.FreeAll(xs...) // the layer keeps its own views
	dyv = make([]float32, y.Numel())
	for i := range dyv {
		dyv[i] = float32(r.NormFloat64())
	}
	dy, _ := b.Upload(dyv, y.Shape(), tensor.F32)
	y.Free()
	dxs, err := c.bwd(m, dy)
	if err != nil {
		t.Fatal(err)
	}
	dy.Free()
	const h = 1e-2
	check := func(what string, ana []float32, nudge func(j int, d float32) float64) {
		maxAna := 0.0
		for _, v := range ana {
			maxAna = math.Max(maxAna, math.Abs(float64(v)))
		}
		if maxAna == 0 {
			t.Errorf("%s: gradient is all zeros", what)
		}
		for _, j := range r.Perm(len(ana))[:min(len(ana), probes)] {
			fd := (nudge(j, h) - nudge(j, -h)) / (2 * h)
			if d := math.Abs(fd - float64(ana[j])); d > 2e-3+1e-2*math.Max(math.Abs(fd), 0.1*maxAna) {
				t.Errorf("%s[%d]: backward %.6g, finite difference %.6g (diff %.3g)", what, j, ana[j], fd, d)
			}
		}
	}
	for i, dx := range dxs {
		if dx == nil {
			continue
		}
		if !dx.Shape().Equal(c.inputs[i]) {
			t.Fatalf("d input %d is %s, want %s", i, dx.Shape(), c.inputs[i])
		}
		ana, _ := b.Download(dx)
		check("d input "+string(rune('0'+i)), ana, func(j int, d float32) float64 {
			old := xv[i][j]
			xv[i][j] += d
			l := loss(m)
			xv[i][j] = old
			return l
		})
	}
	grads := c.grads(m)
	if len(grads)+len(c.frozen) != len(c.params) {
		t.Fatalf("%d parameter gradients for %d parameters", len(grads), len(c.params))
	}
	for name, g := range grads {
		if g == nil {
			t.Fatalf("no gradient for %s", name)
		}
		ana, _ := b.Download(g)
		check("d "+name, ana, func(j int, d float32) float64 {
			p := src[name].Data
			old := p[j]
			p[j] += d
			m2 := load()
			l := loss(m2)
			c.free(m2)
			p[j] = old
			return l
		})
	}
	tensor.FreeAll(dxs...)
	c.free(m)
	if mem := b.Memory(); mem.InUse != base {
		t.Errorf("%d bytes in use after freeing the layer, %d before", mem.InUse, base)
	}
}

func TestBackwardWithoutForward(t *testing.T) {
	b := cpu.New()
	src := randSource(rand.New(rand.NewSource(1)), 1, map[string][]int{"weight": {2, 2}})
	l, err := LoadLinear(NewLoader(b, src).Root(), 2, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	dy, _ := b.Zeros(tensor.Shape{1, 2}, tensor.F32)
	if _, err := l.Backward(dy); err == nil || !strings.Contains(err.Error(), "without ForwardTrain") {
		t.Fatalf("backward without forward: %v", err)
	}
	x, _ := b.Zeros(tensor.Shape{1, 2}, tensor.F32)
	y, _ := l.ForwardTrain(x)
	l.FreeCache()
	if _, err := l.Backward(dy); err == nil {
		t.Fatal("backward after FreeCache succeeded")
	}
	tensor.FreeAll(x, y, dy)
	l.Free()
	if l.Weight != nil {
		t.Fatal("Free kept the weight")
	}
	if m := b.Memory(); m.InUse != 0 {
		t.Fatalf("%d bytes in use after Free", m.InUse)
	}
}

// TestGradAccumulatesAndPacked checks that two backward passes add their
// weight gradients, and that a packed F16 weight gives the same gradients
// as the same values in F32.
func TestGradAccumulatesAndPacked(t *testing.T) {
	b := cpu.New()
	r := rand.New(rand.NewSource(3))
	w := make([]float32, 4*3)
	for i := range w {
		w[i] = float32(int(r.NormFloat64()*8)) / 8 // exact in fp16
	}
	grads := map[tensor.DType][]float32{}
	dxs := map[tensor.DType][]float32{}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
		src := MapSource{"weight": {Shape: []int{4, 3}, DType: dt, Data: w}, "bias": {Shape: []int{4}, DType: dt, Data: []float32{1, 2, 3, 4}}}
		l, err := LoadLinear(NewLoader(b, src).Root(), 3, 4, true)
		if err != nil {
			t.Fatal(err)
		}
		if l.Weight.DType() != dt {
			t.Fatalf("weight is %s, want %s", l.Weight.DType(), dt)
		}
		l.Trainable = true
		x, _ := b.Upload([]float32{1, 2, 3, -1, 0.5, 2}, tensor.Shape{2, 3}, tensor.F32)
		dy, _ := b.Upload([]float32{1, 0, -1, 2, 0.5, 1, 1, -2}, tensor.Shape{2, 4}, tensor.F32)
		var once []float32
		for pass := range 2 {
			y, err := l.ForwardTrain(x)
			if err != nil {
				t.Fatal(err)
			}
			dx, err := l.Backward(dy)
			if err != nil {
				t.Fatal(err)
			}
			if pass == 0 {
				once, _ = b.Download(l.WeightGrad)
				dxs[dt], _ = b.Download(dx)
			}
			tensor.FreeAll(y, dx)
		}
		twice, _ := b.Download(l.WeightGrad)
		for i := range once {
			if twice[i] != 2*once[i] {
				t.Fatalf("%s: after two passes dW[%d] = %g, after one %g", dt, i, twice[i], once[i])
			}
		}
		bg, _ := b.Download(l.BiasGrad)
		// twice the column sums of dy
		if want := []float32{3, 2, 0, 0}; !slices.Equal(bg, want) {
			t.Fatalf("%s: accumulated db = %v, want %v", dt, bg, want)
		}
		grads[dt] = once
		tensor.FreeAll(x, dy)
		l.Free()
	}
	if !slices.Equal(grads[tensor.F32], grads[tensor.F16]) || !slices.Equal(dxs[tensor.F32], dxs[tensor.F16]) {
		t.Fatalf("packed weight gradients differ: dW %v vs %v, dx %v vs %v", grads[tensor.F32], grads[tensor.F16], dxs[tensor.F32], dxs[tensor.F16])
	}
	if m := b.Memory(); m.InUse != 0 {
		t.Fatalf("%d bytes in use after Free", m.InUse)
	}
}

// named is one parameter gradient with its name.
type named struct {
	name string
	t    *tensor.Tensor
}

func linearGrads(prefix string, l *Linear) []named {
	g := []named{{prefix + ".weight", l.WeightGrad}}
	if l.Bias != nil {
		g = append(g, named{prefix + ".bias", l.BiasGrad})
	}
	return g
}

func convGrads(prefix string, c *Conv2d) []named {
	return []named{{prefix + ".weight", c.WeightGrad}, {prefix + ".bias", c.BiasGrad}}
}

func gnGrads(prefix string, n *GroupNorm) []named {
	return []named{{prefix + ".weight", n.WeightGrad}, {prefix + ".bias", n.BiasGrad}}
}

func lnGrads(prefix string, n *LayerNorm) []named {
	return []named{{prefix + ".weight", n.WeightGrad}, {prefix + ".bias", n.BiasGrad}}
}

func toMapOf(ns []named) map[string]*tensor.Tensor {
	m := map[string]*tensor.Tensor{}
	for _, n := range ns {
		m[n.name] = n.t
	}
	return m
}

// resnetCase is a ResnetBlock2D with a time embedding and a 1x1 shortcut
// (4 → 6 channels), or without either (6 → 6, the VAE's kind).
func resnetCase(temb bool) fdCase {
	in, out, tc := 4, 6, 5
	if !temb {
		in, tc = 6, 0
	}
	p := map[string][]int{
		"r.norm1.weight": {in}, "r.norm1.bias": {in},
		"r.conv1.weight": {out, in, 3, 3}, "r.conv1.bias": {out},
		"r.norm2.weight": {out}, "r.norm2.bias": {out},
		"r.conv2.weight": {out, out, 3, 3}, "r.conv2.bias": {out},
	}
	inputs := []tensor.Shape{{2, in, 3, 4}}
	name := "resnet"
	if temb {
		p["r.time_emb_proj.weight"], p["r.time_emb_proj.bias"] = []int{out, tc}, []int{out}
		p["r.conv_shortcut.weight"], p["r.conv_shortcut.bias"] = []int{out, in, 1, 1}, []int{out}
		inputs = append(inputs, tensor.Shape{2, tc})
		name += "-temb-shortcut"
	}
	return fdCase{
		name: name, params: p, inputs: inputs,
		load: func(s Scope) (any, error) {
			r, err := LoadResnetBlock2D(s.Sub("r"), ResnetBlock2DConfig{In: in, Out: out, TembChannels: tc, Groups: 2, Eps: 1e-5})
			if err == nil {
				r.SetTrainable(true)
			}
			return r, err
		},
		fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
			var te *tensor.Tensor
			if len(xs) > 1 {
				te = xs[1]
			}
			if train {
				return m.(*ResnetBlock2D).ForwardTrain(xs[0], te)
			}
			return m.(*ResnetBlock2D).Forward(xs[0], te)
		},
		bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
			dx, dt, err := m.(*ResnetBlock2D).Backward(dy)
			return []*tensor.Tensor{dx, dt}, err
		},
		grads: func(m any) map[string]*tensor.Tensor {
			r := m.(*ResnetBlock2D)
			g := append(gnGrads("r.norm1", r.Norm1), convGrads("r.conv1", r.Conv1)...)
			g = append(g, gnGrads("r.norm2", r.Norm2)...)
			g = append(g, convGrads("r.conv2", r.Conv2)...)
			if r.TimeEmbProj != nil {
				g = append(g, linearGrads("r.time_emb_proj", r.TimeEmbProj)...)
			}
			if r.ConvShortcut != nil {
				g = append(g, convGrads("r.conv_shortcut", r.ConvShortcut)...)
			}
			return toMapOf(g)
		},
		free: func(m any) { m.(*ResnetBlock2D).Free() },
	}
}

// transformerCase is a Transformer2DModel (4 channels, 2 heads of 4, context
// width 3) with linear or 1x1-conv projections and depth blocks.
func transformerCase(linear bool, depth int) fdCase {
	const ch, c, ctx = 4, 8, 3 // channels, inner width (2 heads of 4: GL wants head sizes in vec4), context
	p := map[string][]int{"t.norm.weight": {ch}, "t.norm.bias": {ch}}
	if linear {
		p["t.proj_in.weight"], p["t.proj_out.weight"] = []int{c, ch}, []int{ch, c}
	} else {
		p["t.proj_in.weight"], p["t.proj_out.weight"] = []int{c, ch, 1, 1}, []int{ch, c, 1, 1}
	}
	p["t.proj_in.bias"], p["t.proj_out.bias"] = []int{c}, []int{ch}
	for i := range depth {
		bp := "t.transformer_blocks." + string(rune('0'+i)) + "."
		for _, n := range []string{"norm1", "norm2", "norm3"} {
			p[bp+n+".weight"], p[bp+n+".bias"] = []int{c}, []int{c}
		}
		for _, a := range []string{"attn1", "attn2"} {
			kv := c
			if a == "attn2" {
				kv = ctx
			}
			p[bp+a+".to_q.weight"] = []int{c, c}
			p[bp+a+".to_k.weight"] = []int{c, kv}
			p[bp+a+".to_v.weight"] = []int{c, kv}
			p[bp+a+".to_out.0.weight"], p[bp+a+".to_out.0.bias"] = []int{c, c}, []int{c}
		}
		p[bp+"ff.net.0.proj.weight"], p[bp+"ff.net.0.proj.bias"] = []int{8 * c, c}, []int{8 * c}
		p[bp+"ff.net.2.weight"], p[bp+"ff.net.2.bias"] = []int{c, 4 * c}, []int{c}
	}
	name := "transformer2d-conv"
	if linear {
		name = "transformer2d-linear"
	}
	return fdCase{
		name: name, params: p, inputs: []tensor.Shape{{2, ch, 2, 3}, {2, 5, ctx}},
		load: func(s Scope) (any, error) {
			m, err := LoadTransformer2D(s.Sub("t"), Transformer2DConfig{Channels: ch, Heads: 2, HeadDim: 4, Depth: depth, ContextDim: ctx, Groups: 2, LinearProjection: linear, Eps: 1e-5})
			if err == nil {
				m.SetTrainable(true)
			}
			return m, err
		},
		fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
			if train {
				return m.(*Transformer2DModel).ForwardTrain(xs[0], xs[1])
			}
			return m.(*Transformer2DModel).Forward(xs[0], xs[1])
		},
		bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
			dx, dc, err := m.(*Transformer2DModel).Backward(dy)
			return []*tensor.Tensor{dx, dc}, err
		},
		grads: func(m any) map[string]*tensor.Tensor {
			t := m.(*Transformer2DModel)
			g := gnGrads("t.norm", t.Norm)
			if linear {
				g = append(g, linearGrads("t.proj_in", t.ProjIn)...)
				g = append(g, linearGrads("t.proj_out", t.ProjOut)...)
			} else {
				g = append(g, convGrads("t.proj_in", t.ProjInConv)...)
				g = append(g, convGrads("t.proj_out", t.ProjOutCv)...)
			}
			for i, blk := range t.Blocks {
				bp := "t.transformer_blocks." + string(rune('0'+i)) + "."
				g = append(g, lnGrads(bp+"norm1", blk.Norm1)...)
				g = append(g, lnGrads(bp+"norm2", blk.Norm2)...)
				g = append(g, lnGrads(bp+"norm3", blk.Norm3)...)
				for _, a := range []struct {
					n string
					a *Attention
				}{{"attn1", blk.Attn1}, {"attn2", blk.Attn2}} {
					g = append(g, linearGrads(bp+a.n+".to_q", a.a.Q)...)
					g = append(g, linearGrads(bp+a.n+".to_k", a.a.K)...)
					g = append(g, linearGrads(bp+a.n+".to_v", a.a.V)...)
					g = append(g, linearGrads(bp+a.n+".to_out.0", a.a.Out)...)
				}
				g = append(g, linearGrads(bp+"ff.net.0.proj", blk.FF.Proj)...)
				g = append(g, linearGrads(bp+"ff.net.2", blk.FF.Out)...)
			}
			return toMapOf(g)
		},
		free: func(m any) { m.(*Transformer2DModel).Free() },
	}
}

// downCase is a Downsample2D (3 → 5 channels) with padding 1 or 0.
func downCase(padding int) fdCase {
	return fdCase{
		name: "downsample-pad" + string(rune('0'+padding)), params: map[string][]int{"d.conv.weight": {5, 3, 3, 3}, "d.conv.bias": {5}},
		inputs: []tensor.Shape{{2, 3, 5, 4}},
		load: func(s Scope) (any, error) {
			d, err := LoadDownsample2D(s.Sub("d"), 3, 5, padding)
			if err == nil {
				d.Conv.Trainable = true
			}
			return d, err
		},
		fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
			if train {
				return m.(*Downsample2D).ForwardTrain(xs[0])
			}
			return m.(*Downsample2D).Forward(xs[0])
		},
		bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
			dx, err := m.(*Downsample2D).Backward(dy)
			return []*tensor.Tensor{dx}, err
		},
		grads: func(m any) map[string]*tensor.Tensor { return toMapOf(convGrads("d.conv", m.(*Downsample2D).Conv)) },
		free:  func(m any) { m.(*Downsample2D).Free() },
	}
}

// upCase is an Upsample2D (3 → 2 channels).
func upCase() fdCase {
	return fdCase{
		name: "upsample", params: map[string][]int{"u.conv.weight": {2, 3, 3, 3}, "u.conv.bias": {2}},
		inputs: []tensor.Shape{{2, 3, 2, 3}},
		load: func(s Scope) (any, error) {
			u, err := LoadUpsample2D(s.Sub("u"), 3, 2)
			if err == nil {
				u.Conv.Trainable = true
			}
			return u, err
		},
		fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
			if train {
				return m.(*Upsample2D).ForwardTrain(xs[0])
			}
			return m.(*Upsample2D).Forward(xs[0])
		},
		bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
			dx, err := m.(*Upsample2D).Backward(dy)
			return []*tensor.Tensor{dx}, err
		},
		grads: func(m any) map[string]*tensor.Tensor { return toMapOf(convGrads("u.conv", m.(*Upsample2D).Conv)) },
		free:  func(m any) { m.(*Upsample2D).Free() },
	}
}

// tembCase is a TimestepEmbedding (6 → 4).
func tembCase() fdCase {
	return fdCase{
		name:   "timestep-embedding",
		params: map[string][]int{"e.linear_1.weight": {4, 6}, "e.linear_1.bias": {4}, "e.linear_2.weight": {4, 4}, "e.linear_2.bias": {4}},
		inputs: []tensor.Shape{{3, 6}},
		load: func(s Scope) (any, error) {
			e, err := LoadTimestepEmbedding(s.Sub("e"), 6, 4)
			if err == nil {
				e.SetTrainable(true)
			}
			return e, err
		},
		fwd: func(m any, xs []*tensor.Tensor, train bool) (*tensor.Tensor, error) {
			if train {
				return m.(*TimestepEmbedding).ForwardTrain(xs[0])
			}
			return m.(*TimestepEmbedding).Forward(xs[0])
		},
		bwd: func(m any, dy *tensor.Tensor) ([]*tensor.Tensor, error) {
			dx, err := m.(*TimestepEmbedding).Backward(dy)
			return []*tensor.Tensor{dx}, err
		},
		grads: func(m any) map[string]*tensor.Tensor {
			e := m.(*TimestepEmbedding)
			return toMapOf(append(linearGrads("e.linear_1", e.Linear1), linearGrads("e.linear_2", e.Linear2)...))
		},
		free: func(m any) { m.(*TimestepEmbedding).Free() },
	}
}
