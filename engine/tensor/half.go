package tensor

import "math"

// F32ToF16 converts f to IEEE binary16 bits, rounding to nearest even;
// overflow gives ±Inf and NaN stays NaN.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): shift the mantissa with the implicit 1.
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, up to Inf: correct rounding
	}
	return sign | uint16(half)
}

// F16ToF32 converts IEEE binary16 bits to float32 exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: mant * 2^-24.
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// F32ToBF16 converts f to bfloat16 bits, rounding to nearest even; NaN stays NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// BF16ToF32 converts bfloat16 bits to float32 exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// RoundTo returns f rounded to dtype dt and back to float32 (identity for F32).
func RoundTo(f float32, dt DType) float32 {
	switch dt {
	case F16:
		return F16ToF32(F32ToF16(f))
	case BF16:
		return BF16ToF32(F32ToBF16(f))
	}
	return f
}

// Pack converts float32 values to 16-bit words of dtype dt (F16 or BF16).
func Pack(dst []uint16, src []float32, dt DType) {
	if dt == BF16 {
		for i, v := range src {
			dst[i] = F32ToBF16(v)
		}
		return
	}
	for i, v := range src {
		dst[i] = F32ToF16(v)
	}
}

// Unpack converts 16-bit words of dtype dt (F16 or BF16) to float32.
func Unpack(dst []float32, src []uint16, dt DType) {
	if dt == BF16 {
		for i, v := range src {
			dst[i] = BF16ToF32(v)
		}
		return
	}
	for i, v := range src {
		dst[i] = F16ToF32(v)
	}
}
