package unet_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/tensor"
)

// TestBackwardFiniteDifferences checks Backward's input gradients (sample,
// encoder_hidden_states) and a time-embedding weight gradient (the path
// from every resnet's time_emb_proj back through temb) against central
// differences of L = Σ out·r on CPU, for a sample whose size is not a
// multiple of Factor, and that training frees all it keeps.
func TestBackwardFiniteDifferences(t *testing.T) {
	root := fixtures.Root(t)
	g := openGoldens(t, root)
	be := cpu.New()
	m := loadFolder(t, be, root)
	cs := g.cases[0]
	ts, _ := g.host(t, cs+".timestep")
	// an odd-sized sample (7x10): the downsamplers round up and two
	// upsamplers crop to their skip's size, both axes
	sShape := []int{1, m.Config().InChannels, 7, 10}
	sv := make([]float32, tensor.Shape(sShape).Numel())
	sr := rand.New(rand.NewPCG(8, 9))
	for i := range sv {
		sv[i] = float32(sr.NormFloat64())
	}
	cv, cShape := g.host(t, cs+".encoder_hidden_states")
	text := g.upload(t, be, cs+".text_embeds")
	ids := g.upload(t, be, cs+".time_ids")
	defer tensor.FreeAll(text, ids)
	w := m.TimeEmbedding.Linear2
	w.Trainable = true
	wv, err := be.Download(w.Weight)
	if err != nil {
		t.Fatal(err)
	}
	wShape := w.Weight.Shape()
	setWeight := func(v []float32) {
		nw, err := be.Upload(v, wShape, tensor.F32)
		if err != nil {
			t.Fatal(err)
		}
		w.Weight.Free()
		w.Weight = nw
	}
	setWeight(wv) // F32, so a perturbation is not rounded to fp16

	r := rand.New(rand.NewPCG(5, 6))
	up := func(v []float32, shape []int) *tensor.Tensor {
		x, err := be.Upload(v, shape, tensor.F32)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	// loss returns Σ out·rw in float64 for the given sample and context values
	var rw []float32
	loss := func(s, c []float32) float64 {
		x, ctx := up(s, sShape), up(c, cShape)
		defer tensor.FreeAll(x, ctx)
		out, err := m.Forward(x, ts, ctx, text, ids)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Free()
		v, err := be.Download(out)
		if err != nil {
			t.Fatal(err)
		}
		if rw == nil {
			rw = make([]float32, len(v))
			for i := range rw {
				rw[i] = float32(r.NormFloat64())
			}
		}
		var l float64
		for i := range v {
			l += float64(v[i]) * float64(rw[i])
		}
		return l
	}
	loss(sv, cv) // draws rw

	before := be.Memory().InUse
	x, ctx := up(sv, sShape), up(cv, cShape)
	out, err := m.ForwardTrain(x, ts, ctx, text, ids)
	if err != nil {
		t.Fatal(err)
	}
	dout := up(rw, out.Shape())
	dsample, dctx, err := m.Backward(dout)
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := be.Download(dsample)
	dc, _ := be.Download(dctx)
	dw, _ := be.Download(w.WeightGrad)
	tensor.FreeAll(out, dout, dsample, dctx, x, ctx)
	m.FreeCache()
	w.ZeroGrad()
	if after := be.Memory().InUse; after != before {
		t.Errorf("ForwardTrain, Backward and FreeCache left %d bytes in use", after-before)
	}
	if _, _, err := m.Backward(dout); err == nil {
		t.Error("Backward after FreeCache succeeded")
	}
	// with gradient checkpointing: the same gradients, nothing left behind
	m.Checkpoint = true
	x, ctx = up(sv, sShape), up(cv, cShape)
	out, err = m.ForwardTrain(x, ts, ctx, text, ids)
	if err != nil {
		t.Fatal(err)
	}
	dout = up(rw, out.Shape())
	dsample, dctx, err = m.Backward(dout)
	if err != nil {
		t.Fatal(err)
	}
	ds2, _ := be.Download(dsample)
	dc2, _ := be.Download(dctx)
	dw2, _ := be.Download(w.WeightGrad)
	tensor.FreeAll(out, dout, dsample, dctx, x, ctx)
	m.FreeCache()
	w.ZeroGrad()
	if after := be.Memory().InUse; after != before {
		t.Errorf("a checkpointed ForwardTrain, Backward and FreeCache left %d bytes in use", after-before)
	}
	// without input gradients: the same weight gradient, none for the inputs
	m.NoInputGrads = true
	x, ctx = up(sv, sShape), up(cv, cShape)
	out, err = m.ForwardTrain(x, ts, ctx, text, ids)
	if err != nil {
		t.Fatal(err)
	}
	dout = up(rw, out.Shape())
	dsample, dctx, err = m.Backward(dout)
	if err != nil {
		t.Fatal(err)
	}
	if dsample != nil || dctx != nil {
		t.Errorf("Backward with NoInputGrads gave input gradients (d sample %v, d encoder_hidden_states %v)", dsample != nil, dctx != nil)
	}
	dw3, _ := be.Download(w.WeightGrad)
	tensor.FreeAll(out, dout, dsample, dctx, x, ctx)
	m.FreeCache()
	w.ZeroGrad()
	m.Checkpoint, m.NoInputGrads = false, false
	if after := be.Memory().InUse; after != before {
		t.Errorf("ForwardTrain, Backward (NoInputGrads) and FreeCache left %d bytes in use", after-before)
	}
	for _, c := range []struct {
		what      string
		plain, ck []float32
	}{{"d sample", ds, ds2}, {"d encoder_hidden_states", dc, dc2}, {"d time_embedding.linear_2.weight", dw, dw2}, {"d time_embedding.linear_2.weight (NoInputGrads)", dw, dw3}} {
		if len(c.ck) != len(c.plain) {
			t.Errorf("%s: %d values without Checkpoint, %d with", c.what, len(c.plain), len(c.ck))
			continue
		}
		for i := range c.plain {
			if math.Abs(float64(c.plain[i]-c.ck[i])) > 1e-6*math.Max(1, math.Abs(float64(c.plain[i]))) {
				t.Errorf("%s[%d]: %g without Checkpoint, %g with", c.what, i, c.plain[i], c.ck[i])
				break
			}
		}
	}

	// eps is large enough that float32 rounding of L (about 1e-5) stays
	// small against L's change, small enough for the curvature
	const eps, ctxEps = 1e-2, 5e-2
	check := func(what string, analytic []float32, fd func(i int) float64) {
		t.Helper()
		var scale float64
		best := 0
		for i, v := range analytic {
			if a := math.Abs(float64(v)); a > scale {
				scale, best = a, i
			}
		}
		if scale == 0 {
			t.Fatalf("%s: the gradient is all zeros", what)
		}
		idx := []int{best, r.IntN(len(analytic)), r.IntN(len(analytic)), r.IntN(len(analytic))}
		for _, i := range idx {
			got := fd(i)
			if d := math.Abs(got - float64(analytic[i])); !(d <= 2e-2*scale) {
				t.Errorf("%s[%d]: backward %.6g, finite difference %.6g (|diff| %.3g > 2e-2 × max|grad| %.3g)", what, i, analytic[i], got, d, scale)
			} else {
				t.Logf("%s[%d]: backward %.6g, finite difference %.6g", what, i, analytic[i], got)
			}
		}
	}
	nudge := func(v []float32, i int, d float32) []float32 {
		c := append([]float32(nil), v...)
		c[i] += d
		return c
	}
	check("d sample", ds, func(i int) float64 {
		return (loss(nudge(sv, i, eps), cv) - loss(nudge(sv, i, -eps), cv)) / (2 * eps)
	})
	check("d encoder_hidden_states", dc, func(i int) float64 {
		return (loss(sv, nudge(cv, i, ctxEps)) - loss(sv, nudge(cv, i, -ctxEps))) / (2 * ctxEps)
	})
	check("d time_embedding.linear_2.weight", dw, func(i int) float64 {
		setWeight(nudge(wv, i, eps))
		lp := loss(sv, cv)
		setWeight(nudge(wv, i, -eps))
		lm := loss(sv, cv)
		setWeight(wv)
		return (lp - lm) / (2 * eps)
	})
}
