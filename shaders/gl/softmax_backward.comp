// softmax_backward: dx = y * (dout - sum(dout * y)) per row of (R, C).
// P[0] = R, P[1] = C.
#define WG 64
layout(local_size_x = WG) in;
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) readonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer O { float dx[]; };
#include "common/wgsum.glsl"

void main() {
	uint r = GROUP;
	if (r >= uint(P[0])) return;
	uint C = uint(P[1]), t = gl_LocalInvocationID.x, base = r * C;
	float s = 0.0;
	for (uint c = t; c < C; c += WG) s += dout[base + c] * y[base + c];
	s = wgSum(s);
	for (uint c = t; c < C; c += WG) dx[base + c] = y[base + c] * (dout[base + c] - s);
}
