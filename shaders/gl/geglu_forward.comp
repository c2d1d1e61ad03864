// geglu_forward: x is (R, 2F); out (R, F) = x[r, j] * f(x[r, F + j]).
// P[0] = R*F, P[1] = F.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer O { float o[]; };
#include "common/act.glsl"

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	uint f = uint(P[1]);
	uint r = i / f, j = i % f;
	uint h = r * 2u * f + j;
	o[i] = x[h] * actF(x[h + f]);
}
