// half.glsl: packed 16-bit floats. Tensors of F16 or BF16 hold two elements
// per uint (element i in word i/2, low half first); llvmpipe has no fp16
// arithmetic, so they are unpacked to fp32 here.

// unpackAt returns element i (of dtype DT: 1 f16, 2 bf16) from its word.
float unpackF16(uint word, uint i) {
	return unpackHalf2x16(word >> (16u * (i & 1u))).x;
}
float unpackBF16(uint word, uint i) {
	return uintBitsToFloat(((word >> (16u * (i & 1u))) & 0xffffu) << 16);
}

// f32ToF16 rounds to nearest even (packHalf2x16 leaves rounding to the driver).
uint f32ToF16(float f) {
	uint x = floatBitsToUint(f);
	uint s = (x >> 16) & 0x8000u;
	uint e = (x >> 23) & 0xffu;
	uint m = x & 0x7fffffu;
	if (e == 255u) return s | 0x7c00u | (m != 0u ? 0x200u : 0u);
	int ee = int(e) - 112;
	if (ee >= 31) return s | 0x7c00u;
	if (ee <= 0) {
		if (ee < -10) return s;
		m |= 0x800000u;
		uint sh = uint(14 - ee);
		uint h = m >> sh;
		uint rem = m & ((1u << sh) - 1u);
		uint hw = 1u << (sh - 1u);
		if (rem > hw || (rem == hw && (h & 1u) != 0u)) h++;
		return s | h;
	}
	uint h = (uint(ee) << 10) | (m >> 13);
	uint rem = m & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u)) h++;
	return s | h;
}

// f32ToBF16 rounds to nearest even; NaN stays NaN.
uint f32ToBF16(float f) {
	uint x = floatBitsToUint(f);
	if ((x & 0x7fffffffu) > 0x7f800000u) return (x >> 16) | 0x40u;
	return (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
}
