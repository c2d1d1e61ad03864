package unet

import (
	"math"
	"math/rand/v2"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/nn"
	"lorastudio/engine/tensor"
)

// TestUpsampleToSize checks upsample against torch's nearest interpolation
// to a given size (src = floor(dst · (in/out)), the scale in float32), for
// every output size diffusers can ask for (2H and 2H-1), with an identity
// conv so the output is the interpolation itself; and that its backward is
// the forward's adjoint: <up(x), g> = <x, up'(g)>.
func TestUpsampleToSize(t *testing.T) {
	b := cpu.New()
	const c = 2
	w := make([]float32, c*c*9)
	for i := range c {
		w[(i*c+i)*9+4] = 1 // the centre tap of channel i → i
	}
	src := nn.MapSource{
		"conv.weight": {Shape: []int{c, c, 3, 3}, DType: tensor.F32, Data: w},
		"conv.bias":   {Shape: []int{c}, DType: tensor.F32, Data: make([]float32, c)},
	}
	up, err := nn.LoadUpsample2D(nn.NewLoader(b, src).Root(), c, c)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Free()
	r := rand.New(rand.NewPCG(1, 2))
	blk := &Block{}
	for _, hw := range [][2]int{{3, 5}, {4, 4}, {1, 2}, {7, 6}} {
		h, wd := hw[0], hw[1]
		for _, o := range [][2]int{{2 * h, 2 * wd}, {2*h - 1, 2 * wd}, {2 * h, 2*wd - 1}, {2*h - 1, 2*wd - 1}} {
			oh, ow := o[0], o[1]
			xv := make([]float32, c*h*wd)
			for i := range xv {
				xv[i] = float32(r.NormFloat64())
			}
			x, _ := b.Upload(xv, tensor.Shape{1, c, h, wd}, tensor.F32)
			y, err := blk.upsample(up, x, oh, ow, true)
			if err != nil {
				t.Fatalf("%dx%d → %dx%d: %v", h, wd, oh, ow, err)
			}
			if !y.Shape().Equal(tensor.Shape{1, c, oh, ow}) {
				t.Fatalf("%dx%d → %dx%d: output %s", h, wd, oh, ow, y.Shape())
			}
			yv, _ := b.Download(y)
			sh, sw := float32(h)/float32(oh), float32(wd)/float32(ow)
			for ch := range c {
				for i := range oh {
					for j := range ow {
						si := int(math.Floor(float64(float32(i) * sh)))
						sj := int(math.Floor(float64(float32(j) * sw)))
						want := xv[(ch*h+si)*wd+sj]
						if got := yv[(ch*oh+i)*ow+j]; math.Abs(float64(got-want)) > 1e-6 {
							t.Fatalf("%dx%d → %dx%d: out[%d,%d,%d] %g, torch nearest %g", h, wd, oh, ow, ch, i, j, got, want)
						}
					}
				}
			}
			gv := make([]float32, len(yv))
			var lhs float64
			for i := range gv {
				gv[i] = float32(r.NormFloat64())
				lhs += float64(gv[i]) * float64(yv[i])
			}
			g, _ := b.Upload(gv, tensor.Shape{1, c, oh, ow}, tensor.F32)
			dx, err := blk.upsampleBackward(up, g)
			if err != nil {
				t.Fatal(err)
			}
			dv, _ := b.Download(dx)
			var rhs float64
			for i := range dv {
				rhs += float64(dv[i]) * float64(xv[i])
			}
			if math.Abs(lhs-rhs) > 1e-4*math.Max(1, math.Abs(lhs)) {
				t.Errorf("%dx%d → %dx%d: <up(x), g> %g, <x, up'(g)> %g", h, wd, oh, ow, lhs, rhs)
			}
			tensor.FreeAll(x, y, g, dx)
			up.FreeCache()
		}
	}
	x, _ := b.Zeros(tensor.Shape{1, c, 3, 3}, tensor.F32)
	defer x.Free()
	if y, err := blk.upsample(up, x, 8, 6, false); err == nil {
		y.Free()
		t.Error("upsampling 3x3 to 8x6 succeeded")
	}
}
