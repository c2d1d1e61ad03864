// groupnorm_backward: per group (see groupnorm_forward), with g = dout *
// gamma[c] (or dout): dx = rstd * (g - mean(g) - xhat * mean(g * xhat)); it
// also writes (mean, rstd) per group to stats for the affine gradients.
// P[0..4] as in groupnorm_forward, P[5] = 1 with gamma, P[6] = 1 to write
// dx. F[0] = eps.
#define WG 256
layout(local_size_x = WG) in;
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer G { float gamma[]; };
layout(std430, binding = 3) writeonly buffer O { float dx[]; };
layout(std430, binding = 4) writeonly buffer St { float stats[]; };
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
	if (t == 0u) { stats[2u * grp] = mean; stats[2u * grp + 1u] = rstd; }
	if (P[6] != 1) return;
	float sg = 0.0, sgx = 0.0;
	for (uint e = t; e < L; e += WG) {
		float g = dout[base + e] * (P[5] == 1 ? gamma[c0 + e / S] : 1.0);
		sg += g;
		sgx += g * (x[base + e] - mean) * rstd;
	}
	float mg = wgSum(sg) / float(L);
	float mgx = wgSum(sgx) / float(L);
	for (uint e = t; e < L; e += WG) {
		float g = dout[base + e] * (P[5] == 1 ? gamma[c0 + e / S] : 1.0);
		dx[base + e] = rstd * (g - mg - (x[base + e] - mean) * rstd * mgx);
	}
}
