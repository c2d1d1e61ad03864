package vae_test

import (
	"math"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/rng"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/demo"
	"lorastudio/engine/tensor"
	"lorastudio/engine/vae"
)

// The tests here check tiled decode and encode against untiled on a VAE whose
// tiles are wide against its receptive field, which the fixture VAE's 8-latent
// tiles are not (TestDecodeTiled there can only log the differences).
//
// largeTileVAE has SDXL's VAE structure (four levels, factor 8, 4 latent
// channels, mid-block attention) at widths [16, 16, 32, 32] with 4 norm
// groups and one resnet per down block, and sample_size 256: tiles of 256
// pixels, 32 latents, overlapping by a quarter (64 pixels, 8 latents). Its
// random weights are demo.Weights (normal, std 1/√fan_in) with the last
// layer of every residual branch — each resnet's conv2 and the attention's
// output projection — scaled by 0.1, the usual small init of residual
// branches (GPT-2, Fixup). With full-scale branches a random decoder's
// effective receptive field spans most of a 32-latent tile, and a random
// attention, near uniform, is a global average no tiling can reproduce;
// with them damped, a zero-padded tile edge disturbs the output strongly
// over about 16 pixels (measured: max|tile − whole| 1.7 then 1.1 per 8 px
// from the edge, of max|img| 3.1), well inside the 64-pixel blend. What
// remains further in, about 3% of the range, is global: each tile's
// GroupNorm statistics (which its disturbed edges shift) and the damped
// attention — as with diffusers' tiling of a trained VAE.
func largeTileVAE(t *testing.T, b tensor.Backend) *vae.AutoencoderKL {
	t.Helper()
	cfg := sdxl.SDXLBaseVAE()
	cfg.BlockOutChannels = []int{16, 16, 32, 32}
	cfg.NormNumGroups = 4
	cfg.LayersPerBlock = 1
	cfg.SampleSize = 256
	ps, err := sdxl.VAEParams(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := demo.Weights(ps, 42)
	for name, ht := range src {
		if strings.HasSuffix(name, "conv2.weight") || strings.HasSuffix(name, "attentions.0.to_out.0.weight") {
			for i := range ht.Data {
				ht.Data[i] *= 0.1
			}
		}
	}
	m, err := vae.Load(b, cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// plane is one (C, H, W) image or latent in host memory.
type plane struct {
	d       []float32
	c, h, w int
}

func (p plane) at(c, y, x int) float64 { return float64(p.d[(c*p.h+y)*p.w+x]) }

func (p plane) maxAbs() float64 {
	var m float64
	for _, v := range p.d {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

// tileDiff compares a tiled result with the untiled one. Tiles start every
// step (output units) and each blends its first blend rows and columns with
// its neighbours'.
type tileDiff struct {
	band, rest float64 // max |tiled − untiled| inside the blend bands and outside them
	mean       float64 // mean |tiled − untiled| over everything
	// seam is the mean step of the difference D = tiled − untiled across
	// the tile joins (where one tile's output ends and the next one's, or
	// its blend, begins) over its mean step between any neighbouring rows or
	// columns: a tile whose edge shows makes D jump there (ratio ≫ 1);
	// blended tiles leave D continuous (about 1 or less).
	seam float64
	// texture is the mean step of D across the joins over the mean step of
	// the untiled result itself: how a seam compares with the content.
	texture float64
}

func compareTiles(tiled, whole plane, step, blend int) tileDiff {
	var r tileDiff
	inBand := func(v int) bool { return v >= step && (v%step) < blend }
	join := func(v int) bool { return v > 0 && (v%step == 0 || (v > step && v%step == blend)) }
	D := func(c, y, x int) float64 { return tiled.at(c, y, x) - whole.at(c, y, x) }
	var sum, joinSum, allSum, imgSum float64
	var n, joinN, allN int
	for c := range whole.c {
		for y := range whole.h {
			for x := range whole.w {
				d := math.Abs(D(c, y, x))
				sum += d
				n++
				if inBand(y) || inBand(x) {
					r.band = max(r.band, d)
				} else {
					r.rest = max(r.rest, d)
				}
				for _, nb := range [][2]int{{y, x - 1}, {y - 1, x}} {
					if nb[0] < 0 || nb[1] < 0 {
						continue
					}
					s := math.Abs(D(c, y, x) - D(c, nb[0], nb[1]))
					allSum += s
					allN++
					imgSum += math.Abs(whole.at(c, y, x) - whole.at(c, nb[0], nb[1]))
					if (nb[1] < x && join(x)) || (nb[0] < y && join(y)) {
						joinSum += s
						joinN++
					}
				}
			}
		}
	}
	r.mean = sum / float64(n)
	r.seam = (joinSum / float64(joinN)) / (allSum / float64(allN))
	r.texture = (joinSum / float64(joinN)) / (imgSum / float64(allN))
	return r
}

func hostOf(t *testing.T, x *tensor.Tensor) plane {
	t.Helper()
	d, err := x.Backend().Download(x)
	if err != nil {
		t.Fatal(err)
	}
	s := x.Shape()
	return plane{d: d, c: s[1], h: s[2], w: s[3]}
}

// peakAbove runs f and returns the backend's peak bytes above those in use before.
func peakAbove(b tensor.Backend, f func()) int64 {
	base := b.Memory().InUse
	b.ResetPeak()
	f()
	return b.Memory().Peak - base
}

// TestDecodeTiledLarge decodes 48×64 latents (a 384×512 image, two tiles by
// three with ragged last ones) untiled, tiled as diffusers does, and in
// plain abutting tiles. Tiled must match untiled closely away from the
// blend bands (where only the global effects above differ), stay within a
// bound inside them and on average, show no step at the joins — while the
// plain tiles, the control, must show one — and need less device memory.
func TestDecodeTiledLarge(t *testing.T) {
	b := cpu.New()
	m := largeTileVAE(t, b)
	tl := m.DefaultTiling()
	lh, lw := 48, 64
	z, err := b.Upload(rng.New(3).Randn(4*lh*lw), tensor.Shape{1, 4, lh, lw}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Free()
	var whole, tiled, plain *tensor.Tensor
	pw := peakAbove(b, func() {
		if whole, err = m.Decode(z); err != nil {
			t.Fatal(err)
		}
	})
	pt := peakAbove(b, func() {
		if tiled, err = m.DecodeTiled(z, tl); err != nil {
			t.Fatal(err)
		}
	})
	if plain, err = m.DecodeTiled(z, vae.Tiling{SampleSize: tl.SampleSize}); err != nil {
		t.Fatal(err)
	}
	defer tensor.FreeAll(whole, tiled, plain)
	if !tiled.Shape().Equal(whole.Shape()) || !plain.Shape().Equal(whole.Shape()) {
		t.Fatalf("tiled %v, plain %v, untiled %v", tiled.Shape(), plain.Shape(), whole.Shape())
	}
	w, td, pd := hostOf(t, whole), hostOf(t, tiled), hostOf(t, plain)
	ref := w.maxAbs()
	step := int(float64(tl.SampleSize) * (1 - tl.Overlap)) // 192 px
	blend := tl.SampleSize - step                          // 64 px
	d := compareTiles(td, w, step, blend)
	pl := compareTiles(pd, w, tl.SampleSize, 0)
	t.Logf("decode (1, 4, %d, %d) → %v, tiles of %d px: max|tiled−untiled| %.3g (%.1f%%) in the blend bands, %.3g (%.1f%%) elsewhere, mean %.3g (%.2f%%) of max|img| %.3g; seam ratio %.2f (joins/everywhere; vs the image's own steps %.3f); plain tiles: max %.3g, mean %.3g, seam ratio %.2f (vs image %.3f); device peak %d B untiled, %d B tiled",
		lh, lw, whole.Shape(), tl.SampleSize, d.band, 100*d.band/ref, d.rest, 100*d.rest/ref, d.mean, 100*d.mean/ref, ref,
		d.seam, d.texture, max(pl.band, pl.rest), pl.mean, pl.seam, pl.texture, pw, pt)
	checkTiles(t, "decode", d, pl, ref)
	if pt >= pw {
		t.Errorf("tiled peak %d B is not below untiled %d B", pt, pw)
	}
}

// TestEncodeTiledLarge encodes a 384×512 image as TestDecodeTiledLarge
// decodes, checking the latent mean.
func TestEncodeTiledLarge(t *testing.T) {
	b := cpu.New()
	m := largeTileVAE(t, b)
	tl := m.DefaultTiling()
	h, w := 384, 512
	img := rng.New(5).Randn(3 * h * w)
	for i := range img {
		img[i] = float32(math.Tanh(float64(img[i]))) // within [-1, 1]
	}
	x, err := b.Upload(img, tensor.Shape{1, 3, h, w}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Free()
	var whole, tiled, plain *vae.Distribution
	pw := peakAbove(b, func() {
		if whole, err = m.Encode(x); err != nil {
			t.Fatal(err)
		}
	})
	pt := peakAbove(b, func() {
		if tiled, err = m.EncodeTiled(x, tl); err != nil {
			t.Fatal(err)
		}
	})
	if plain, err = m.EncodeTiled(x, vae.Tiling{SampleSize: tl.SampleSize}); err != nil {
		t.Fatal(err)
	}
	if !tiled.Shape.Equal(whole.Shape) || !plain.Shape.Equal(whole.Shape) {
		t.Fatalf("tiled %v, plain %v, untiled %v", tiled.Shape, plain.Shape, whole.Shape)
	}
	s := whole.Shape
	wm := plane{d: whole.Mean, c: s[1], h: s[2], w: s[3]}
	tm := plane{d: tiled.Mean, c: s[1], h: s[2], w: s[3]}
	ref := wm.maxAbs()
	lt := tl.SampleSize / m.Factor()            // 32 latents
	step := int(float64(lt) * (1 - tl.Overlap)) // 24
	d := compareTiles(tm, wm, step, lt-step)
	pl := compareTiles(plane{d: plain.Mean, c: s[1], h: s[2], w: s[3]}, wm, lt, 0)
	t.Logf("encode (1, 3, %d, %d) → %v, tiles of %d px: latent mean max|tiled−untiled| %.3g (%.1f%%) in the blend bands, %.3g (%.1f%%) elsewhere, mean %.3g (%.2f%%) of max|mean| %.3g; seam ratio %.2f (vs the latents' own steps %.3f); plain tiles: max %.3g, mean %.3g, seam ratio %.2f (vs latents %.3f); device peak %d B untiled, %d B tiled",
		h, w, s, tl.SampleSize, d.band, 100*d.band/ref, d.rest, 100*d.rest/ref, d.mean, 100*d.mean/ref, ref, d.seam, d.texture,
		max(pl.band, pl.rest), pl.mean, pl.seam, pl.texture, pw, pt)
	checkTiles(t, "encode", d, pl, ref)
	if pt >= pw {
		t.Errorf("tiled peak %d B is not below untiled %d B", pt, pw)
	}
}

// checkTiles asserts the bounds both tests share, relative to ref, the
// largest magnitude of the untiled result.
func checkTiles(t *testing.T, what string, d, plain tileDiff, ref float64) {
	t.Helper()
	if d.rest > 0.08*ref {
		t.Errorf("%s: away from the blend bands tiled differs from untiled by %.3g, %.1f%% of %.3g (want ≤ 8%%)", what, d.rest, 100*d.rest/ref, ref)
	}
	if d.band > 0.12*ref {
		t.Errorf("%s: in the blend bands tiled differs from untiled by %.3g, %.1f%% of %.3g (want ≤ 12%%)", what, d.band, 100*d.band/ref, ref)
	}
	if d.mean > 0.01*ref {
		t.Errorf("%s: tiled differs from untiled by %.3g on average, %.2f%% of %.3g (want ≤ 1%%)", what, d.mean, 100*d.mean/ref, ref)
	}
	if d.seam > 2.5 || d.texture > 0.2 {
		t.Errorf("%s: across tile joins the difference steps %.2f× its mean step, %.3f× the untiled result's: a visible seam", what, d.seam, d.texture)
	}
	// The control: plain abutting tiles have seams, and the measure sees them.
	if plain.seam < 4 || plain.texture < 0.5 {
		t.Errorf("%s: plain abutting tiles step %.2f× (%.3f× the content) at their joins; the measure does not see their seams", what, plain.seam, plain.texture)
	}
}
