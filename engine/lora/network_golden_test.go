package lora

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

// TestNetworkGoldenTrainStep runs the golden LoRA training step 0 (diffusers
// + peft) with the production Network on the fixture UNet: rank, alpha and
// targets from the fixture's adapter_config.json (checked against
// lora_info.json), the param0 weights set through SetParams on one run and
// through Open(peft folder) + Load on another, and compares the loss
// (relative 1e-5) and every LoRA gradient (1e-4 of its tensor's max|ref|,
// the goldens README's tolerances) on the CPU, with and without gradient
// checkpointing, and on GL.
func TestNetworkGoldenTrainStep(t *testing.T) {
	t.Run("cpu-setparams", func(t *testing.T) { networkTrainStep(t, cpu.New(), false, false) })
	t.Run("cpu-load-checkpoint", func(t *testing.T) { networkTrainStep(t, cpu.New(), true, true) })
	t.Run("gl-load", func(t *testing.T) { networkTrainStep(t, gltest.Backend(t), true, false) })
}

func networkTrainStep(t *testing.T, be tensor.Backend, viaLoad, checkpoint bool) {
	root := fixtures.Root(t)
	info := fixtures.LoRA(t)
	f, err := safetensors.Open(filepath.Join(root, "goldens", "lora", "train_step.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	host := func(name string) ([]float32, []int) {
		t.Helper()
		ti, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("golden %s missing", name)
		}
		v, err := f.Float32(name)
		if err != nil {
			t.Fatalf("golden %s: %v", name, err)
		}
		return v, ti.Shape
	}
	upload := func(name string) *tensor.Tensor {
		t.Helper()
		v, shape := host(name)
		x, err := be.Upload(v, shape, tensor.F32)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}

	m, cfg := loadTinyUNet(t, be)
	// NetworkConfig's scale is alpha/rank; rsLoRA's alpha/√r is the same
	// scale with alpha·√r.
	nc := NetworkConfig{Rank: info.R, Alpha: float32(info.Scale() * float64(info.R)), Targets: info.TargetModules, Init: InitGaussian}
	n, err := NewNetwork(be, m.Linears(), nc, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Free()
	if 2*len(n.Adapters) != info.NTensors {
		t.Fatalf("the network has %d adapters; lora_info.json counts %d LoRA tensors", len(n.Adapters), info.NTensors)
	}
	if viaLoad {
		l, err := Open(filepath.Join(root, "lora", "peft"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Load(l); err != nil {
			t.Fatal(err)
		}
	} else {
		var values [][]float32
		for _, p := range n.Params() {
			module, side := strings.TrimSuffix(p.Name, ".lora_down"), "lora_A"
			if strings.HasSuffix(p.Name, ".lora_up") {
				module, side = strings.TrimSuffix(p.Name, ".lora_up"), "lora_B"
			}
			v, _ := host("param0." + module + "." + side + ".default.weight")
			values = append(values, v)
		}
		if err := n.SetParams(values); err != nil {
			t.Fatal(err)
		}
	}
	n.Train(true)
	n.SetDropoutSeed(0, 0)

	const p = "step0."
	x := upload(p + "noisy_latents")
	ctx := upload(p + "prompt_embeds")
	text := upload(p + "pooled_prompt_embeds")
	ids := upload(p + "add_time_ids")
	noise := upload(p + "noise")
	defer tensor.FreeAll(x, ctx, text, ids, noise)
	ts, _ := host(p + "timesteps")

	m.Checkpoint = checkpoint
	pred, err := m.ForwardTrain(x, ts, ctx, text, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer pred.Free()
	defer m.FreeCache()
	loss, err := be.MSELoss(pred, noise)
	if err != nil {
		t.Fatal(err)
	}
	defer loss.Free()
	lv, err := be.Download(loss)
	if err != nil {
		t.Fatal(err)
	}
	refLoss, _ := host(p + "loss")
	if rel := math.Abs(float64(lv[0]-refLoss[0])) / math.Abs(float64(refLoss[0])); !(rel <= 1e-5) {
		t.Errorf("loss %.8g, golden %.8g (relative %.3g > 1e-5)", lv[0], refLoss[0], rel)
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
	tensor.FreeAll(dsample, dctx)

	grads, err := n.Grads()
	if err != nil {
		t.Fatal(err)
	}
	var worstRel float64
	var worstName string
	for i, prm := range n.Params() {
		if prm.Grad == nil {
			t.Errorf("%s: no gradient reached it", prm.Name)
			continue
		}
		module, side := strings.TrimSuffix(prm.Name, ".lora_down"), "lora_A"
		if strings.HasSuffix(prm.Name, ".lora_up") {
			module, side = strings.TrimSuffix(prm.Name, ".lora_up"), "lora_B"
		}
		name := p + "grad." + module + "." + side + ".default.weight"
		ref, shape := host(name)
		if !prm.Grad.Shape().Equal(shape) {
			t.Errorf("%s: gradient shape %s, golden %v", prm.Name, prm.Grad.Shape(), shape)
			continue
		}
		var worst, refMax float64
		for j := range ref {
			refMax = math.Max(refMax, math.Abs(float64(ref[j])))
			if d := math.Abs(float64(grads[i][j] - ref[j])); d > worst || math.IsNaN(d) {
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
	t.Logf("loss %.8g (golden %.8g); %d gradients on %s (checkpoint %v): worst %s at %.3g of its max|ref|",
		lv[0], refLoss[0], len(grads), be.Name(), checkpoint, worstName, worstRel)
}
