package gl

import (
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/optest"
)

// TestParity runs the engine's one table of parity cases (engine/optest) on
// GL against the CPU reference, with the small shapes llvmpipe can afford.
func TestParity(t *testing.T) {
	g := newTestBackend(t)
	optest.RunAgainst(t, cpu.New(), g, optest.Small)
}

// TestParityOtherGemm runs the matmul cases with the GEMM variant this
// device does not pick by default (shared-memory tiles on llvmpipe, the
// register-only one elsewhere), so both kernels stay checked everywhere.
func TestParityOtherGemm(t *testing.T) {
	g := newTestBackend(t)
	g.dev.gemmReg = !g.dev.gemmReg
	defer func() { g.dev.gemmReg = !g.dev.gemmReg }()
	optest.RunAgainst(t, cpu.New(), g, optest.Small, optest.Only("matmul|linear"))
}
