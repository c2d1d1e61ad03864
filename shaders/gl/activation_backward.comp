// activation_backward: dx[i] = dout[i] * f'(x[i]). P[0] = n.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer O { float dx[]; };
#include "common/act.glsl"

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	dx[i] = dout[i] * actD(x[i]);
}
