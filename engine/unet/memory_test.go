package unet_test

import (
	"math/rand/v2"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/tensor"
)

// TestTrainStepMemory measures the device peak of a training step
// (ForwardTrain + Backward) above the weights and inputs on the tiny fixture
// model at a 64×64 latent (512² images, larger than the goldens'), without
// gradient checkpointing, with it, and with NoInputGrads too (as the
// trainer runs it): checkpointing must hold less than none, NoInputGrads no
// more than without it, and each step must leave nothing behind. The peaks
// are logged (go test -run TrainStepMemory -v).
func TestTrainStepMemory(t *testing.T) {
	root := fixtures.Root(t)
	be := cpu.New()
	m := loadFolder(t, be, root)
	cfg := m.Config()
	const side, tokens = 64, 77
	r := rand.New(rand.NewPCG(3, 4))
	up := func(shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Numel())
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		x, err := be.Upload(v, shape, tensor.F32)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	x := up(1, cfg.InChannels, side, side)
	ctx := up(1, tokens, cfg.CrossAttentionDimAt(0))
	text := up(1, m.TextEmbedsDim())
	px := float32(8 * side)
	ids, err := be.Upload([]float32{px, px, 0, 0, px, px}, tensor.Shape{1, 6}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer tensor.FreeAll(x, ctx, text, ids)
	dout := up(1, cfg.OutChannels, side, side)
	defer dout.Free()

	step := func(checkpoint, noInputGrads bool) int64 {
		m.Checkpoint, m.NoInputGrads = checkpoint, noInputGrads
		defer func() { m.Checkpoint, m.NoInputGrads = false, false }()
		base := be.Memory().InUse
		be.ResetPeak()
		out, err := m.ForwardTrain(x, []float32{500}, ctx, text, ids)
		if err != nil {
			t.Fatal(err)
		}
		ds, dc, err := m.Backward(dout)
		if err != nil {
			t.Fatal(err)
		}
		peak := be.Memory().Peak - base
		if (ds == nil) != noInputGrads || (dc == nil) != noInputGrads {
			t.Errorf("NoInputGrads %v: Backward gave d sample %v, d encoder_hidden_states %v", noInputGrads, ds != nil, dc != nil)
		}
		tensor.FreeAll(out, ds, dc)
		m.FreeCache()
		if left := be.Memory().InUse - base; left != 0 {
			t.Errorf("checkpoint %v, NoInputGrads %v: the step left %d bytes in use", checkpoint, noInputGrads, left)
		}
		return peak
	}
	plain := step(false, false)
	ck := step(true, false)
	lean := step(true, true)
	t.Logf("training step at a %dx%d latent, device peak above the weights: %d KiB without checkpointing, %d KiB with, %d KiB with NoInputGrads too", side, side, plain>>10, ck>>10, lean>>10)
	if ck >= plain {
		t.Errorf("checkpointing holds %d KiB at its peak, no less than %d KiB without", ck>>10, plain>>10)
	}
	if lean > ck {
		t.Errorf("NoInputGrads holds %d KiB at its peak, more than %d KiB without", lean>>10, ck>>10)
	}
}
