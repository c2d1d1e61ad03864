// Package fma is the float32 fused multiply-add that Go does not offer and
// reproducing torch's numbers (its vectorised kernels use FMA) needs.
package fma

import "math"

// Float32 returns a·b + c rounded once to float32, as a hardware float32 FMA.
// The product of two float32 is exact in float64; the float64 sum is
// corrected when it sits exactly on a float32 rounding tie that the exact
// sum does not.
func Float32(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	s := p + float64(c)
	// exact error of the addition (Knuth's TwoSum)
	bv := s - p
	e := (p - (s - bv)) + (float64(c) - bv)
	if e != 0 {
		r := float32(s)
		if float64(r) != s {
			other := math.Nextafter32(r, float32(math.Inf(1)))
			if float64(r) > s {
				other = math.Nextafter32(r, float32(math.Inf(-1)))
			}
			if (float64(r)+float64(other))/2 == s {
				// break the false tie toward the exact value
				if e > 0 {
					s = math.Nextafter(s, math.Inf(1))
				} else {
					s = math.Nextafter(s, math.Inf(-1))
				}
			}
		}
	}
	return float32(s)
}
