package vae

import (
	"fmt"

	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
)

// Tiling sets the tiles of EncodeTiled and DecodeTiled, as diffusers'
// enable_tiling does: overlapping tiles of SampleSize image pixels
// (SampleSize/Factor latents) that start every (1-Overlap)·SampleSize pixels,
// each blended linearly into its upper and left neighbours over
// Overlap·SampleSize pixels (Overlap·SampleSize/Factor latents when
// encoding), then cropped to the step and joined.
type Tiling struct {
	SampleSize int     // tile_sample_min_size: a tile's side in image pixels
	Overlap    float64 // tile_overlap_factor (diffusers: 0.25)
}

// DefaultTiling returns diffusers' tiling for this VAE: tiles of
// config.sample_size pixels (1024 for SDXL, so a 1024² image is one tile;
// pass SampleSize 512 to bound memory there) overlapping by a quarter.
func (m *AutoencoderKL) DefaultTiling() Tiling {
	return Tiling{SampleSize: m.cfg.SampleSize, Overlap: 0.25}
}

// plan is a tiling in the units of one direction of a pass: tile is a tile's
// side in input units, step the distance between tile starts, blend the
// output overlap, keep the output side kept of each tile, scale the ratio of
// output to input units.
type plan struct {
	tile, step, blend, keep int
	scale                   float64
}

// plans returns the decode (latent → image) and encode (image → latent)
// plans of t, checking that a kept tile covers exactly one step.
func (m *AutoencoderKL) plans(t Tiling) (dec, enc plan, err error) {
	f := m.Factor()
	if t.SampleSize <= 0 || t.SampleSize%f != 0 || t.Overlap < 0 || t.Overlap >= 1 {
		return dec, enc, fmt.Errorf("vae: tiling: sample size %d (want a positive multiple of %d) with overlap %g (want [0, 1))", t.SampleSize, f, t.Overlap)
	}
	s := t.SampleSize
	l := s / f // tile_latent_min_size
	dec = plan{tile: l, step: int(float64(l) * (1 - t.Overlap)), blend: int(float64(s) * t.Overlap), scale: float64(f)}
	dec.keep = s - dec.blend
	enc = plan{tile: s, step: int(float64(s) * (1 - t.Overlap)), blend: int(float64(l) * t.Overlap), scale: 1 / float64(f)}
	enc.keep = l - enc.blend
	if dec.step <= 0 || dec.step*f != dec.keep || enc.step != enc.keep*f {
		return dec, enc, fmt.Errorf("vae: tiling: sample size %d with overlap %g does not give whole tiles of %d latents (pick a multiple of %d with overlap 0.25)", s, t.Overlap, l, 4*f)
	}
	return dec, enc, nil
}

// hostTile is one tile's output in host memory, (N, C, H, W) row-major.
type hostTile struct {
	data       []float32
	n, c, h, w int
}

func (t *hostTile) at(n, c, y, x int) int { return ((n*t.c+c)*t.h+y)*t.w + x }

// blendV blends the bottom of a into the top of b over extent rows, in
// place in b (diffusers' blend_v).
func blendV(a, b *hostTile, extent int) {
	extent = min(a.h, b.h, extent)
	for y := range extent {
		wa := float32(1 - float64(y)/float64(extent))
		wb := float32(float64(y) / float64(extent))
		for n := range b.n {
			for c := range b.c {
				ra, rb := a.at(n, c, a.h-extent+y, 0), b.at(n, c, y, 0)
				for x := range min(a.w, b.w) {
					b.data[rb+x] = a.data[ra+x]*wa + b.data[rb+x]*wb
				}
			}
		}
	}
}

// blendH blends the right of a into the left of b over extent columns, in
// place in b (diffusers' blend_h).
func blendH(a, b *hostTile, extent int) {
	extent = min(a.w, b.w, extent)
	for n := range b.n {
		for c := range b.c {
			for y := range min(a.h, b.h) {
				ra, rb := a.at(n, c, y, a.w-extent), b.at(n, c, y, 0)
				for x := range extent {
					wa := float32(1 - float64(x)/float64(extent))
					wb := float32(float64(x) / float64(extent))
					b.data[rb+x] = a.data[ra+x]*wa + b.data[rb+x]*wb
				}
			}
		}
	}
}

// tiled runs run on every tile of x (N, C, H, W) as p lays them out, one
// tile on the device at a time, and returns the blended output (N, Cout,
// H·scale, W·scale) in host memory with its shape. Only the previous row of
// tiles is kept.
func (m *AutoencoderKL) tiled(x *tensor.Tensor, p plan, run func(tile *tensor.Tensor) (*tensor.Tensor, error)) ([]float32, tensor.Shape, error) {
	b := m.b
	n, hIn, wIn := x.Dim(0), x.Dim(2), x.Dim(3)
	hOut, wOut := int(float64(hIn)*p.scale+0.5), int(float64(wIn)*p.scale+0.5)
	var out []float32
	var cOut int
	var prev []*hostTile
	oy := 0
	for i := 0; i < hIn; i += p.step {
		var row []*hostTile
		ox, kh := 0, 0
		for j := 0; j < wIn; j += p.step {
			t, err := m.runTile(b, x, i, j, p.tile, run)
			if err != nil {
				return nil, nil, err
			}
			if out == nil {
				cOut = t.c
				out = make([]float32, n*cOut*hOut*wOut)
			}
			if i > 0 {
				blendV(prev[len(row)], t, p.blend)
			}
			if j > 0 {
				blendH(row[len(row)-1], t, p.blend)
			}
			row = append(row, t)
			// copy t[:, :, :keep, :keep] to out at (oy, ox)
			kh = min(t.h, p.keep)
			kw := min(t.w, p.keep)
			if oy+kh > hOut || ox+kw > wOut {
				return nil, nil, fmt.Errorf("vae: tiling: tile at (%d, %d) overruns the %dx%d output", i, j, hOut, wOut)
			}
			for nn := range n {
				for c := range cOut {
					for y := range kh {
						src := t.at(nn, c, y, 0)
						dst := ((nn*cOut+c)*hOut+oy+y)*wOut + ox
						copy(out[dst:dst+kw], t.data[src:src+kw])
					}
				}
			}
			ox += kw
		}
		if ox != wOut {
			return nil, nil, fmt.Errorf("vae: tiling: tiles cover %d of %d output columns", ox, wOut)
		}
		oy += kh
		prev = row
	}
	if oy != hOut {
		return nil, nil, fmt.Errorf("vae: tiling: tiles cover %d of %d output rows", oy, hOut)
	}
	return out, tensor.Shape{n, cOut, hOut, wOut}, nil
}

// runTile cuts x[:, :, i:i+size, j:j+size] on the device, runs run on it and
// brings the result to the host, freeing everything on the device.
func (m *AutoencoderKL) runTile(b tensor.Backend, x *tensor.Tensor, i, j, size int, run func(*tensor.Tensor) (*tensor.Tensor, error)) (*hostTile, error) {
	r, err := b.Slice(x, 2, i, min(i+size, x.Dim(2))) // r is (N, C, th, W)
	if err != nil {
		return nil, err
	}
	tile, err := consume(r, func(t *tensor.Tensor) (*tensor.Tensor, error) { return b.Slice(t, 3, j, min(j+size, x.Dim(3))) }) // tile is (N, C, th, tw)
	if err != nil {
		return nil, err
	}
	y, err := consume(tile, run) // y is (N, Cout, th·scale, tw·scale)
	if err != nil {
		return nil, err
	}
	d, err := b.Download(y)
	s := y.Shape()
	y.Free()
	if err != nil {
		return nil, err
	}
	return &hostTile{data: d, n: s[0], c: s[1], h: s[2], w: s[3]}, nil
}

// DecodeTiled is Decode with diffusers' tiled_decode when z is larger than
// one tile (t.SampleSize/Factor latents on a side), else Decode itself.
// Device memory holds one tile's activations at a time; the blended image is
// assembled on the host and returned as a new device tensor. Hook, when set,
// fires for every tile.
func (m *AutoencoderKL) DecodeTiled(z *tensor.Tensor, t Tiling) (*tensor.Tensor, error) {
	dec, _, err := m.plans(t)
	if err != nil {
		return nil, err
	}
	if err := m.checkInput("decode", z, m.cfg.LatentChannels, 1); err != nil {
		return nil, err
	}
	if z.Dim(2) <= dec.tile && z.Dim(3) <= dec.tile {
		return m.Decode(z)
	}
	img, shape, err := m.tiled(z, dec, m.Decode)
	if err != nil {
		return nil, fmt.Errorf("vae: tiled decode: %w", err)
	}
	return m.b.Upload(img, shape, tensor.F32)
}

// EncodeTiled is Encode with diffusers' tiled_encode when x is larger than
// one tile (t.SampleSize pixels on a side), else Encode itself. The blending
// applies to the moments (mean and log-variance before clamping).
func (m *AutoencoderKL) EncodeTiled(x *tensor.Tensor, t Tiling) (*Distribution, error) {
	_, enc, err := m.plans(t)
	if err != nil {
		return nil, err
	}
	if err := m.checkInput("encode", x, m.cfg.InChannels, m.Factor()); err != nil {
		return nil, err
	}
	if x.Dim(2) <= enc.tile && x.Dim(3) <= enc.tile {
		return m.Encode(x)
	}
	moments, shape, err := m.tiled(x, enc, m.encodeMoments)
	if err != nil {
		return nil, fmt.Errorf("vae: tiled encode: %w", err)
	}
	return NewDistribution(moments, shape)
}

// LargestActivation returns the bytes of the largest F32 activation that
// encoding or decoding one (1, C, size, size) image tile of cfg's VAE
// creates: the widest of the tensors at full resolution, where the first
// two block widths live (conv_in's output, the last up block's input after
// the upsampler). The fused attention adds no score matrix.
func LargestActivation(cfg sdxl.VAEConfig, size int) int64 {
	var c int
	for i, ch := range cfg.BlockOutChannels {
		if i < 2 {
			c = max(c, ch)
		}
	}
	c = max(c, cfg.InChannels, cfg.OutChannels)
	return int64(c) * int64(size) * int64(size) * 4
}

// TilingWithin returns diffusers' default tiling for cfg (tiles of
// sample_size, overlap 0.25) with the tile halved until LargestActivation
// fits in maxTensorBytes, e.g. the 128 MiB a single buffer binding allows on
// Mesa's llvmpipe (SDXL: 256-pixel tiles there, 1024 with 1 GiB).
func TilingWithin(cfg sdxl.VAEConfig, maxTensorBytes int64) (Tiling, error) {
	f := 1 << (len(cfg.BlockOutChannels) - 1)
	t := Tiling{SampleSize: cfg.SampleSize, Overlap: 0.25}
	for LargestActivation(cfg, t.SampleSize) > maxTensorBytes {
		if t.SampleSize/2 < 4*f || (t.SampleSize/2)%(4*f) != 0 {
			return t, fmt.Errorf("vae: no tile of at least %d pixels keeps activations within %d bytes", 4*f, maxTensorBytes)
		}
		t.SampleSize /= 2
	}
	return t, nil
}
