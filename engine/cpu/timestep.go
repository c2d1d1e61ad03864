package cpu

import (
	"math"

	"lorastudio/engine/tensor"
)

// TimestepEmbedding is diffusers' get_timestep_embedding (scale 1,
// max_period 10000), computed in float32 steps like torch: t is (N), out is (N, dim).
func (b *Backend) TimestepEmbedding(t *tensor.Tensor, dim int, flipSinToCos bool, freqShift float32) (*tensor.Tensor, error) {
	const op = "timestep embedding"
	v, err := b.f32s(op, []string{"t"}, t)
	if err != nil {
		return nil, err
	}
	if t.Rank() != 1 {
		return nil, tensor.Errorf(op, tensor.ErrShape, "t is %s, want (N)", t.Shape())
	}
	half := dim / 2
	if dim < 2 || float32(half)-freqShift == 0 {
		return nil, tensor.Errorf(op, tensor.ErrArg, "dim %d with freq shift %g", dim, freqShift)
	}
	n := t.Dim(0)
	out, ov, err := b.newF32(op, tensor.Shape{n, dim})
	if err != nil {
		return nil, err
	}
	freqs := TimestepFreqs(half, freqShift)
	for i, tv := range v[0] {
		row := ov[i*dim : (i+1)*dim]
		for j, f := range freqs {
			arg := float64(tv * f) // rounded to float32 like torch
			s, c := float32(math.Sin(arg)), float32(math.Cos(arg))
			if flipSinToCos {
				row[j], row[half+j] = c, s
			} else {
				row[j], row[half+j] = s, c
			}
		}
	}
	return out, nil
}

// TimestepFreqs returns the half frequencies of the timestep embedding as
// torch computes them in float32: exp(-ln(10000) * i / (half - shift)).
func TimestepFreqs(half int, shift float32) []float32 {
	f := make([]float32, half)
	ln := float32(-math.Log(10000))
	for i := range f {
		e := ln * float32(i) / (float32(half) - shift)
		f[i] = float32(math.Exp(float64(e)))
	}
	return f
}
