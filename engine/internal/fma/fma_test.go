package fma

import (
	"math"
	"testing"
)

// TestFloat32 checks the emulated float32 fused multiply-add on cases where a
// separate multiply and add round differently, including a double-rounding
// trap of the float64 route.
func TestFloat32(t *testing.T) {
	// 1+2⁻²³ squared is 1+2⁻²²+2⁻⁴⁶: the 2⁻⁴⁶ survives only when fused
	a := float32(1 + 1.0/(1<<23))
	if got := Float32(a, a, -1); got != float32(1.0/(1<<22)+1.0/(1<<46)) {
		t.Fatalf("fma32 lost the low product bits: %v", got)
	}
	if got := float32(a*a) - 1; got != float32(1.0/(1<<22)) {
		t.Fatalf("unfused reference wrong: %v", got)
	}
	// a·b + c = 1 + 3·2⁻²⁴ − 2⁻⁵⁴ exactly: float64 rounds it to the float32
	// tie 1 + 3·2⁻²⁴, which would then round to even (1 + 2⁻²²); the exact
	// value lies below the tie, so the float32 FMA gives 1 + 2⁻²³.
	a2 := float32(-(1 + 1.0/(1<<10)) / (1 << 24))
	b2 := float32(1 - 1.0/(1<<10) + 1.0/(1<<20))
	c2 := float32(1 + 1.0/(1<<22))
	if naive := float32(math.FMA(float64(a2), float64(b2), float64(c2))); naive != float32(1+1.0/(1<<22)) {
		t.Fatalf("test case is not a double-rounding trap: float64 route gives %v", naive)
	}
	if got := Float32(a2, b2, c2); got != float32(1+1.0/(1<<23)) {
		t.Fatalf("fma32 double-rounded: got %v, want 1+2⁻²³", got)
	}
}
