// reduce: out[o] = sum over r of x[walk(o, keptStrides) + walk(r, redStrides)]
// — ReduceTo, Sum, Mean and every bias gradient. One work group of 64 sums
// one output element.
// P[0] = outputs, P[1] = r count, P[2..7] = kept shape, P[8..13] = kept
// strides, P[14..19] = reduced shape, P[20..25] = reduced strides.
// F[0] = factor applied to the sum (1, or 1/count for a mean).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer O { float o[]; };
#include "common/index.glsl"

shared float partial[64];

void main() {
	uint g = GROUP;
	if (g >= uint(P[0])) return;
	uint base = offsetOf(g, 2, 8);
	uint t = gl_LocalInvocationID.x;
	float s = 0.0;
	for (uint r = t; r < uint(P[1]); r += 64u) {
		s += x[base + offsetOf(r, 14, 20)];
	}
	partial[t] = s;
	barrier();
	for (uint w = 32u; w > 0u; w >>= 1) {
		if (t < w) partial[t] += partial[t + w];
		barrier();
	}
	if (t == 0u) o[g] = partial[0] * F[0];
}
