// groupnorm_backward_affine: dgamma[c] = sum over n, s of dout * xhat and
// dbeta[c] = sum of dout, one work group a channel; xhat from the group
// stats groupnorm_backward wrote.
// P[0] = N, P[1] = C, P[2] = S, P[3] = G, P[4] = C/G.
#define WG 256
layout(local_size_x = WG) in;
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer St { float stats[]; };
layout(std430, binding = 3) writeonly buffer DG { float dgamma[]; };
layout(std430, binding = 4) writeonly buffer DB { float dbeta[]; };
#include "common/wgsum.glsl"

void main() {
	uint c = GROUP;
	uint N = uint(P[0]), C = uint(P[1]), S = uint(P[2]);
	if (c >= C) return;
	uint g = c / uint(P[4]);
	uint t = gl_LocalInvocationID.x;
	float sg = 0.0, sb = 0.0;
	for (uint e = t; e < N * S; e += WG) {
		uint n = e / S, s = e % S;
		uint i = (n * C + c) * S + s;
		uint grp = n * uint(P[3]) + g;
		float d = dout[i];
		sg += d * (x[i] - stats[2u * grp]) * stats[2u * grp + 1u];
		sb += d;
	}
	sg = wgSum(sg);
	sb = wgSum(sb);
	if (t == 0u) { dgamma[c] = sg; dbeta[c] = sb; }
}
