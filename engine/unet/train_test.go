package unet_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/tensor"
)

// testLoRA is a LoRA side path, scale · B(A x), written here from its
// definition so the UNet's backward is judged on its own.
type testLoRA struct {
	a, b   *tensor.Tensor // (r, in), (out, r)
	scale  float32
	da, db *tensor.Tensor // accumulated gradients
	x, h   *tensor.Tensor // kept by a training forward: input (..., in), A x (..., r)
}

func (l *testLoRA) Forward(x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	be := x.Backend()
	h, err := tensor.Linear(be, x, l.a, nil) // (..., r)
	if err != nil {
		return nil, err
	}
	y, err := tensor.Linear(be, h, l.b, nil) // (..., out)
	if err != nil {
		h.Free()
		return nil, err
	}
	defer y.Free()
	if train {
		l.FreeCache()
		if l.x, err = x.Reshape(x.Shape()...); err != nil {
			h.Free()
			return nil, err
		}
		l.h = h
	} else {
		h.Free()
	}
	return be.Scale(y, l.scale)
}

func (l *testLoRA) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	be := dout.Backend()
	ds, err := be.Scale(dout, l.scale) // (..., out)
	if err != nil {
		return nil, err
	}
	defer ds.Free()
	dh, db, _, err := tensor.LinearBackward(be, ds, l.h, l.b, tensor.GradX|tensor.GradW) // (..., r), (out, r)
	if err != nil {
		return nil, err
	}
	defer dh.Free()
	dx, da, _, err := tensor.LinearBackward(be, dh, l.x, l.a, tensor.GradX|tensor.GradW) // (..., in), (r, in)
	if err != nil {
		db.Free()
		return nil, err
	}
	l.da, l.db = add(be, l.da, da), add(be, l.db, db)
	return dx, nil
}

func add(be tensor.Backend, acc, g *tensor.Tensor) *tensor.Tensor {
	if acc == nil {
		return g
	}
	s, err := be.Binary(tensor.Add, acc, g)
	if err != nil {
		panic(err) // test helper: shapes are fixed
	}
	tensor.FreeAll(acc, g)
	return s
}

func (l *testLoRA) FreeCache() {
	tensor.FreeAll(l.x, l.h)
	l.x, l.h = nil, nil
}

// TestLoRATrainStep runs the golden LoRA training step 0 (the fixture's
// peft LoRA at its rank and alpha, fixtures.LoRA): the forward in
// train mode, the MSE loss against the noise and the backward through the
// whole UNet, and compares noise_pred, the loss and all the LoRA
// gradients with diffusers + peft's.
// With Checkpoint the same step must give the same numbers while holding
// less memory at its peak; with NoInputGrads too (as the trainer runs it)
// the same LoRA gradients, no input gradients, and no more memory.
func TestLoRATrainStep(t *testing.T) {
	var plain, ck, lean int64
	t.Run("cpu", func(t *testing.T) { plain = loraTrainStep(t, cpu.New(), false, false) })
	t.Run("cpu-checkpoint", func(t *testing.T) { ck = loraTrainStep(t, cpu.New(), true, false) })
	t.Run("cpu-checkpoint-no-input-grads", func(t *testing.T) { lean = loraTrainStep(t, cpu.New(), true, true) })
	if plain > 0 && ck > 0 && lean > 0 {
		if ck >= plain || lean > ck {
			t.Errorf("peak memory of a training step: %d bytes without Checkpoint, %d with, %d with NoInputGrads too", plain, ck, lean)
		} else {
			t.Logf("peak memory of a training step above the weights: %d KiB without Checkpoint, %d KiB with, %d KiB with NoInputGrads too", plain>>10, ck>>10, lean>>10)
		}
	}
	t.Run("gl", func(t *testing.T) { loraTrainStep(t, gltest.Backend(t), false, false) })
	t.Run("gl-checkpoint", func(t *testing.T) { loraTrainStep(t, gltest.Backend(t), true, false) })
	t.Run("gl-checkpoint-no-input-grads", func(t *testing.T) { loraTrainStep(t, gltest.Backend(t), true, true) })
}

// loraTrainStep runs and checks the step (with Checkpoint and NoInputGrads
// as given); it returns the peak device memory of forward + backward above
// what was in use before them.
func loraTrainStep(t *testing.T, be tensor.Backend, checkpoint, noInputGrads bool) int64 {
	root := fixtures.Root(t)
	f, err := safetensors.Open(filepath.Join(root, "goldens", "lora", "train_step.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &goldens{f: f}
	m := loadFolder(t, be, root)
	linears := m.Linears()
	loras := map[string]*testLoRA{}
	info := fixtures.LoRA(t)
	scale := float32(info.Scale()) // peft's lora_alpha / r
	for _, n := range f.Names() {
		module, ok := strings.CutPrefix(n, "param0.")
		if !ok {
			continue
		}
		module, ok = strings.CutSuffix(module, ".lora_A.default.weight")
		if !ok {
			continue
		}
		l, ok := linears[module]
		if !ok {
			t.Fatalf("the LoRA targets %s, which Linears lacks", module)
		}
		lo := &testLoRA{
			a:     g.upload(t, be, "param0."+module+".lora_A.default.weight"),
			b:     g.upload(t, be, "param0."+module+".lora_B.default.weight"),
			scale: scale,
		}
		if r := lo.a.Dim(0); r != info.R {
			t.Fatalf("%s: lora_A has rank %d, adapter_config.json says r %d", module, r, info.R)
		}
		loras[module] = lo
		l.Adapter = lo
	}
	defer func() {
		for module, lo := range loras {
			linears[module].Adapter = nil
			tensor.FreeAll(lo.a, lo.b, lo.da, lo.db)
			lo.FreeCache()
		}
	}()
	if len(loras) == 0 {
		t.Fatal("train_step holds no param0.*.lora_A.default.weight")
	}
	const p = "step0."
	x := g.upload(t, be, p+"noisy_latents")
	ctx := g.upload(t, be, p+"prompt_embeds")
	text := g.upload(t, be, p+"pooled_prompt_embeds")
	ids := g.upload(t, be, p+"add_time_ids")
	noise := g.upload(t, be, p+"noise")
	defer tensor.FreeAll(x, ctx, text, ids, noise)
	ts, _ := g.host(t, p+"timesteps")

	m.Checkpoint, m.NoInputGrads = checkpoint, noInputGrads
	base := be.Memory().InUse
	be.ResetPeak()
	pred, err := m.ForwardTrain(x, ts, ctx, text, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer pred.Free()
	defer m.FreeCache()
	v, err := be.Download(pred)
	if err != nil {
		t.Fatal(err)
	}
	ref, shape := g.host(t, p+"noise_pred")
	compare(t, p+"noise_pred (train mode, LoRA) on "+be.Name(), v, pred.Shape(), ref, shape)

	loss, err := be.MSELoss(pred, noise)
	if err != nil {
		t.Fatal(err)
	}
	defer loss.Free()
	lv, err := be.Download(loss)
	if err != nil {
		t.Fatal(err)
	}
	refLoss, _ := g.host(t, p+"loss")
	if rel := math.Abs(float64(lv[0]-refLoss[0])) / math.Abs(float64(refLoss[0])); !(rel <= 1e-5) {
		t.Errorf("loss %.8g, golden %.8g (relative %.3g > 1e-5)", lv[0], refLoss[0], rel)
	} else {
		t.Logf("loss %.8g, golden %.8g (relative %.3g)", lv[0], refLoss[0], rel)
	}
	one, err := be.Upload([]float32{1}, tensor.Shape{1}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Free()
	dpred, err := be.MSELossBackward(one, pred, noise)
	if err != nil {
		t.Fatal(err)
	}
	defer dpred.Free()
	dsample, dctx, err := m.Backward(dpred)
	if err != nil {
		t.Fatal(err)
	}
	peak := be.Memory().Peak - base
	switch {
	case noInputGrads && (dsample != nil || dctx != nil):
		t.Errorf("Backward with NoInputGrads gave input gradients (d sample %v, d encoder_hidden_states %v)", dsample != nil, dctx != nil)
	case !noInputGrads && (dsample == nil || dctx == nil):
		t.Fatalf("Backward gave no input gradient (d sample %v, d encoder_hidden_states %v)", dsample != nil, dctx != nil)
	case !noInputGrads && (!dsample.Shape().Equal(x.Shape()) || !dctx.Shape().Equal(ctx.Shape())):
		t.Errorf("Backward gave d sample %s and d encoder_hidden_states %s, want %s and %s", dsample.Shape(), dctx.Shape(), x.Shape(), ctx.Shape())
	}
	tensor.FreeAll(dsample, dctx)

	// grads <= 1e-4 · max|ref grad| per tensor (the README's tolerance)
	var worstRel float64
	var worstName string
	for module, lo := range loras {
		for _, side := range []struct {
			name string
			got  *tensor.Tensor
		}{{"lora_A", lo.da}, {"lora_B", lo.db}} {
			name := p + "grad." + module + "." + side.name + ".default.weight"
			ref, shape := g.host(t, name)
			if side.got == nil {
				t.Errorf("%s: no gradient reached the LoRA", name)
				continue
			}
			got, err := be.Download(side.got)
			if err != nil {
				t.Fatal(err)
			}
			if !side.got.Shape().Equal(shape) {
				t.Errorf("%s: shape %s, golden %v", name, side.got.Shape(), shape)
				continue
			}
			var worst, refMax float64
			for i := range ref {
				refMax = math.Max(refMax, math.Abs(float64(ref[i])))
				if d := math.Abs(float64(got[i] - ref[i])); d > worst || math.IsNaN(d) {
					worst = d
				}
			}
			rel := worst / math.Max(refMax, 1e-30)
			if !(rel <= 1e-4) {
				t.Errorf("%s on %s: max|got-ref| %.3g, %.3g of max|ref| %.3g (> 1e-4)", name, be.Name(), worst, rel, refMax)
			}
			if rel > worstRel || math.IsNaN(rel) {
				worstRel, worstName = rel, name
			}
		}
	}
	t.Logf("%d LoRA gradients on %s (checkpoint %v, no input grads %v): worst %s at %.3g of its max|ref|", 2*len(loras), be.Name(), checkpoint, noInputGrads, worstName, worstRel)
	return peak
}
