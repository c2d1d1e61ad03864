package train

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sched"
)

func testObjective(t *testing.T, prediction string, gamma, offset float64) *objective {
	t.Helper()
	c := sched.SDXLConfig()
	c.PredictionType = prediction
	o, err := newObjective(c, gamma, offset)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestDraws checks the per-micro-batch draws: a pure function of (seed, k),
// timesteps within the schedule, and the noise offset a constant per
// (sample, channel) plane added to the same noise.
func TestDraws(t *testing.T) {
	o := testObjective(t, "epsilon", 0, 0)
	a, b := o.draw(7, 3, 2, 4, 8, 8), o.draw(7, 3, 2, 4, 8, 8)
	for i := range a.noise {
		if a.noise[i] != b.noise[i] || a.latent[i] != b.latent[i] {
			t.Fatal("the same (seed, micro-batch) drew different values")
		}
	}
	if c := o.draw(7, 4, 2, 4, 8, 8); c.noise[0] == a.noise[0] && c.timesteps[0] == a.timesteps[0] {
		t.Error("micro-batches 3 and 4 drew the same")
	}
	for k := range 50 {
		for _, ts := range o.draw(1, k, 4, 4, 2, 2).timesteps {
			if ts < 0 || ts >= len(o.acp) {
				t.Fatalf("timestep %d outside [0, %d)", ts, len(o.acp))
			}
		}
	}
	off := testObjective(t, "epsilon", 0, 0.1).draw(7, 3, 2, 4, 8, 8)
	for p := range 2 * 4 {
		d0 := off.noise[p*64] - a.noise[p*64]
		if d0 == 0 {
			t.Errorf("plane %d: no offset added", p)
		}
		for i := p * 64; i < (p+1)*64; i++ {
			if d := off.noise[i] - a.noise[i]; math.Abs(float64(d-d0)) > 1e-6 {
				t.Fatalf("plane %d: offset %g at %d, %g at its start", p, d, i, d0)
			}
		}
	}
}

// TestSNRWeight is kohya's apply_snr_weight: min(SNR, γ)/SNR for epsilon,
// min(SNR, γ)/(SNR+1) for v-prediction, SNR = ᾱ/(1−ᾱ).
func TestSNRWeight(t *testing.T) {
	eps, v := testObjective(t, "epsilon", 5, 0), testObjective(t, "v_prediction", 5, 0)
	for _, ts := range []int{0, 10, 100, 500, 999} {
		a := float64(eps.acp[ts])
		snr := a / (1 - a)
		we, wv := math.Min(snr, 5)/snr, math.Min(snr, 5)/(snr+1)
		if got := eps.snrWeight(ts); math.Abs(float64(got)-we) > 1e-6*we {
			t.Errorf("epsilon t %d: weight %g, want %g", ts, got, we)
		}
		if got := v.snrWeight(ts); math.Abs(float64(got)-wv) > 1e-6*wv {
			t.Errorf("v t %d: weight %g, want %g", ts, got, wv)
		}
	}
	if w := testObjective(t, "epsilon", 0, 0).snrWeight(10); w != 1 {
		t.Errorf("min-SNR off: weight %g", w)
	}
	if _, err := newObjective(sched.Config{NumTrainTimesteps: 1000, BetaStart: 0.00085, BetaEnd: 0.012, BetaSchedule: "scaled_linear", PredictionType: "sample"}, 0, 0); err == nil {
		t.Error("prediction_type sample was accepted")
	}
}

// TestTargets: epsilon trains towards the noise, v-prediction towards
// √ᾱ·noise − √(1−ᾱ)·x0; the noisy input is √ᾱ·x0 + √(1−ᾱ)·noise.
func TestTargets(t *testing.T) {
	x0 := []float32{0.5, -1, 2, 0.25}
	d := draws{timesteps: []int{300}, noise: []float32{1, 0.5, -0.5, 2}}
	for _, pred := range []string{"epsilon", "v_prediction"} {
		o := testObjective(t, pred, 0, 0)
		noisy, target, err := o.inputs(x0, d)
		if err != nil {
			t.Fatal(err)
		}
		a := float64(o.acp[300])
		for i := range x0 {
			wantNoisy := math.Sqrt(a)*float64(x0[i]) + math.Sqrt(1-a)*float64(d.noise[i])
			wantTarget := float64(d.noise[i])
			if pred == "v_prediction" {
				wantTarget = math.Sqrt(a)*float64(d.noise[i]) - math.Sqrt(1-a)*float64(x0[i])
			}
			if math.Abs(float64(noisy[i])-wantNoisy) > 1e-6 || math.Abs(float64(target[i])-wantTarget) > 1e-6 {
				t.Errorf("%s [%d]: noisy %g target %g, want %g %g", pred, i, noisy[i], target[i], wantNoisy, wantTarget)
			}
		}
	}
}

// TestLossGradient compares the analytic gradient of the (min-SNR weighted,
// accumulated) loss with central differences.
func TestLossGradient(t *testing.T) {
	o := testObjective(t, "epsilon", 5, 0)
	pred := []float32{0.3, -0.2, 1.1, 0.7, -0.9, 0.05}
	target := []float32{0.1, 0.4, 1.0, -0.3, -1.2, 0.5}
	ts := []int{20, 800} // one weighted below 1, one at 1
	loss, grad := o.loss(pred, target, ts, 2)
	const h = 1e-3
	for i := range pred {
		p := append([]float32(nil), pred...)
		p[i] += h
		lp, _ := o.loss(p, target, ts, 2)
		p[i] -= 2 * h
		lm, _ := o.loss(p, target, ts, 2)
		fd := (float64(lp) - float64(lm)) / (2 * h)
		if math.Abs(fd-float64(grad[i])) > 1e-3*math.Max(1, math.Abs(fd)) {
			t.Errorf("d loss / d pred[%d] = %g, finite difference %g", i, grad[i], fd)
		}
	}
	var want float64
	for b, tt := range ts {
		var s float64
		for j := b * 3; j < (b+1)*3; j++ {
			d := float64(pred[j] - target[j])
			s += d * d
		}
		want += float64(o.snrWeight(tt)) * s / 3
	}
	want /= 2 * 2
	if math.Abs(float64(loss)-want) > 1e-6 {
		t.Errorf("loss %g, want %g", loss, want)
	}
}

// TestObjectiveMatchesTheGoldenStep runs the objective on the fixture's
// golden training steps: DDPM noising of the golden latents with the
// model's scheduler equals diffusers' noisy_latents, and the loss of the
// golden noise_pred against the noise equals F.mse_loss's.
func TestObjectiveMatchesTheGoldenStep(t *testing.T) {
	root := fixtures.Root(t)
	sc, err := sched.LoadConfig(filepath.Join(root, "model", "scheduler", "scheduler_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := newObjective(sc, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(root, "goldens", "lora", "train_step.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	get := func(name string) []float32 {
		v, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, step := range []string{"step0.", "step1."} {
		raw, err := f.Bytes(step + "timesteps")
		if err != nil {
			t.Fatal(err)
		}
		var ts []int
		for i := 0; i+8 <= len(raw); i += 8 {
			ts = append(ts, int(binary.LittleEndian.Uint64(raw[i:])))
		}
		x0, noise := get(step+"latents"), get(step+"noise")
		noisy, target, err := o.inputs(x0, draws{timesteps: ts, noise: noise})
		if err != nil {
			t.Fatal(err)
		}
		want := get(step + "noisy_latents")
		for i := range want {
			if d := math.Abs(float64(noisy[i] - want[i])); d > 1e-6*math.Max(1, math.Abs(float64(want[i]))) {
				t.Fatalf("%snoisy_latents[%d] = %g, diffusers %g", step, i, noisy[i], want[i])
			}
		}
		loss, _ := o.loss(get(step+"noise_pred"), target, ts, 1)
		wantLoss := get(step + "loss")[0]
		if math.Abs(float64(loss-wantLoss)) > 1e-5*math.Abs(float64(wantLoss)) {
			t.Errorf("%sloss %g, F.mse_loss %g", step, loss, wantLoss)
		}
	}
}
