package engine_test

import (
	"fmt"
	"log"
	"math/rand"

	"lorastudio/engine/cpu"
	"lorastudio/engine/tensor"
)

// Example trains a tiny two-layer network, Linear → SiLU → Linear with an
// MSE loss, by plain gradient descent: every op's forward, then every
// backward in reverse, then the update — on any tensor.Backend (here the CPU;
// device.Open("gl") gives the GPU one).
func Example() {
	var b tensor.Backend = cpu.New()
	defer b.Close()
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	r := rand.New(rand.NewSource(1))
	randn := func(scale float32, shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Numel())
		for i := range v {
			v[i] = scale * float32(r.NormFloat64())
		}
		t, err := b.Upload(v, shape, tensor.F32)
		check(err)
		return t
	}

	// The data: 32 points x (32, 4) and targets y (32, 1) = sum of x's row.
	x := randn(1, 32, 4)
	xs, err := b.Download(x)
	check(err)
	ys := make([]float32, 32)
	for i := range ys {
		ys[i] = xs[4*i] + xs[4*i+1] + xs[4*i+2] + xs[4*i+3]
	}
	y, err := b.Upload(ys, tensor.Shape{32, 1}, tensor.F32)
	check(err)

	// The parameters, shaped like torch.nn.Linear: weight (out, in), bias (out).
	w1, b1 := randn(0.5, 16, 4), randn(0, 16)
	w2, b2 := randn(0.25, 1, 16), randn(0, 1)
	params := []**tensor.Tensor{&w1, &b1, &w2, &b2}
	one, err := b.Upload([]float32{1}, tensor.Shape{1}, tensor.F32) // dloss/dloss
	check(err)

	var first, last float32
	for step := 0; step < 300; step++ {
		// Forward.
		h, err := tensor.Linear(b, x, w1, b1) // h is (32, 16)
		check(err)
		a, err := b.Activation(h, tensor.SiLU) // a is (32, 16)
		check(err)
		p, err := tensor.Linear(b, a, w2, b2) // p is (32, 1)
		check(err)
		loss, err := b.MSELoss(p, y) // loss is (1)
		check(err)
		lv, err := b.Download(loss)
		check(err)
		if step == 0 {
			first = lv[0]
		}
		last = lv[0]

		// Backward, in reverse.
		dp, err := b.MSELossBackward(one, p, y) // dp is (32, 1)
		check(err)
		da, dw2, db2, err := tensor.LinearBackward(b, dp, a, w2, tensor.GradAll)
		check(err)
		dh, err := b.ActivationBackward(da, h, tensor.SiLU) // dh is (32, 16)
		check(err)
		_, dw1, db1, err := tensor.LinearBackward(b, dh, x, w1, tensor.GradW|tensor.GradB)
		check(err)

		// Update: param -= 0.1 * grad.
		for i, g := range []*tensor.Tensor{dw1, db1, dw2, db2} {
			step, err := b.Scale(g, 0.1)
			check(err)
			updated, err := b.Binary(tensor.Sub, *params[i], step)
			check(err)
			check(tensor.FreeAll((*params[i]), step))
			*params[i] = updated
		}
		check(tensor.FreeAll(h, a, p, loss, dp, da, dw2, db2, dh, dw1, db1))
	}
	fmt.Println("w1 is", w1.Shape(), "w2 is", w2.Shape())
	fmt.Println("loss fell by over 90%:", last < first/10)
	check(tensor.FreeAll(x, y, one, w1, b1, w2, b2))
	fmt.Println("bytes still in use:", b.Memory().InUse)
	// Output:
	// w1 is (16, 4) w2 is (1, 16)
	// loss fell by over 90%: true
	// bytes still in use: 0
}
