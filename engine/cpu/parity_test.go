package cpu

import (
	"testing"

	"lorastudio/engine/optest"
)

func TestReference(t *testing.T) { optest.RunReference(t, New()) }

func TestFiniteDiff(t *testing.T) { optest.FiniteDiff(t, New()) }

// TestPureGoAgainstDefault runs the table on the pure-Go sgemm against the
// default backend (OpenBLAS when built with -tags openblas).
func TestPureGoAgainstDefault(t *testing.T) { optest.RunAgainst(t, New(), NewPureGo()) }

// TestPortableKernelAgainstDefault runs the table with the portable Go
// micro-kernel against the default backend (AVX2 kernel or OpenBLAS).
func TestPortableKernelAgainstDefault(t *testing.T) {
	optest.RunAgainst(t, New(), &Backend{pureGo: true, portable: true})
}

func TestSmallReference(t *testing.T) { optest.RunReference(t, New(), optest.Small) }

func TestMisuse(t *testing.T) { optest.RunMisuse(t, New(), optest.Foreign(New())) }

func TestNoPanic(t *testing.T) { optest.RunNoPanic(t, New()) }
