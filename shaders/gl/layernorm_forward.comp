// layernorm_forward: per row of x (R, C): mean, biased variance (two
// passes), out = (x - mean) * rsqrt(var + eps) (* gamma[c] + beta[c]).
// P[0] = R, P[1] = C, P[2] = 1 with affine. F[0] = eps.
#define WG 64
layout(local_size_x = WG) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer G { float gamma[]; };
layout(std430, binding = 2) readonly buffer Bt { float beta[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
#include "common/wgsum.glsl"

void main() {
	uint r = GROUP;
	if (r >= uint(P[0])) return;
	uint C = uint(P[1]), t = gl_LocalInvocationID.x, base = r * C;
	float s = 0.0;
	for (uint c = t; c < C; c += WG) s += x[base + c];
	float mean = wgSum(s) / float(C);
	float v = 0.0;
	for (uint c = t; c < C; c += WG) { float d = x[base + c] - mean; v += d * d; }
	float rstd = inversesqrt(wgSum(v) / float(C) + F[0]);
	for (uint c = t; c < C; c += WG) {
		float h = (x[base + c] - mean) * rstd;
		if (P[2] == 1) h = h * gamma[c] + beta[c];
		o[base + c] = h;
	}
}
