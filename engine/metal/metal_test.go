//go:build darwin

package metal

import (
	"math/rand"
	"os"
	"strings"
	"sync"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/optest"
	"lorastudio/engine/tensor"
)

var (
	testOnce sync.Once
	testBack *Backend
	testErr  error
)

// backend returns the package's shared Metal backend. Without a Metal
// device the test skips, unless LORASTUDIO_REQUIRE_METAL=1, where it fails
// naming why.
func backend(t *testing.T) *Backend {
	t.Helper()
	testOnce.Do(func() { testBack, testErr = New() })
	if testErr != nil {
		if os.Getenv("LORASTUDIO_REQUIRE_METAL") == "1" {
			t.Fatalf("LORASTUDIO_REQUIRE_METAL=1 but no Metal device: %v", testErr)
		}
		t.Skipf("no Metal device (set LORASTUDIO_REQUIRE_METAL=1 to fail instead): %v", testErr)
	}
	return testBack
}

// TestParity runs the engine's one table of parity cases on Metal against
// the CPU reference, at full size.
func TestParity(t *testing.T) {
	b := backend(t)
	t.Logf("%s, working set %d MiB", b.Device(), b.dev.limits.WorkingSet>>20)
	optest.RunAgainst(t, cpu.New(), b)
}

// TestMisuse: freed, foreign and mismatched operands are errors, and odd
// but valid input does not panic, as on every backend.
func TestMisuse(t *testing.T) {
	b := backend(t)
	optest.RunMisuse(t, b, optest.Foreign(cpu.New()))
	optest.RunNoPanic(t, b)
}

// TestParityGemmVariants runs the products and convolutions with the
// 128x128 tiles and with K split three ways (the reduce kernel), the paths
// a small case does not pick on its own.
func TestParityGemmVariants(t *testing.T) {
	b := backend(t)
	b.dev.gemm128 = true
	optest.RunAgainst(t, cpu.New(), b, optest.Only("matmul|linear|conv"))
	b.dev.gemm128 = false
	b.dev.splitK = 3
	optest.RunAgainst(t, cpu.New(), b, optest.Only("matmul|linear|conv"))
	b.dev.splitK = 0
}

// TestMissingVariantNamesKernel: an attention head size with no generated
// kernel is an error naming the kernel and the variant, not a crash.
func TestMissingVariantNamesKernel(t *testing.T) {
	b := backend(t)
	r := rand.New(rand.NewSource(1))
	v := make([]float32, 1*1*3*12)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	q, err := b.Upload(v, tensor.Shape{1, 1, 3, 12}, tensor.F32) // head size 12: not in shaders.AttentionHeadSizes
	if err != nil {
		t.Fatal(err)
	}
	defer q.Free()
	_, _, err = b.Attention(q, q, q, 0.3, false)
	if err == nil || !strings.Contains(err.Error(), "attention_forward") || !strings.Contains(err.Error(), "D=12") {
		t.Fatalf("err = %v, want one naming attention_forward and D=12", err)
	}
}

// TestLimits: the device reports a name, a working set and a per-binding
// limit, and MaxTensorBytes is that limit.
func TestLimits(t *testing.T) {
	b := backend(t)
	l := b.dev.Limits()
	if l.Renderer == "" || l.WorkingSet <= 0 || l.MaxSSBOSize <= 0 || b.MaxTensorBytes() != int64(l.MaxSSBOSize) {
		t.Fatalf("limits %+v, MaxTensorBytes %d", l, b.MaxTensorBytes())
	}
}
