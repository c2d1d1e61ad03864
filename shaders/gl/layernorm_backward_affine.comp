// layernorm_backward_affine: dgamma[c] = sum_r dout[r, c] * xhat[r, c] and
// dbeta[c] = sum_r dout[r, c], one work group a column; xhat from the
// (mean, rstd) stats layernorm_backward wrote. P[0] = R, P[1] = C.
#define WG 64
layout(local_size_x = WG) in;
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer S { float stats[]; };
layout(std430, binding = 3) writeonly buffer DG { float dgamma[]; };
layout(std430, binding = 4) writeonly buffer DB { float dbeta[]; };
#include "common/wgsum.glsl"

void main() {
	uint c = GROUP;
	uint R = uint(P[0]), C = uint(P[1]);
	if (c >= C) return;
	uint t = gl_LocalInvocationID.x;
	float sg = 0.0, sb = 0.0;
	for (uint r = t; r < R; r += WG) {
		float d = dout[r * C + c];
		sg += d * (x[r * C + c] - stats[2u * r]) * stats[2u * r + 1u];
		sb += d;
	}
	sg = wgSum(sg);
	sb = wgSum(sb);
	if (t == 0u) { dgamma[c] = sg; dbeta[c] = sb; }
}
