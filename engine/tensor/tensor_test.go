package tensor

import (
	"errors"
	"lorastudio/engine/half"
	"math"
	"strings"
	"testing"
)

type countBuf struct{ released *int }

func (c countBuf) Release() { *c.released++ }

func TestFreeAndViews(t *testing.T) {
	released := 0
	x := New(nil, countBuf{&released}, Shape{2, 3}, F32)
	v, err := x.Reshape(3, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Shape().Equal(Shape{3, 2}) {
		t.Fatalf("view shape %s", v.Shape())
	}
	if err := x.Free(); err != nil {
		t.Fatal(err)
	}
	if released != 0 {
		t.Fatal("buffer released while a view still uses it")
	}
	if _, err := x.Buffer(); !errors.Is(err, ErrFreed) {
		t.Fatalf("Buffer after free: %v", err)
	}
	if err := x.Free(); !errors.Is(err, ErrFreed) || !strings.Contains(err.Error(), "(2, 3)") {
		t.Fatalf("double free: %v", err)
	}
	if _, err := x.Reshape(6); !errors.Is(err, ErrFreed) {
		t.Fatalf("reshape after free: %v", err)
	}
	if err := v.Free(); err != nil || released != 1 {
		t.Fatalf("last free: err %v released %d", err, released)
	}
	if _, err := New(nil, countBuf{&released}, Shape{2, 3}, F32).Reshape(4, -1); !errors.Is(err, ErrShape) {
		t.Fatalf("bad reshape: %v", err)
	}
}

func TestBroadcastShapes(t *testing.T) {
	s, err := BroadcastShapes(Shape{2, 1, 4}, Shape{3, 1})
	if err != nil || !s.Equal(Shape{2, 3, 4}) {
		t.Fatalf("got %s %v", s, err)
	}
	if _, err := BroadcastShapes(Shape{2, 3}, Shape{4}); err == nil {
		t.Fatal("(2,3) and (4) broadcast")
	}
}

func TestMatMulShape(t *testing.T) {
	d, err := MatMulShape(Shape{2, 5, 7}, Shape{3, 7}, Shape{3}, false, true)
	if err != nil || d.M != 10 || d.K != 7 || d.N != 3 || d.Batch != 1 || !d.Out.Equal(Shape{2, 5, 3}) {
		t.Fatalf("folded: %+v %v", d, err)
	}
	d, err = MatMulShape(Shape{2, 7, 5}, Shape{2, 7, 3}, nil, true, false)
	if err != nil || d.M != 5 || d.Batch != 2 || d.SharedB || !d.Out.Equal(Shape{2, 5, 3}) {
		t.Fatalf("batched: %+v %v", d, err)
	}
	if _, err := MatMulShape(Shape{2, 5, 7}, Shape{3, 7, 3}, nil, false, false); err == nil {
		t.Fatal("batch mismatch accepted")
	}
	if _, err := MatMulShape(Shape{5, 7}, Shape{6, 3}, nil, false, false); err == nil {
		t.Fatal("inner mismatch accepted")
	}
}

func TestConv2DShape(t *testing.T) {
	s, err := Conv2DShape(Shape{1, 3, 9, 8}, Shape{4, 3, 3, 3}, nil, Conv2DParams{Stride: 2, PadBottom: 1, PadRight: 1})
	if err != nil || !s.Equal(Shape{1, 4, 4, 4}) {
		t.Fatalf("got %s %v", s, err)
	}
}

func TestHalfRounding(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, // 65520 rounds up to Inf
		{float32(math.Inf(-1)), 0xfc00}, {5.960464477539063e-08, 0x0001}, // smallest subnormal
		{1 + 1.0/2048, 0x3c00},    // exactly half-way, rounds to even (down)
		{1 + 3.0/2048, 0x3c02},    // half-way, rounds to even (up)
		{2.98e-08, 0x0000},        // below half the smallest subnormal
		{6.103515625e-05, 0x0400}, // smallest normal
	}
	for _, c := range cases {
		if got := half.Float32ToFloat16(c.f); got != c.h {
			t.Errorf("half.Float32ToFloat16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	for h := 0; h < 0x10000; h++ {
		f := half.Float16ToFloat32(uint16(h))
		if f != f {
			continue
		}
		if back := half.Float32ToFloat16(f); back != uint16(h) {
			t.Fatalf("round trip %#04x -> %g -> %#04x", h, f, back)
		}
	}
	if half.Float32ToBFloat16(1+1.0/256) != 0x3f80 || half.Float32ToBFloat16(1+3.0/256) != 0x3f82 || half.BFloat16ToFloat32(0x3f80) != 1 {
		t.Fatal("bf16 round to nearest even")
	}
	if v := half.BFloat16ToFloat32(half.Float32ToBFloat16(float32(math.NaN()))); v == v {
		t.Fatal("bf16 NaN lost")
	}
}

func TestOpError(t *testing.T) {
	err := Errorf("conv2d", ErrShape, "x is %s, w is %s", Shape{1, 3, 4, 4}, Shape{2, 5, 3, 3})
	if !errors.Is(err, ErrShape) || errors.Is(err, ErrDType) {
		t.Fatalf("%v wraps the wrong sentinel", err)
	}
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op != "conv2d" {
		t.Fatalf("not an *OpError for conv2d: %#v", err)
	}
	if want := "conv2d: x is (1, 3, 4, 4), w is (2, 5, 3, 3) (shape mismatch)"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
}

func TestDTypeAndShape(t *testing.T) {
	if F32.String() != "f32" || F16.String() != "f16" || BF16.String() != "bf16" || DType(9).Valid() {
		t.Fatal("dtype names")
	}
	if F32.Size() != 4 || F16.Size() != 2 || BF16.Size() != 2 {
		t.Fatal("dtype sizes")
	}
	s := Shape{2, 3, 4}
	if s.Numel() != 24 || s.String() != "(2, 3, 4)" || !s.Equal(Shape{2, 3, 4}) || s.Equal(Shape{2, 3}) {
		t.Fatal("shape basics")
	}
	if st := s.Strides(); st[0] != 12 || st[1] != 4 || st[2] != 1 {
		t.Fatalf("strides %v", st)
	}
	if ax, ok := s.Axis(-1); !ok || ax != 2 {
		t.Fatal("axis -1")
	}
	if _, ok := s.Axis(3); ok {
		t.Fatal("axis 3 of rank 3")
	}
	if c := (Shape{}).Clone(); c == nil || len(c) != 0 {
		t.Fatal("rank-0 clone is nil")
	}
	if p, err := PermuteShape(s, []int{2, 0, 1}); err != nil || !p.Equal(Shape{4, 2, 3}) {
		t.Fatalf("permute %v %v", p, err)
	}
	if inv := InversePerm([]int{2, 0, 1}); inv[0] != 1 || inv[1] != 2 || inv[2] != 0 {
		t.Fatalf("inverse %v", inv)
	}
	if _, _, err := ConcatShape(1, Shape{2, 3}, Shape{3, 3}); err == nil {
		t.Fatal("concat of (2, 3) and (3, 3) on axis 1")
	}
}
