package train

import (
	"fmt"
	"math"

	"lorastudio/engine/rng"
	"lorastudio/engine/sched"
)

// objective is the diffusion training objective of a model's noise
// schedule: DDPM noising at a uniform timestep, the epsilon (or
// v-prediction) target, MSE in float32, optionally min-SNR-γ weighted.
type objective struct {
	ddpm       *sched.DDPM
	acp        []float32 // (T,) alphas_cumprod
	prediction string    // epsilon | v_prediction
	gamma      float64   // min-SNR-γ, 0 = off
	offset     float64   // noise offset, 0 = off
}

// newObjective builds the objective from the model's scheduler config.
func newObjective(c sched.Config, gamma, offset float64) (*objective, error) {
	d, err := sched.NewDDPM(c, 0)
	if err != nil {
		return nil, fmt.Errorf("train: noise schedule: %w", err)
	}
	o := &objective{ddpm: d, acp: d.AlphasCumprod(), prediction: c.PredictionType, gamma: gamma, offset: offset}
	switch o.prediction {
	case "", "epsilon":
		o.prediction = "epsilon"
	case "v_prediction":
	default:
		return nil, fmt.Errorf("train: prediction_type %q cannot be trained (epsilon or v_prediction)", c.PredictionType)
	}
	return o, nil
}

// draws is everything random about one micro-batch, drawn from its own
// generator so that it depends on (seed, micro-batch) alone.
type draws struct {
	timesteps []int     // (B,) uniform in [0, T)
	latent    []float32 // (B, C, h, w) standard normal, for sampling the latent distribution
	noise     []float32 // (B, C, h, w) the noise added (noise offset included)
}

// microKey is the generator seed of micro-batch k of a run seeded seed.
// torch's generator takes 32 bits of seed, so the key is folded to a
// well-mixed 32-bit value.
func microKey(seed uint64, k int) uint64 {
	h := splitmix(splitmix(seed^0x747261696e) ^ uint64(k)) // "train"
	return (h ^ h>>32) & math.MaxUint32
}

// splitmix is SplitMix64's finalizer.
func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// draw returns the draws of micro-batch k for b samples of c×h×w latents,
// in the order a diffusers/kohya loop draws them: the latent sample
// (latent_dist.sample()), the noise (torch.randn_like), the noise offset
// (randn(B, C, 1, 1)), then the timesteps (torch.randint(0, T, (B,))).
func (o *objective) draw(seed uint64, k, b, c, h, w int) draws {
	g := rng.New(microKey(seed, k))
	n := b * c * h * w
	d := draws{latent: g.Randn(n), noise: g.Randn(n)}
	if o.offset != 0 {
		off := g.Randn(b * c) // (B, C, 1, 1)
		for i := range off {
			s := float32(o.offset) * off[i]
			plane := d.noise[i*h*w : (i+1)*h*w]
			for j := range plane {
				plane[j] += s
			}
		}
	}
	for _, t := range g.RandInt(0, int64(len(o.acp)), b) {
		d.timesteps = append(d.timesteps, int(t))
	}
	return d
}

// inputs returns the noisy latents the UNet sees and the target it must
// predict, for clean latents x0 (B, C, h, w).
func (o *objective) inputs(x0 []float32, d draws) (noisy, target []float32, err error) {
	if noisy, err = o.ddpm.AddNoise(x0, d.noise, d.timesteps); err != nil {
		return nil, nil, fmt.Errorf("train: %w", err)
	}
	if o.prediction == "v_prediction" {
		if target, err = o.ddpm.Velocity(x0, d.noise, d.timesteps); err != nil {
			return nil, nil, fmt.Errorf("train: %w", err)
		}
		return noisy, target, nil
	}
	return noisy, d.noise, nil
}

// snrWeight is kohya's apply_snr_weight factor of timestep t:
// min(SNR, γ)/SNR for epsilon, min(SNR, γ)/(SNR + 1) for v-prediction,
// with SNR = ᾱₜ/(1 − ᾱₜ); 1 when min-SNR is off.
func (o *objective) snrWeight(t int) float32 {
	if o.gamma == 0 {
		return 1
	}
	a := float64(o.acp[t])
	snr := a / (1 - a)
	w := math.Min(snr, o.gamma)
	if o.prediction == "v_prediction" {
		return float32(w / (snr + 1))
	}
	return float32(w / snr)
}

// loss returns the batch's loss and its gradient with respect to pred: for
// each sample b, mse_b = mean((pred − target)²) over its C·h·w values,
// weighted by snrWeight(t_b); the loss is the mean over the batch divided
// by accum (the micro-batches one optimizer step sums), and
//
//	dpred = 2 · w_b · (pred − target) / (B · C·h·w · accum)
//
// pred and target are (B, C, h, w). Sums run in float64 per sample and the
// result is rounded to float32, as torch's F.mse_loss(..., "mean") on fp32
// gives within a rounding step.
func (o *objective) loss(pred, target []float32, timesteps []int, accum int) (float32, []float32) {
	b := len(timesteps)
	m := len(pred) / b
	grad := make([]float32, len(pred))
	var total float64
	for i, t := range timesteps {
		w := o.snrWeight(t)
		var s float64
		scale := 2 * w / float32(b*m*accum)
		for j := i * m; j < (i+1)*m; j++ {
			d := pred[j] - target[j]
			s += float64(d) * float64(d)
			grad[j] = scale * d
		}
		total += float64(w) * s / float64(m)
	}
	return float32(total / float64(b) / float64(accum)), grad
}
