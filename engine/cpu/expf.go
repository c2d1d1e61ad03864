package cpu

import "math"

// expf is a float32 exp (Cephes' expf: range reduction by ln 2 in two parts
// and a degree-6 polynomial), within a few ulp of math.Exp and several
// times faster. Inputs below -87.3 give 0 (no subnormals), above 88.7 +Inf.
// Attention and softmax use it for their one exp per score.
func expf(x float32) float32 {
	switch {
	case x > 88.72283:
		return float32(math.Inf(1))
	case x < -87.33654:
		return 0
	case x != x:
		return x
	}
	// n = round(x / ln 2); r = x - n ln 2, in [-ln2/2, ln2/2].
	z := x * 1.44269504088896341
	var n int32
	if z >= 0 {
		n = int32(z + 0.5)
	} else {
		n = int32(z - 0.5)
	}
	fn := float32(n)
	r := x - fn*0.693359375
	r -= fn * -2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	// Scale by 2^n, in two steps so n = -126 - 1 or 128 still works.
	if n < -125 || n > 126 {
		half := n / 2
		return y * math.Float32frombits(uint32(half+127)<<23) * math.Float32frombits(uint32(n-half+127)<<23)
	}
	return y * math.Float32frombits(uint32(n+127)<<23)
}
