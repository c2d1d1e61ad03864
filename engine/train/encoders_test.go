package train

import (
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/nn"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/unet"
)

// asF32 presents a source's weights as stored in F32, as an fp32 checkpoint
// would be.
type asF32 struct{ nn.Source }

func (s asF32) Lookup(name string) ([]int, tensor.DType, bool) {
	shape, _, ok := s.Source.Lookup(name)
	return shape, tensor.F32, ok
}

// TestFrozenWeightsStayFP16 loads the tiny UNet from an "fp32" source
// through fp16Weights: every Linear weight is F16 on the device, and the
// weights equal the fp16 file's (its values are fp16-exact).
func TestFrozenWeightsStayFP16(t *testing.T) {
	src := openTiny(t)
	be := cpu.New()
	plain, err := unet.Load(be, src.Config().UNet, asF32{src.Weights(sdxl.UNet)})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Free()
	m, err := unet.Load(be, src.Config().UNet, fp16Weights{asF32{src.Weights(sdxl.UNet)}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	pl := plain.Linears()
	for name, l := range m.Linears() {
		if l.Weight.DType() != tensor.F16 {
			t.Fatalf("%s: weight is %v on the device, want F16", name, l.Weight.DType())
		}
		if pl[name].Weight.DType() != tensor.F32 {
			t.Fatalf("%s: the plain load kept %v, want F32 (the test's source says F32)", name, pl[name].Weight.DType())
		}
		a, err := be.Download(l.Weight)
		if err != nil {
			t.Fatal(err)
		}
		b, err := be.Download(pl[name].Weight)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s[%d]: %g in fp16, %g in fp32", name, i, a[i], b[i])
			}
		}
	}
}
