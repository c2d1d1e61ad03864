// groupnorm_forward: x is (N, C, S) with S the trailing elements; each of
// the N*G groups (C/G channels by S, contiguous) is normalized with its mean
// and biased variance (two passes), then out = xhat * gamma[c] + beta[c]
// when affine. One work group a group.
// P[0] = N*G, P[1] = C/G * S (group size), P[2] = S, P[3] = G, P[4] = C/G,
// P[5] = 1 with affine. F[0] = eps.
#define WG 256
layout(local_size_x = WG) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer G { float gamma[]; };
layout(std430, binding = 2) readonly buffer Bt { float beta[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
#include "common/wgsum.glsl"

void main() {
	uint grp = GROUP;
	if (grp >= uint(P[0])) return;
	uint L = uint(P[1]), S = uint(P[2]), t = gl_LocalInvocationID.x, base = grp * L;
	uint c0 = (grp % uint(P[3])) * uint(P[4]);
	float s = 0.0;
	for (uint e = t; e < L; e += WG) s += x[base + e];
	float mean = wgSum(s) / float(L);
	float v = 0.0;
	for (uint e = t; e < L; e += WG) { float d = x[base + e] - mean; v += d * d; }
	float rstd = inversesqrt(wgSum(v) / float(L) + F[0]);
	for (uint e = t; e < L; e += WG) {
		float h = (x[base + e] - mean) * rstd;
		if (P[5] == 1) { uint c = c0 + e / S; h = h * gamma[c] + beta[c]; }
		o[base + e] = h;
	}
}
