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
