// softmax_forward: y[r, :] = exp(x[r, :] - max) / sum, one work group a row.
// x and y are (R, C). P[0] = R, P[1] = C.
#define WG 64
layout(local_size_x = WG) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
#include "common/wgsum.glsl"

void main() {
	uint r = GROUP;
	if (r >= uint(P[0])) return;
	uint C = uint(P[1]), t = gl_LocalInvocationID.x, base = r * C;
	float m = -3.402823466e38;
	for (uint c = t; c < C; c += WG) m = max(m, x[base + c]);
	m = wgMax(m);
	float s = 0.0;
	for (uint c = t; c < C; c += WG) s += exp(x[base + c] - m);
	s = wgSum(s);
	for (uint c = t; c < C; c += WG) y[base + c] = exp(x[base + c] - m) / s;
}
