// binary: out[i] = a[walk(i, aStrides)] OP b[walk(i, bStrides)] with numpy
// broadcasting (a stride of 0 repeats). OP is 0 add, 1 sub, 2 mul (define).
// P[0] = n, P[1..6] = out shape, P[7..12] = a strides, P[13..18] = b strides.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
#include "common/index.glsl"

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	float x = a[offsetOf(i, 1, 7)];
	float y = b[offsetOf(i, 1, 13)];
#if OP == 0
	o[i] = x + y;
#elif OP == 1
	o[i] = x - y;
#else
	o[i] = x * y;
#endif
}
