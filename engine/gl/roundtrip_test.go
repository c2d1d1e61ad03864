package gl

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/optest"
	"lorastudio/shaders"
)

// useRoundTrip makes d compile every kernel from testdata/roundtrip: the
// GLSL that spirv-cross wrote back from the SPIR-V the Metal kernels come
// from (shaders/internal/gen). A launch whose variant was not generated
// fails naming it. Shared memory is set to Metal's 32 KiB so the attention
// tiles match the generated variants. It returns the variants compiled so
// far; the original cache and limits come back at cleanup.
func useRoundTrip(t *testing.T, d *Device) map[string]bool {
	t.Helper()
	used := map[string]bool{}
	saved, savedShared := d.programs, d.limits.MaxSharedBytes
	rt := newProgramCache()
	rt.variant = func(name string, defines map[string]string) (string, error) {
		v := shaders.VariantName(name, defines)
		b, err := os.ReadFile(filepath.Join("testdata", "roundtrip", v+".comp"))
		if err != nil {
			return "", fmt.Errorf("kernel %s: no round-tripped variant %s (is it in shaders.Variants? run go generate ./shaders/): %w", name, v, err)
		}
		used[v] = true
		return string(b), nil
	}
	if err := d.thread.Call(func() error { d.programs = rt; return nil }); err != nil {
		t.Fatal(err)
	}
	d.limits.MaxSharedBytes = shaders.MetalSharedBytes
	t.Cleanup(func() {
		d.limits.MaxSharedBytes = savedShared
		if err := d.thread.Call(func() error { rt.deleteAll(); d.programs = saved; return nil }); err != nil {
			t.Error(err)
		}
	})
	return used
}

// TestParityRoundTrip runs the parity table (and the GEMM variants and
// split-K paths the other parity tests force) with the kernels round-tripped
// through SPIR-V, against the CPU: proof that the SPIR-V step the Metal
// kernels come from keeps each kernel's meaning.
func TestParityRoundTrip(t *testing.T) {
	g := newTestBackend(t)
	used := useRoundTrip(t, g.dev)
	c := cpu.New()
	optest.RunAgainst(t, c, g, optest.Small)
	g.dev.gemmReg = !g.dev.gemmReg
	optest.RunAgainst(t, c, g, optest.Small, optest.Only("matmul|linear"))
	g.dev.gemmReg = !g.dev.gemmReg
	g.dev.gemm128 = true
	optest.RunAgainst(t, c, g, optest.Small, optest.Only("matmul|linear|conv"))
	g.dev.gemm128 = false
	g.dev.splitK = 3
	optest.RunAgainst(t, c, g, optest.Small, optest.Only("matmul|linear|conv"))
	g.dev.splitK = 0

	names := make([]string, 0, len(used))
	for v := range used {
		names = append(names, v)
	}
	sort.Strings(names)
	t.Logf("%d of %d generated variants ran round-tripped: %v", len(names), len(shaders.Variants()), names)
	if len(names) == 0 {
		t.Fatal("no kernel was compiled from testdata/roundtrip")
	}
}

// TestRoundTripFilesComplete checks that every variant the generator
// lists has its round-tripped kernel, and nothing else is there.
func TestRoundTripFilesComplete(t *testing.T) {
	want := map[string]bool{}
	for _, v := range shaders.Variants() {
		want[v.Name()+".comp"] = true
	}
	ents, err := os.ReadDir(filepath.Join("testdata", "roundtrip"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !want[e.Name()] {
			t.Errorf("testdata/roundtrip/%s is not a variant of shaders.Variants (stale? run go generate ./shaders/)", e.Name())
		}
		delete(want, e.Name())
	}
	for n := range want {
		t.Errorf("testdata/roundtrip/%s is missing (run go generate ./shaders/)", n)
	}
}

// TestRoundTripAllCompile compiles and links every generated variant's
// round-tripped GLSL, including those the parity table does not reach
// (other head sizes, bf16 operands), so none is broken by the SPIR-V step.
func TestRoundTripAllCompile(t *testing.T) {
	d := device(t)
	used := useRoundTrip(t, d)
	for _, v := range shaders.Variants() {
		err := d.thread.Call(func() error { _, err := d.programs.get(v.Kernel, v.Defines); return err })
		if err != nil {
			t.Errorf("%s: %v", v.Name(), err)
		}
	}
	if len(used) != len(shaders.Variants()) {
		t.Fatalf("compiled %d round-tripped variants, want %d", len(used), len(shaders.Variants()))
	}
}
