package vae

import (
	"fmt"
	"math"

	"lorastudio/engine/rng"
	"lorastudio/engine/tensor"
)

// Distribution is diffusers' DiagonalGaussianDistribution over the latents,
// kept on the host (it is small: 2·latent·h·w values per image). Mean,
// LogVar and Std are (N, latent, h, w) in row-major order.
type Distribution struct {
	Shape  tensor.Shape // (N, latent, h, w)
	Mean   []float32
	LogVar []float32 // clamped to [-30, 20]
	Std    []float32 // exp(0.5·LogVar)
}

// NewDistribution splits moments (N, 2·latent, h, w) into the mean (the first
// latent channels) and the log-variance (the rest, clamped to [-30, 20]).
func NewDistribution(moments []float32, shape tensor.Shape) (*Distribution, error) {
	if len(shape) != 4 || shape[1]%2 != 0 || shape.Numel() != len(moments) {
		return nil, fmt.Errorf("vae: moments %v (%d values): want (N, 2·latent, h, w)", shape, len(moments))
	}
	n, c2, hw := shape[0], shape[1], shape[2]*shape[3]
	c := c2 / 2
	d := &Distribution{Shape: tensor.Shape{n, c, shape[2], shape[3]}}
	size := n * c * hw
	d.Mean, d.LogVar, d.Std = make([]float32, 0, size), make([]float32, 0, size), make([]float32, size)
	for i := range n {
		img := moments[i*c2*hw : (i+1)*c2*hw]
		d.Mean = append(d.Mean, img[:c*hw]...)
		d.LogVar = append(d.LogVar, img[c*hw:]...)
	}
	for i, lv := range d.LogVar {
		lv = min(max(lv, -30), 20)
		d.LogVar[i] = lv
		d.Std[i] = float32(math.Exp(0.5 * float64(lv)))
	}
	return d, nil
}

// Sample returns Mean + Std·ε with ε = torch.randn(shape, generator=g), as
// latent_dist.sample(generator) does, continuing g's stream.
func (d *Distribution) Sample(g *rng.Generator) []float32 {
	out, _ := d.SampleWith(g.Randn(len(d.Mean)))
	return out
}

// SampleWith returns Mean + Std·noise for noise of the distribution's size.
func (d *Distribution) SampleWith(noise []float32) ([]float32, error) {
	if len(noise) != len(d.Mean) {
		return nil, fmt.Errorf("vae: sample: %d noise values for a distribution of %d", len(noise), len(d.Mean))
	}
	out := make([]float32, len(d.Mean))
	for i := range out {
		out[i] = d.Mean[i] + d.Std[i]*noise[i]
	}
	return out, nil
}

// Mode returns the mean (latent_dist.mode()).
func (d *Distribution) Mode() []float32 { return d.Mean }
