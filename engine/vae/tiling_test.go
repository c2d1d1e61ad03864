package vae

import (
	"math"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/rng"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
)

// smoothImage returns an (1, c, h, w) image in [-1, 1] made of slow sines,
// like the goldens' encode input.
func smoothImage(c, h, w int) []float32 {
	out := make([]float32, c*h*w)
	for ch := range c {
		for y := range h {
			for x := range w {
				v := math.Sin(float64(x)*0.07+float64(ch)) * math.Cos(float64(y)*0.05-0.3*float64(ch))
				out[(ch*h+y)*w+x] = float32(0.9 * v)
			}
		}
	}
	return out
}

func upload(t *testing.T, b tensor.Backend, d []float32, s tensor.Shape) *tensor.Tensor {
	t.Helper()
	x, err := b.Upload(d, s, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func download(t *testing.T, x *tensor.Tensor) []float32 {
	t.Helper()
	d, err := x.Backend().Download(x)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestTiledGeometry runs the tiling machinery with pointwise stand-ins for
// the decoder (nearest upsampling by Factor) and the encoder (picking every
// Factor-th pixel): with no cross-pixel mixing, blending equal values must
// reproduce the untiled result, so any misplaced, missing or doubled tile
// shows. Sizes include ragged last tiles.
func TestTiledGeometry(t *testing.T) {
	b := cpu.New()
	m := loadTiny(t, b)
	f := m.Factor()
	dec, enc, err := m.plans(m.DefaultTiling())
	if err != nil {
		t.Fatal(err)
	}
	up := func(x *tensor.Tensor) (*tensor.Tensor, error) {
		y, err := x.Reshape(x.Shape()...)
		for s := 1; s < f && err == nil; s *= 2 {
			y, err = consume(y, b.Upsample2x)
		}
		return y, err
	}
	pick, err := b.Upload([]float32{1}, tensor.Shape{1, 1, 1, 1}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer pick.Free()
	down := func(x *tensor.Tensor) (*tensor.Tensor, error) {
		r, err := x.Reshape(x.Dim(0)*x.Dim(1), 1, x.Dim(2), x.Dim(3))
		if err != nil {
			return nil, err
		}
		y, err := consume(r, func(r *tensor.Tensor) (*tensor.Tensor, error) { return b.Conv2D(r, pick, nil, tensor.ConvParams(f, 0)) })
		if err != nil {
			return nil, err
		}
		return consume(y, func(y *tensor.Tensor) (*tensor.Tensor, error) {
			return y.Reshape(x.Dim(0), x.Dim(1), x.Dim(2)/f, x.Dim(3)/f)
		})
	}
	for _, sz := range [][2]int{{2 * dec.tile, 2 * dec.tile}, {2*dec.tile + 3, dec.tile + 1}, {dec.tile, 3 * dec.tile}} {
		for _, c := range []struct {
			name string
			p    plan
			in   tensor.Shape
			run  func(*tensor.Tensor) (*tensor.Tensor, error)
		}{
			{"decode", dec, tensor.Shape{2, 3, sz[0], sz[1]}, up},
			{"encode", enc, tensor.Shape{2, 3, sz[0] * f, sz[1] * f}, down},
		} {
			x := upload(t, b, rng.New(7).Randn(c.in.Numel()), c.in)
			want, err := c.run(x)
			if err != nil {
				t.Fatal(err)
			}
			got, gs, err := m.tiled(x, c.p, c.run)
			if err != nil {
				t.Fatalf("%s %v: %v", c.name, c.in, err)
			}
			if !gs.Equal(want.Shape()) {
				t.Fatalf("%s %v: tiled shape %v, want %v", c.name, c.in, gs, want.Shape())
			}
			e, _ := maxErr(got, download(t, want))
			if e > 1e-6 {
				t.Errorf("%s %v: tiled differs from untiled by %.3g", c.name, c.in, e)
			}
			tensor.FreeAll(x, want)
		}
	}
}

// TestBlend checks diffusers' linear ramps on a tiny case: row y of the
// overlap takes a·(1-y/e) + b·(y/e).
func TestBlend(t *testing.T) {
	a := &hostTile{data: []float32{10, 10, 10, 10, 20, 20, 30, 30}, n: 1, c: 1, h: 4, w: 2}
	bt := &hostTile{data: []float32{0, 0, 0, 0, 0, 0, 5, 5}, n: 1, c: 1, h: 4, w: 2}
	blendV(a, bt, 2) // rows 0, 1 of b from rows 2, 3 of a with weights 1, 0.5
	want := []float32{20, 20, 15, 15, 0, 0, 5, 5}
	for i := range want {
		if bt.data[i] != want[i] {
			t.Fatalf("blendV: %v, want %v", bt.data, want)
		}
	}
	l := &hostTile{data: []float32{1, 2, 3, 4}, n: 1, c: 1, h: 1, w: 4}
	r := &hostTile{data: []float32{0, 0, 0, 0}, n: 1, c: 1, h: 1, w: 4}
	blendH(l, r, 8) // extent clipped to 4: weights 1, .75, .5, .25 on l's last 4
	want = []float32{1, 1.5, 1.5, 1}
	for i := range want {
		if math.Abs(float64(r.data[i]-want[i])) > 1e-6 {
			t.Fatalf("blendH: %v, want %v", r.data, want)
		}
	}
}

// peakOver runs f and returns the backend's peak bytes above what was in use
// before it.
// smallTiling is the smallest tiling plans accepts for m: tiles of 4
// latents (4·Factor pixels) that start every 3, overlapping by a quarter.
// Small tiles keep the tests fast and give several tiles on the goldens'
// small images.
func smallTiling(m *AutoencoderKL) Tiling {
	return Tiling{SampleSize: 4 * m.Factor(), Overlap: 0.25}
}

func peakOver(b tensor.Backend, f func()) int64 {
	base := b.Memory().InUse
	b.ResetPeak()
	f()
	return b.Memory().Peak - base
}

// TestDecodeTiled decodes latents about three tiles by four on the fixture
// VAE untiled, tiled as diffusers does (overlap 0.25) and cut into plain
// abutting tiles (overlap 0). The tiny VAE's receptive field is wider than
// its 8-latent tiles and its random-weight mid-block attention is global, so
// here no tiling reproduces the untiled image closely (decoding one tile
// alone already differs from the same region of the whole by most of the
// image's range); the placement and blending are checked exactly by
// TestTiledGeometry. This test logs the differences and asserts the device-memory peak is lower tiled, and that a single tile
// is Decode itself.
func TestDecodeTiled(t *testing.T) {
	b := cpu.New()
	m := loadTiny(t, b)
	tl := m.DefaultTiling()
	dec, _, err := m.plans(tl)
	if err != nil {
		t.Fatal(err)
	}
	lh, lw := 2*dec.tile+dec.tile/2, 3*dec.tile
	zs := tensor.Shape{1, m.Config().LatentChannels, lh, lw}
	z := upload(t, b, smoothImage(zs[1], lh, lw), zs) // smooth, so a seam would stand out
	defer z.Free()
	var whole, tiled, plain *tensor.Tensor
	pw := peakOver(b, func() {
		if whole, err = m.Decode(z); err != nil {
			t.Fatal(err)
		}
	})
	pt := peakOver(b, func() {
		if tiled, err = m.DecodeTiled(z, tl); err != nil {
			t.Fatal(err)
		}
	})
	if plain, err = m.DecodeTiled(z, Tiling{SampleSize: tl.SampleSize}); err != nil {
		t.Fatal(err)
	}
	defer tensor.FreeAll(whole, tiled, plain)
	if !tiled.Shape().Equal(whole.Shape()) || !plain.Shape().Equal(whole.Shape()) {
		t.Fatalf("tiled %v, plain %v, untiled %v", tiled.Shape(), plain.Shape(), whole.Shape())
	}
	w, td, pd := download(t, whole), download(t, tiled), download(t, plain)
	e, ref := maxErr(td, w)
	me, mp := meanAbs(td, w), meanAbs(pd, w)
	t.Logf("decode %v → %v, tiles of %d px: blended vs untiled max|diff| %.3g, mean %.3g (plain tiles: mean %.3g; max|img| %.3g); device peak %d B untiled, %d B tiled",
		zs, whole.Shape(), tl.SampleSize, e, me, mp, ref, pw, pt)
	if pt >= pw {
		t.Errorf("tiled peak %d B is not below untiled %d B", pt, pw)
	}
	// one tile: DecodeTiled is Decode
	r, err := b.Slice(z, 2, 0, dec.tile)
	if err != nil {
		t.Fatal(err)
	}
	small, err := consume(r, func(r *tensor.Tensor) (*tensor.Tensor, error) { return b.Slice(r, 3, 0, dec.tile) })
	if err != nil {
		t.Fatal(err)
	}
	defer small.Free()
	a, err := m.Decode(small)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := m.DecodeTiled(small, tl)
	if err != nil {
		t.Fatal(err)
	}
	defer tensor.FreeAll(a, bb)
	if e, _ := maxErr(download(t, bb), download(t, a)); e != 0 {
		t.Errorf("a single-tile DecodeTiled differs from Decode by %g", e)
	}
}

// TestEncodeTiled encodes an image about two tiles by three as
// TestDecodeTiled decodes: shapes agree, the differences of the latent mean
// are logged, and the tiled device-memory peak is lower.
func TestEncodeTiled(t *testing.T) {
	b := cpu.New()
	m := loadTiny(t, b)
	tl := m.DefaultTiling()
	_, enc, err := m.plans(tl)
	if err != nil {
		t.Fatal(err)
	}
	h, w := 2*enc.tile, 3*enc.tile-enc.tile/2
	xs := tensor.Shape{1, m.Config().InChannels, h, w}
	x := upload(t, b, smoothImage(xs[1], h, w), xs)
	defer x.Free()
	var whole, tiled, plain *Distribution
	pw := peakOver(b, func() {
		if whole, err = m.Encode(x); err != nil {
			t.Fatal(err)
		}
	})
	pt := peakOver(b, func() {
		if tiled, err = m.EncodeTiled(x, tl); err != nil {
			t.Fatal(err)
		}
	})
	if plain, err = m.EncodeTiled(x, Tiling{SampleSize: tl.SampleSize}); err != nil {
		t.Fatal(err)
	}
	if !tiled.Shape.Equal(whole.Shape) || !plain.Shape.Equal(whole.Shape) {
		t.Fatalf("tiled %v, plain %v, untiled %v", tiled.Shape, plain.Shape, whole.Shape)
	}
	e, ref := maxErr(tiled.Mean, whole.Mean)
	me, mp := meanAbs(tiled.Mean, whole.Mean), meanAbs(plain.Mean, whole.Mean)
	t.Logf("encode %v → %v, tiles of %d px: blended vs untiled mean max|diff| %.3g, mean %.3g (plain tiles: mean %.3g; max|mean| %.3g); device peak %d B untiled, %d B tiled",
		xs, whole.Shape, tl.SampleSize, e, me, mp, ref, pw, pt)
	if pt >= pw {
		t.Errorf("tiled peak %d B is not below untiled %d B", pt, pw)
	}
}

func meanAbs(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i]) - float64(b[i]))
	}
	return s / float64(len(a))
}

// TestTilingRejectsBadSizes: a tile size the plan cannot cut evenly is an error.
func TestTilingRejectsBadSizes(t *testing.T) {
	m := loadTiny(t, cpu.New())
	f := m.Factor()
	for _, tl := range []Tiling{
		{SampleSize: 0, Overlap: 0.25},
		{SampleSize: 8*f + 1, Overlap: 0.25}, // not a whole number of latents
		{SampleSize: 8 * f, Overlap: 1},      // no step
		{SampleSize: 9 * f, Overlap: 0.25},   // 9 latents: a quarter is not whole
	} {
		if _, _, err := m.plans(tl); err == nil {
			t.Errorf("%+v accepted (factor %d)", tl, f)
		}
	}
	good := Tiling{SampleSize: 16 * f, Overlap: 0.25}
	if _, _, err := m.plans(good); err != nil {
		t.Errorf("%+v refused (factor %d): %v", good, f, err)
	}
}

// TestTilingWithin sizes SDXL's tiles for per-tensor limits.
func TestTilingWithin(t *testing.T) {
	cfg := sdxl.SDXLBaseVAE()
	for _, c := range []struct {
		limit int64
		want  int
	}{{1 << 40, 1024}, {1 << 30, 1024}, {128 << 20, 256}, {(1 << 30) - 1, 512}} {
		tl, err := TilingWithin(cfg, c.limit)
		if err != nil || tl.SampleSize != c.want || tl.Overlap != 0.25 {
			t.Errorf("limit %d: %+v, %v; want tiles of %d", c.limit, tl, err, c.want)
		}
	}
	if _, err := TilingWithin(cfg, 1000); err == nil {
		t.Error("a 1000-byte limit was met")
	}
	// SDXL at 1024: 256 channels (block 1) × 1024² × 4 B
	if got := LargestActivation(cfg, 1024); got != 1<<30 {
		t.Errorf("LargestActivation(SDXL, 1024) = %d, want %d", got, 1<<30)
	}
}

// TestTiledMemoryBounded: the device peak of a tiled decode grows only by the
// size of the (larger) output image, not with the activations.
func TestTiledMemoryBounded(t *testing.T) {
	b := cpu.New()
	m := loadTiny(t, b)
	tl := smallTiling(m)
	var peaks [2]int64
	var outBytes [2]int64
	for i, side := range []int{8, 16} { // latents 8² and 16² in tiles of 4 every 3: 9 and 25 tiles
		zs := tensor.Shape{1, m.Config().LatentChannels, side, side}
		z := upload(t, b, rng.New(5).Randn(zs.Numel()), zs)
		var out *tensor.Tensor
		var err error
		peaks[i] = peakOver(b, func() {
			if out, err = m.DecodeTiled(z, tl); err != nil {
				t.Fatal(err)
			}
		})
		outBytes[i] = out.Bytes()
		tensor.FreeAll(z, out)
	}
	t.Logf("tiled decode peaks: %d B for 8² latents, %d B for 16² (outputs %d B, %d B)", peaks[0], peaks[1], outBytes[0], outBytes[1])
	if peaks[1] > peaks[0]+(outBytes[1]-outBytes[0]) {
		t.Errorf("tiled peak grew from %d B to %d B, more than the output (%d B more)", peaks[0], peaks[1], outBytes[1]-outBytes[0])
	}
}

// literalTiledDecode is diffusers 0.26's AutoencoderKL.tiled_decode
// transcribed line by line (every tile decoded first, then blended in place
// row by row, cropped and concatenated), on the host.
func literalTiledDecode(t *testing.T, m *AutoencoderKL, z *tensor.Tensor, tl Tiling) ([]float32, tensor.Shape) {
	b := m.Backend()
	tileLatent := tl.SampleSize / m.Factor()
	overlapSize := int(float64(tileLatent) * (1 - tl.Overlap))
	blendExtent := int(float64(tl.SampleSize) * tl.Overlap)
	rowLimit := tl.SampleSize - blendExtent
	var rows [][]*hostTile
	for i := 0; i < z.Dim(2); i += overlapSize {
		var row []*hostTile
		for j := 0; j < z.Dim(3); j += overlapSize {
			r, err := b.Slice(z, 2, i, min(i+tileLatent, z.Dim(2)))
			if err != nil {
				t.Fatal(err)
			}
			tile, err := b.Slice(r, 3, j, min(j+tileLatent, z.Dim(3)))
			if err != nil {
				t.Fatal(err)
			}
			dec, err := m.Decode(tile)
			if err != nil {
				t.Fatal(err)
			}
			s := dec.Shape()
			row = append(row, &hostTile{data: download(t, dec), n: s[0], c: s[1], h: s[2], w: s[3]})
			tensor.FreeAll(r, tile, dec)
		}
		rows = append(rows, row)
	}
	// result_rows: crop each blended tile to row_limit and concatenate
	var resultRows [][]*hostTile
	for i, row := range rows {
		var resultRow []*hostTile
		for j, tile := range row {
			if i > 0 {
				blendV(rows[i-1][j], tile, blendExtent)
			}
			if j > 0 {
				blendH(row[j-1], tile, blendExtent)
			}
			h, w := min(tile.h, rowLimit), min(tile.w, rowLimit)
			crop := &hostTile{n: tile.n, c: tile.c, h: h, w: w}
			for n := range tile.n {
				for c := range tile.c {
					for y := range h {
						crop.data = append(crop.data, tile.data[tile.at(n, c, y, 0):tile.at(n, c, y, 0)+w]...)
					}
				}
			}
			resultRow = append(resultRow, crop)
		}
		resultRows = append(resultRows, resultRow)
	}
	n, c := resultRows[0][0].n, resultRows[0][0].c
	var H, W int
	for _, r := range resultRows {
		H += r[0].h
	}
	for _, tile := range resultRows[0] {
		W += tile.w
	}
	out := make([]float32, n*c*H*W)
	y0 := 0
	for _, r := range resultRows {
		x0 := 0
		for _, tile := range r {
			for nn := range n {
				for cc := range c {
					for y := range tile.h {
						copy(out[((nn*c+cc)*H+y0+y)*W+x0:], tile.data[tile.at(nn, cc, y, 0):tile.at(nn, cc, y, 0)+tile.w])
					}
				}
			}
			x0 += tile.w
		}
		y0 += r[0].h
	}
	return out, tensor.Shape{n, c, H, W}
}

// TestDecodeTiledLiteral: DecodeTiled, which keeps one row of tiles, gives
// exactly what diffusers' two-pass tiled_decode gives with the real decoder,
// ragged last tiles included.
func TestDecodeTiledLiteral(t *testing.T) {
	b := cpu.New()
	m := loadTiny(t, b)
	tl := smallTiling(m)
	zs := tensor.Shape{1, m.Config().LatentChannels, 11, 7} // tiles of 4 latents every 3: ragged edges
	z := upload(t, b, rng.New(9).Randn(zs.Numel()), zs)
	defer z.Free()
	want, ws := literalTiledDecode(t, m, z, tl)
	got, err := m.DecodeTiled(z, tl)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Free()
	if !got.Shape().Equal(ws) {
		t.Fatalf("DecodeTiled %v, literal %v", got.Shape(), ws)
	}
	if e, _ := maxErr(download(t, got), want); e != 0 {
		t.Errorf("DecodeTiled differs from the literal tiled_decode by %g", e)
	}
}
