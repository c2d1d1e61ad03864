package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"lorastudio/engine/tensor"
)

// TestAttentionBlocks checks Attention against softmax(scale·q·kᵀ)·v in
// float64 on shapes with several query blocks per head, a partial last
// block and the causal mask across block boundaries.
func TestAttentionBlocks(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, c := range []struct {
		B, H, Nq, Nk, D int
		causal          bool
	}{{1, 3, 203, 150, 16, false}, {2, 1, 250, 250, 8, true}} {
		t.Run(fmt.Sprintf("%dx%dx%dx%d_causal_%v", c.B, c.H, c.Nq, c.Nk, c.causal), func(t *testing.T) {
			b := New()
			rnd := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				return v
			}
			BH := c.B * c.H
			qv, kv, vv := rnd(BH*c.Nq*c.D), rnd(BH*c.Nk*c.D), rnd(BH*c.Nk*c.D)
			up := func(v []float32, n int) *tensor.Tensor {
				x, err := b.Upload(v, tensor.Shape{c.B, c.H, n, c.D}, tensor.F32)
				if err != nil {
					t.Fatal(err)
				}
				return x
			}
			scale := float32(1 / math.Sqrt(float64(c.D)))
			out, lse, err := b.Attention(up(qv, c.Nq), up(kv, c.Nk), up(vv, c.Nk), scale, c.causal)
			if err != nil {
				t.Fatal(err)
			}
			ov, _ := b.Download(out)
			lv, _ := b.Download(lse)
			for h := 0; h < BH; h++ {
				for i := 0; i < c.Nq; i++ {
					vis := c.Nk
					if c.causal {
						vis = min(i+1, c.Nk)
					}
					s := make([]float64, vis)
					m := math.Inf(-1)
					for j := range s {
						for d := 0; d < c.D; d++ {
							s[j] += float64(qv[(h*c.Nq+i)*c.D+d]) * float64(kv[(h*c.Nk+j)*c.D+d])
						}
						s[j] *= float64(scale)
						m = math.Max(m, s[j])
					}
					sum := 0.0
					for j := range s {
						s[j] = math.Exp(s[j] - m)
						sum += s[j]
					}
					if got, want := float64(lv[h*c.Nq+i]), m+math.Log(sum); math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
						t.Fatalf("lse[%d, %d] = %g, want %g", h, i, got, want)
					}
					for d := 0; d < c.D; d++ {
						want := 0.0
						for j := range s {
							want += s[j] / sum * float64(vv[(h*c.Nk+j)*c.D+d])
						}
						if got := float64(ov[(h*c.Nq+i)*c.D+d]); math.Abs(got-want) > 1e-5 {
							t.Fatalf("out[%d, %d, %d] = %g, want %g", h, i, d, got, want)
						}
					}
				}
			}
		})
	}
}

// BenchmarkAttention times self-attention at the demo UNet's sizes.
func BenchmarkAttention(bm *testing.B) {
	b := New()
	const B, H, N, D = 2, 2, 1024, 64
	rng := rand.New(rand.NewSource(1))
	v := make([]float32, B*H*N*D)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	x, _ := b.Upload(v, tensor.Shape{B, H, N, D}, tensor.F32)
	for bm.Loop() {
		out, lse, err := b.Attention(x, x, x, 0.125, false)
		if err != nil {
			bm.Fatal(err)
		}
		tensor.FreeAll(out, lse)
	}
}
