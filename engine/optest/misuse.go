package optest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"lorastudio/engine/tensor"
)

// Foreign gives RunMisuse a second backend whose tensors b must refuse.
func Foreign(other tensor.Backend) Option {
	return func(o *options) { o.foreign = other }
}

// RunMisuse checks that bad calls return clear errors: each names the op and
// the shapes or dtypes involved and wraps the right sentinel, no call panics,
// and no failed call leaks memory.
func RunMisuse(t *testing.T, b tensor.Backend, opts ...Option) {
	o := parse(opts)
	up := func(dt tensor.DType, shape ...int) *tensor.Tensor {
		t.Helper()
		v, err := b.Upload(make([]float32, tensor.Shape(shape).Numel()), shape, dt)
		if err != nil {
			t.Fatalf("upload %v: %v", shape, err)
		}
		return v
	}
	a23, b45 := up(tensor.F32, 2, 3), up(tensor.F32, 4, 5)
	x16 := up(tensor.F16, 1, 3, 5, 5)
	w := up(tensor.F32, 4, 3, 3, 3)
	x := up(tensor.F32, 2, 6, 5)
	q, k := up(tensor.F32, 1, 2, 7, 8), up(tensor.F32, 1, 2, 5, 4)
	freed := up(tensor.F32, 3, 3)
	if err := freed.Free(); err != nil {
		t.Fatal(err)
	}
	defer tensor.FreeAll(a23, b45, x16, w, x, q, k)

	cases := []struct {
		name  string
		call  func() error
		kind  error
		words []string // each must appear in the message
	}{
		{"matmul inner mismatch", func() error { _, err := b.MatMul(a23, b45, nil, false, false); return err },
			tensor.ErrShape, []string{"matmul", "(2, 3)", "(4, 5)"}},
		{"matmul f16 activation", func() error { _, err := b.MatMul(x16, b45, nil, false, false); return err },
			tensor.ErrDType, []string{"matmul", "f16"}},
		{"conv2d f16 input", func() error { _, err := b.Conv2D(x16, w, nil, tensor.ConvParams(1, 1)); return err },
			tensor.ErrDType, []string{"conv2d", "f16"}},
		{"conv2d channel mismatch", func() error { _, err := b.Conv2D(x, w, nil, tensor.ConvParams(1, 1)); return err },
			tensor.ErrShape, []string{"conv2d", "(2, 6, 5)"}},
		{"add no broadcast", func() error { _, err := b.Binary(tensor.Add, a23, b45); return err },
			tensor.ErrShape, []string{"add", "(2, 3)", "(4, 5)"}},
		{"groupnorm groups", func() error { _, err := b.GroupNorm(x, nil, nil, 4, 1e-5); return err },
			tensor.ErrShape, []string{"groupnorm", "(2, 6, 5)", "4 groups"}},
		{"layernorm f16", func() error { _, err := b.LayerNorm(x16, nil, nil, 1e-5); return err },
			tensor.ErrDType, []string{"layernorm", "f16"}},
		{"attention head dims", func() error { _, _, err := b.Attention(q, k, k, 1, false); return err },
			tensor.ErrShape, []string{"attention", "(1, 2, 7, 8)", "(1, 2, 5, 4)"}},
		{"softmax after free", func() error { _, err := b.Softmax(freed); return err },
			tensor.ErrFreed, []string{"softmax", "(3, 3)"}},
		{"download after free", func() error { _, err := b.Download(freed); return err },
			tensor.ErrFreed, []string{"download", "(3, 3)"}},
		{"double free", func() error { return freed.Free() },
			tensor.ErrFreed, []string{"free", "(3, 3)"}},
		{"reshape after free", func() error { _, err := freed.Reshape(9); return err },
			tensor.ErrFreed, []string{"reshape"}},
		{"upload count", func() error { _, err := b.Upload(make([]float32, 5), tensor.Shape{2, 3}, tensor.F32); return err },
			tensor.ErrShape, []string{"upload", "(2, 3)"}},
		{"permute bad perm", func() error { _, err := b.Permute(a23, 0, 0); return err },
			tensor.ErrArg, []string{"permute"}},
		{"slice out of range", func() error { _, err := b.Slice(a23, 1, 2, 5); return err },
			tensor.ErrArg, []string{"slice", "(2, 3)"}},
		{"concat mismatch", func() error { _, err := b.Concat(0, a23, b45); return err },
			tensor.ErrShape, []string{"concat", "(2, 3)", "(4, 5)"}},
		{"mse shapes", func() error { _, err := b.MSELoss(a23, b45); return err },
			tensor.ErrShape, []string{"mse", "(2, 3)", "(4, 5)"}},
		{"upsample rank", func() error { _, err := b.Upsample2x(a23); return err },
			tensor.ErrShape, []string{"upsample", "(2, 3)"}},
		{"matmul backward dout", func() error {
			_, _, _, err := b.MatMulBackward(a23, a23, b45, false, false, tensor.GradAll)
			return err
		}, tensor.ErrShape, []string{"matmul backward"}},
	}
	if o.foreign != nil {
		f, err := o.foreign.Upload([]float32{1, 2, 3}, tensor.Shape{3}, tensor.F32)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Free()
		cases = append(cases, struct {
			name  string
			call  func() error
			kind  error
			words []string
		}{"foreign tensor", func() error { _, err := b.Scale(f, 2); return err }, tensor.ErrBackend, []string{"scale", "(3)"}})
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			before := b.Memory().InUse
			err := func() (err error) {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
						t.Errorf("%s panicked: %v", c.name, r)
					}
				}()
				return c.call()
			}()
			if err == nil {
				t.Fatalf("%s: no error", c.name)
			}
			if !errors.Is(err, c.kind) {
				t.Errorf("%s: %q does not wrap %q", c.name, err, c.kind)
			}
			for _, w := range c.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %q does not mention %q", c.name, err, w)
				}
			}
			if after := b.Memory().InUse; after != before {
				t.Errorf("%s: memory in use %d -> %d bytes after a failed call", c.name, before, after)
			}
		})
	}
}
