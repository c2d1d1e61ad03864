// attention_backward_dq: for each query row i (one invocation), recomputes
// p_ij = exp(scale q_i·k_j - lse_i) tile by tile and accumulates
// dq_i = scale * sum_j p_ij (dout_i·v_j - delta_i) k_j, where
// delta_i = dout_i·out_i; it writes delta for attention_backward_dkv.
// Shapes and P as attention_forward; bindings q, k, v, dout, out, lse, dq,
// delta.
#ifndef TK
#define TK 16 // keys a tile; the host lowers it for big heads
#endif
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) readonly buffer DO { float dout[]; };
layout(std430, binding = 4) readonly buffer O { float o[]; };
layout(std430, binding = 5) readonly buffer L { float lse[]; };
layout(std430, binding = 6) writeonly buffer DQ { float dq[]; };
layout(std430, binding = 7) writeonly buffer Dl { float delta[]; };

shared float Ks[TK][D];
shared float Vs[TK][D];

void main() {
	uint Nq = uint(P[0]), Nk = uint(P[1]);
	bool causal = P[2] == 1;
	float scale = F[0];
	uint bh = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
	uint i = gl_WorkGroupID.x * 64u + t;
	bool valid = i < Nq;
	uint row = (bh * Nq + i) * uint(D);
	float qr[D], dor[D], acc[D];
	float dl = 0.0;
	for (uint d = 0u; d < uint(D); d++) {
		qr[d] = valid ? q[row + d] : 0.0;
		dor[d] = valid ? dout[row + d] : 0.0;
		dl += valid ? dor[d] * o[row + d] : 0.0;
		acc[d] = 0.0;
	}
	float li = valid ? lse[bh * Nq + i] : 0.0;
	uint kEnd = causal ? min(Nk, gl_WorkGroupID.x * 64u + 64u) : Nk;
	for (uint j0 = 0u; j0 < kEnd; j0 += uint(TK)) {
		for (uint e = t; e < uint(TK * D); e += 64u) {
			uint jj = e / uint(D), d = e % uint(D), j = j0 + jj;
			Ks[jj][d] = j < Nk ? k[(bh * Nk + j) * uint(D) + d] : 0.0;
			Vs[jj][d] = j < Nk ? v[(bh * Nk + j) * uint(D) + d] : 0.0;
		}
		barrier();
		if (valid) {
			for (uint jj = 0u; jj < uint(TK); jj++) {
				uint j = j0 + jj;
				if (j >= Nk || (causal && j > i)) continue;
				float s = 0.0, dp = 0.0;
				for (uint d = 0u; d < uint(D); d++) {
					s += qr[d] * Ks[jj][d];
					dp += dor[d] * Vs[jj][d];
				}
				float p = exp(s * scale - li);
				float ds = p * (dp - dl);
				for (uint d = 0u; d < uint(D); d++) acc[d] += ds * Ks[jj][d];
			}
		}
		barrier();
	}
	if (!valid) return;
	for (uint d = 0u; d < uint(D); d++) dq[row + d] = acc[d] * scale;
	delta[bh * Nq + i] = dl;
}
