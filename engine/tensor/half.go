package tensor

// The fp16/bf16 bit conversions themselves live in engine/half; these are the
// tensor-level helpers built on them.

import "lorastudio/engine/half"

// RoundTo returns f rounded to dtype dt and back to float32 (identity for F32).
func RoundTo(f float32, dt DType) float32 {
	switch dt {
	case F16:
		return half.Float16ToFloat32(half.Float32ToFloat16(f))
	case BF16:
		return half.BFloat16ToFloat32(half.Float32ToBFloat16(f))
	}
	return f
}

// Pack converts float32 values to 16-bit words of dtype dt (F16 or BF16).
func Pack(dst []uint16, src []float32, dt DType) {
	if dt == BF16 {
		for i, v := range src {
			dst[i] = half.Float32ToBFloat16(v)
		}
		return
	}
	for i, v := range src {
		dst[i] = half.Float32ToFloat16(v)
	}
}

// Unpack converts 16-bit words of dtype dt (F16 or BF16) to float32.
func Unpack(dst []float32, src []uint16, dt DType) {
	if dt == BF16 {
		for i, v := range src {
			dst[i] = half.BFloat16ToFloat32(v)
		}
		return
	}
	for i, v := range src {
		dst[i] = half.Float16ToFloat32(v)
	}
}
