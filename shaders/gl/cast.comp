// cast: converts n elements from dtype FROM to dtype TO (0 f32, 1 f16,
// 2 bf16; defines), rounding to nearest even. Both buffers are read as raw
// words; to a 16-bit type each invocation writes one word (two elements).
// P[0] = n.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer S { uint src[]; };
layout(std430, binding = 1) writeonly buffer D { uint dst[]; };
#include "common/half.glsl"

float load(uint i) {
#if FROM == 0
	return uintBitsToFloat(src[i]);
#elif FROM == 1
	return unpackF16(src[i >> 1], i);
#else
	return unpackBF16(src[i >> 1], i);
#endif
}

uint store16(float v) {
#if TO == 1
	return f32ToF16(v);
#else
	return f32ToBF16(v);
#endif
}

void main() {
	uint i = GID;
	uint n = uint(P[0]);
#if TO == 0
	if (i >= n) return;
	dst[i] = floatBitsToUint(load(i));
#else
	uint e = 2u * i;
	if (e >= n) return;
	uint lo = store16(load(e));
	uint hi = e + 1u < n ? store16(load(e + 1u)) : 0u;
	dst[i] = lo | (hi << 16);
#endif
}
