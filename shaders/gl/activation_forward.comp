// activation_forward: out[i] = f(x[i]), f chosen by ACT (common/act.glsl).
// P[0] = n.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer O { float o[]; };
#include "common/act.glsl"

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	o[i] = actF(x[i]);
}
