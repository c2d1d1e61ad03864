package cpu

import "math"

// expf is a float32 exp (Cephes' expf: range reduction by ln 2 in two parts
// and a degree-6 polynomial), within a few ulp of math.Exp and several
// times faster. Inputs below -87.3 give 0 (no subnormals), above 88.7 +Inf.
// Attention and softmax use it for their one exp per score, SiLU and the
// sigmoid GELUs for theirs. Rounding x/ln 2 by adding 1.5·2²³ keeps the
// reduction free of branches.
func expf(x float32) float32 {
	if !(x >= -87.33654) {
		if x != x {
			return x
		}
		return 0
	}
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	// n = round(x / ln 2) by the 1.5·2²³ trick; r = x - n ln 2.
	t := x*1.44269504088896341 + 12582912
	fn := t - 12582912
	n := int32(math.Float32bits(t)) - 0x4b400000
	r := x - fn*0.693359375
	r -= fn * -2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	if n > 127 {
		return y * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	return y * math.Float32frombits(uint32(n+127)<<23)
}
