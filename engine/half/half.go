// Package half converts between float32 and the two 16-bit float formats that
// checkpoints use: IEEE 754 binary16 (fp16) and bfloat16 (bf16).
//
// Conversions to 16 bits round to nearest, ties to even, as torch does; values
// too large become infinity and values too small become fp16 subnormals or zero.
package half

import "math"

// Float32ToFloat16 returns the fp16 bit pattern nearest to f (ties to even).
// Overflow gives ±Inf, underflow gives subnormals or ±0, and NaN gives the
// canonical quiet NaN 0x7E00 with f's sign (torch's behaviour).
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased fp16 exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// The result is an fp16 subnormal (or zero): its unit is 2^-24.
		if e < -10 || exp == 0 {
			// |f| < 2^-25 (half the smallest subnormal) rounds to zero;
			// float32 subnormals are far below that.
			return sign
		}
		m := mant | 0x800000 // 24-bit significand, value = m * 2^(e-15-23)
		shift := uint(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && h&1 == 1) {
			h++ // may carry into the smallest normal, which is the right encoding
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is correct, up to 0x7c00 (Inf)
	}
	return sign | uint16(h)
}

// Float16ToFloat32 returns the float32 value of the fp16 bit pattern h (exact).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		// Inf or NaN; the payload is kept in the high mantissa bits.
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: normalise the significand.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	mant &= 0x3ff
	return math.Float32frombits(sign | e<<23 | mant<<13)
}

// Float32ToBFloat16 returns the bf16 bit pattern nearest to f (ties to even).
// NaN gives 0x7FC0, as torch's c10::BFloat16 does.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return 0x7fc0
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// BFloat16ToFloat32 returns the float32 value of the bf16 bit pattern b (exact).
func BFloat16ToFloat32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}
