package gl

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/tensor"
)

// pair is one input uploaded to both backends.
type pair struct{ g, c *tensor.Tensor }

// TestEdgesAgainstCPU complements the optest table with the shapes that
// stress this backend's own machinery: GEMM tiles crossed (N = 70 > 64),
// every transpose with shared and batched f16 weights, attention over more
// than one 64-query work group, asymmetric conv padding with bf16 weights,
// and backward ops the table reaches only through composition. It logs the
// max-abs error of each op.
func TestEdgesAgainstCPU(t *testing.T) {
	g := newTestBackend(t)
	c := cpu.New()
	rng := rand.New(rand.NewSource(1))
	up := func(s tensor.Shape, dt tensor.DType) pair {
		v := make([]float32, s.Numel())
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		a, err := g.Upload(v, s, dt)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := c.Upload(v, s, dt)
		return pair{a, b}
	}
	cmp := func(name string, a, b *tensor.Tensor, err1, err2 error) {
		t.Helper()
		if err1 != nil || err2 != nil {
			t.Errorf("%s: gl err %v, cpu err %v", name, err1, err2)
			return
		}
		if a == nil || b == nil {
			if (a == nil) != (b == nil) {
				t.Errorf("%s: nil mismatch", name)
			}
			return
		}
		if !a.Shape().Equal(b.Shape()) {
			t.Errorf("%s: shape %s vs %s", name, a.Shape(), b.Shape())
			return
		}
		x, _ := g.Download(a)
		y, _ := c.Download(b)
		var maxAbs, maxRef float64
		for i := range x {
			maxAbs = math.Max(maxAbs, math.Abs(float64(x[i]-y[i])))
			maxRef = math.Max(maxRef, math.Abs(float64(y[i])))
		}
		if maxAbs > 1e-4*math.Max(1, maxRef) || math.IsNaN(maxAbs) {
			t.Errorf("%s: max abs err %g (max ref %g)", name, maxAbs, maxRef)
		} else {
			t.Logf("%s: max abs err %g", name, maxAbs)
		}
	}
	x := up(tensor.Shape{3, 5, 7}, tensor.F32)
	y := up(tensor.Shape{5, 1}, tensor.F32)
	for _, op := range []tensor.BinaryOp{tensor.Add, tensor.Sub, tensor.Mul} {
		a, e1 := g.Binary(op, x.g, y.g)
		b, e2 := c.Binary(op, x.c, y.c)
		cmp("binary "+op.String(), a, b, e1, e2)
		d := up(a.Shape(), tensor.F32)
		a1, a2, e1 := g.BinaryBackward(op, d.g, x.g, y.g, tensor.GradAll)
		b1, b2, e2 := c.BinaryBackward(op, d.c, x.c, y.c, tensor.GradAll)
		cmp("binary backward da "+op.String(), a1, b1, e1, e2)
		cmp("binary backward db "+op.String(), a2, b2, e1, e2)
	}
	for _, f := range []tensor.Act{tensor.SiLU, tensor.GELU, tensor.GELUTanh, tensor.QuickGELU} {
		a, e1 := g.Activation(x.g, f)
		b, e2 := c.Activation(x.c, f)
		cmp("act "+f.String(), a, b, e1, e2)
		a, e1 = g.ActivationBackward(x.g, x.g, f)
		b, e2 = c.ActivationBackward(x.c, x.c, f)
		cmp("act backward "+f.String(), a, b, e1, e2)
	}
	z := up(tensor.Shape{3, 4, 10}, tensor.F32)
	a, e1 := g.GEGLU(z.g, tensor.GELU)
	b, e2 := c.GEGLU(z.c, tensor.GELU)
	cmp("geglu", a, b, e1, e2)
	d := up(tensor.Shape{3, 4, 5}, tensor.F32)
	a, e1 = g.GEGLUBackward(d.g, z.g, tensor.GELU)
	b, e2 = c.GEGLUBackward(d.c, z.c, tensor.GELU)
	cmp("geglu backward", a, b, e1, e2)
	a, e1 = g.Permute(z.g, 2, 0, 1)
	b, e2 = c.Permute(z.c, 2, 0, 1)
	cmp("permute", a, b, e1, e2)
	a, e1 = g.Slice(z.g, 2, 3, 8)
	b, e2 = c.Slice(z.c, 2, 3, 8)
	cmp("slice", a, b, e1, e2)
	a, e1 = g.SliceBackward(d.g, tensor.Shape{3, 4, 9}, 2, 2)
	b, e2 = c.SliceBackward(d.c, tensor.Shape{3, 4, 9}, 2, 2)
	cmp("slice backward", a, b, e1, e2)
	a, e1 = g.Concat(2, z.g, d.g)
	b, e2 = c.Concat(2, z.c, d.c)
	cmp("concat", a, b, e1, e2)
	a, e1 = g.BroadcastTo(y.g, tensor.Shape{2, 5, 3})
	b, e2 = c.BroadcastTo(y.c, tensor.Shape{2, 5, 3})
	cmp("broadcast", a, b, e1, e2)
	a, e1 = g.ReduceTo(z.g, tensor.Shape{4, 1})
	b, e2 = c.ReduceTo(z.c, tensor.Shape{4, 1})
	cmp("reduce", a, b, e1, e2)
	im := up(tensor.Shape{2, 3, 5, 6}, tensor.F32)
	a, e1 = g.Upsample2x(im.g)
	b, e2 = c.Upsample2x(im.c)
	cmp("upsample", a, b, e1, e2)
	a, e1 = g.Upsample2xBackward(im.g)
	_ = a
	im2 := up(tensor.Shape{2, 3, 6, 8}, tensor.F32)
	a, e1 = g.Upsample2xBackward(im2.g)
	b, e2 = c.Upsample2xBackward(im2.c)
	cmp("upsample backward", a, b, e1, e2)
	a, e1 = g.Scale(z.g, 0.5)
	b, e2 = c.Scale(z.c, 0.5)
	cmp("scale", a, b, e1, e2)
	a, e1 = g.MSELoss(z.g, z.g)
	b, e2 = c.MSELoss(z.c, z.c)
	cmp("mse", a, b, e1, e2)
	d2 := up(x.g.Shape(), tensor.F32)
	a, e1 = g.MSELoss(x.g, d2.g)
	b, e2 = c.MSELoss(x.c, d2.c)
	cmp("mse2", a, b, e1, e2)
	one := up(tensor.Shape{1}, tensor.F32)
	a, e1 = g.MSELossBackward(one.g, x.g, d2.g)
	b, e2 = c.MSELossBackward(one.c, x.c, d2.c)
	cmp("mse backward", a, b, e1, e2)
	for _, dt := range []tensor.DType{tensor.F16, tensor.BF16} {
		a, e1 = g.Cast(x.g, dt)
		b, e2 = c.Cast(x.c, dt)
		cmp("cast "+dt.String(), a, b, e1, e2)
		a2, _ := g.Cast(a, tensor.F32)
		b2, _ := c.Cast(b, tensor.F32)
		cmp("cast back "+dt.String(), a2, b2, nil, nil)
	}
	ts := pair{}
	ts.g, _ = g.Upload([]float32{0, 1, 500, 999}, tensor.Shape{4}, tensor.F32)
	ts.c, _ = c.Upload([]float32{0, 1, 500, 999}, tensor.Shape{4}, tensor.F32)
	a, e1 = g.TimestepEmbedding(ts.g, 33, true, 0)
	b, e2 = c.TimestepEmbedding(ts.c, 33, true, 0)
	cmp("timestep", a, b, e1, e2)
	a, e1 = g.Softmax(z.g)
	b, e2 = c.Softmax(z.c)
	cmp("softmax", a, b, e1, e2)
	a, e1 = g.SoftmaxBackward(z.g, a)
	b, e2 = c.SoftmaxBackward(z.c, b)
	cmp("softmax backward", a, b, e1, e2)
	gm, bt := up(tensor.Shape{10}, tensor.F32), up(tensor.Shape{10}, tensor.F32)
	a, e1 = g.LayerNorm(z.g, gm.g, bt.g, 1e-5)
	b, e2 = c.LayerNorm(z.c, gm.c, bt.c, 1e-5)
	cmp("layernorm", a, b, e1, e2)
	a1, a2, a3, e1 := g.LayerNormBackward(z.g, z.g, gm.g, 1e-5, tensor.GradAll)
	b1, b2, b3, e2 := c.LayerNormBackward(z.c, z.c, gm.c, 1e-5, tensor.GradAll)
	cmp("layernorm dx", a1, b1, e1, e2)
	cmp("layernorm dg", a2, b2, e1, e2)
	cmp("layernorm db", a3, b3, e1, e2)
	gx := up(tensor.Shape{2, 6, 3, 5}, tensor.F32)
	g6, b6 := up(tensor.Shape{6}, tensor.F32), up(tensor.Shape{6}, tensor.F32)
	a, e1 = g.GroupNorm(gx.g, g6.g, b6.g, 3, 1e-5)
	b, e2 = c.GroupNorm(gx.c, g6.c, b6.c, 3, 1e-5)
	cmp("groupnorm", a, b, e1, e2)
	a1, a2, a3, e1 = g.GroupNormBackward(a, gx.g, g6.g, 3, 1e-5, tensor.GradAll)
	b1, b2, b3, e2 = c.GroupNormBackward(b, gx.c, g6.c, 3, 1e-5, tensor.GradAll)
	cmp("groupnorm dx", a1, b1, e1, e2)
	cmp("groupnorm dg", a2, b2, e1, e2)
	cmp("groupnorm db", a3, b3, e1, e2)
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		for _, shared := range []bool{false, true} {
			as := tensor.Shape{2, 7, 9}
			if tr[0] {
				as = tensor.Shape{2, 9, 7}
			}
			bs := tensor.Shape{2, 9, 70}
			if tr[1] {
				bs = tensor.Shape{2, 70, 9}
			}
			if shared {
				bs = bs[1:]
			}
			for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
				A, B, bias := up(as, tensor.F32), up(bs, dt), up(tensor.Shape{70}, tensor.F32)
				a, e1 := g.MatMul(A.g, B.g, bias.g, tr[0], tr[1])
				b, e2 := c.MatMul(A.c, B.c, bias.c, tr[0], tr[1])
				name := "matmul " + as.String() + bs.String() + dt.String()
				cmp(name, a, b, e1, e2)
				if a == nil {
					continue
				}
				do := up(a.Shape(), tensor.F32)
				a1, a2, a3, e1 := g.MatMulBackward(do.g, A.g, B.g, tr[0], tr[1], tensor.GradAll)
				b1, b2, b3, e2 := c.MatMulBackward(do.c, A.c, B.c, tr[0], tr[1], tensor.GradAll)
				cmp(name+" da", a1, b1, e1, e2)
				cmp(name+" db", a2, b2, e1, e2)
				cmp(name+" dbias", a3, b3, e1, e2)
			}
		}
	}
	for _, cp := range []struct {
		k  int
		p  tensor.Conv2DParams
		dt tensor.DType
	}{{3, tensor.ConvParams(1, 1), tensor.F32}, {3, tensor.ConvParams(2, 1), tensor.F32}, {1, tensor.ConvParams(1, 0), tensor.F16},
		{3, tensor.Conv2DParams{Stride: 2, PadBottom: 1, PadRight: 1}, tensor.BF16}} {
		X, W, B := up(tensor.Shape{2, 5, 9, 7}, tensor.F32), up(tensor.Shape{6, 5, cp.k, cp.k}, cp.dt), up(tensor.Shape{6}, tensor.F32)
		a, e1 := g.Conv2D(X.g, W.g, B.g, cp.p)
		b, e2 := c.Conv2D(X.c, W.c, B.c, cp.p)
		cmp("conv", a, b, e1, e2)
		if a == nil {
			continue
		}
		do := up(a.Shape(), tensor.F32)
		a1, a2, a3, e1 := g.Conv2DBackward(do.g, X.g, W.g, cp.p, tensor.GradAll)
		b1, b2, b3, e2 := c.Conv2DBackward(do.c, X.c, W.c, cp.p, tensor.GradAll)
		cmp("conv dx", a1, b1, e1, e2)
		cmp("conv dw", a2, b2, e1, e2)
		cmp("conv dbias", a3, b3, e1, e2)
	}
	for _, causal := range []bool{false, true} {
		Q, K, V := up(tensor.Shape{2, 3, 70, 8}, tensor.F32), up(tensor.Shape{2, 3, 70, 8}, tensor.F32), up(tensor.Shape{2, 3, 70, 8}, tensor.F32)
		o1, l1, e1 := g.Attention(Q.g, K.g, V.g, 0.35, causal)
		o2, l2, e2 := c.Attention(Q.c, K.c, V.c, 0.35, causal)
		cmp("attn out", o1, o2, e1, e2)
		cmp("attn lse", l1, l2, e1, e2)
		do := up(Q.g.Shape(), tensor.F32)
		a1, a2, a3, e1 := g.AttentionBackward(do.g, Q.g, K.g, V.g, o1, l1, 0.35, causal)
		b1, b2, b3, e2 := c.AttentionBackward(do.c, Q.c, K.c, V.c, o2, l2, 0.35, causal)
		cmp("attn dq", a1, b1, e1, e2)
		cmp("attn dk", a2, b2, e1, e2)
		cmp("attn dv", a3, b3, e1, e2)
	}
}

// TestTiledDispatch: launches with more than 65535 work groups are tiled
// into a 2-D grid (reduce and softmax use one work group per row).
func TestTiledDispatch(t *testing.T) {
	g := newTestBackend(t)
	const rows = 70000
	v := make([]float32, rows*2)
	for i := range v {
		v[i] = float32(i % 7)
	}
	x, err := g.Upload(v, tensor.Shape{rows, 2}, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Free()
	s, err := g.ReduceTo(x, tensor.Shape{rows, 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Free()
	got, err := g.Download(s)
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < rows; r++ {
		if want := v[2*r] + v[2*r+1]; got[r] != want {
			t.Fatalf("row %d: %v, want %v", r, got[r], want)
		}
	}
	sm, err := g.Softmax(x)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Free()
	p, _ := g.Download(sm)
	if d := p[2*(rows-1)] + p[2*(rows-1)+1]; math.Abs(float64(d)-1) > 1e-6 {
		t.Fatalf("last softmax row sums to %v", d)
	}
}

// TestBindingLimit lowers the per-binding limit to 64 KiB so that small
// tensors are "big": elementwise kernels must walk them in bound ranges and
// agree with the unsplit result; other kernels must refuse with an error
// naming the kernel and the limit.
func TestBindingLimit(t *testing.T) {
	g := newTestBackend(t)
	d := g.dev
	saved := d.limits.MaxSSBOSize
	const n = 50000 // 200 KB: four ranges of 64 KiB
	v := make([]float32, n)
	w := make([]float32, n)
	for i := range v {
		v[i] = float32(i%1000) / 100
		w[i] = float32(i % 7)
	}
	x, _ := g.Upload(v, tensor.Shape{n}, tensor.F32)
	y, _ := g.Upload(w, tensor.Shape{n}, tensor.F32)
	defer tensor.FreeAll(x, y)
	d.limits.MaxSSBOSize = 64 << 10
	defer func() { d.limits.MaxSSBOSize = saved }()
	s, err := g.Binary(tensor.Mul, x, y)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Free()
	a, err := g.Activation(s, tensor.SiLU)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Free()
	got, _ := g.Download(s)
	for i := range got {
		if want := v[i] * w[i]; got[i] != want {
			t.Fatalf("mul in ranges: [%d] = %v, want %v", i, got[i], want)
		}
	}
	act, _ := g.Download(a)
	for _, i := range []int{0, 16383, 16384, 16385, 32768, n - 1} {
		z := float64(got[i])
		want := z / (1 + math.Exp(-z))
		if math.Abs(float64(act[i])-want) > 1e-5*math.Max(1, math.Abs(want)) {
			t.Fatalf("silu in ranges: [%d] = %v, want %v", i, act[i], want)
		}
	}
	_, err = g.Softmax(x)
	if err == nil || !strings.Contains(err.Error(), "softmax_forward") || !strings.Contains(err.Error(), "binding limit") {
		t.Fatalf("softmax over the limit: %v", err)
	}
}

// TestAttentionWideHead: the SDXL VAE's mid-block attention has one head
// of 512 channels; two 16-row tiles of it exceed llvmpipe's 32 KiB of shared
// memory, so the kernels run with smaller tiles and must still agree.
func TestAttentionWideHead(t *testing.T) {
	g := newTestBackend(t)
	c := cpu.New()
	r := rand.New(rand.NewSource(5))
	shape := tensor.Shape{1, 1, 21, 512}
	vals := make([][]float32, 4)
	for i := range vals {
		vals[i] = make([]float32, shape.Numel())
		for j := range vals[i] {
			vals[i][j] = float32(r.NormFloat64())
		}
	}
	var res [2][][]float32
	for bi, be := range []tensor.Backend{g, c} {
		var in []*tensor.Tensor
		for _, v := range vals {
			x, err := be.Upload(v, shape, tensor.F32)
			if err != nil {
				t.Fatal(err)
			}
			in = append(in, x)
		}
		o, l, err := be.Attention(in[0], in[1], in[2], 0.044, false)
		if err != nil {
			t.Fatalf("%s: %v", be.Name(), err)
		}
		dq, dk, dv, err := be.AttentionBackward(in[3], in[0], in[1], in[2], o, l, 0.044, false)
		if err != nil {
			t.Fatalf("%s: %v", be.Name(), err)
		}
		for _, x := range []*tensor.Tensor{o, l, dq, dk, dv} {
			v, _ := be.Download(x)
			res[bi] = append(res[bi], v)
		}
		tensor.FreeAll(append(in, o, l, dq, dk, dv)...)
	}
	for k, name := range []string{"out", "lse", "dq", "dk", "dv"} {
		var maxAbs float64
		for i := range res[0][k] {
			maxAbs = math.Max(maxAbs, math.Abs(float64(res[0][k][i]-res[1][k][i])))
		}
		if maxAbs > 1e-4 {
			t.Errorf("%s: max abs err %g", name, maxAbs)
		}
	}
}
