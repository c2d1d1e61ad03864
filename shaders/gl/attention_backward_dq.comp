// attention_backward_dq: for each query row i (one invocation), recomputes
// p_ij = exp(scale q_i·k_j - lse_i) tile by tile and accumulates
// dq_i = scale * sum_j p_ij (dout_i·v_j - delta_i) k_j, where
// delta_i = dout_i·out_i; it writes delta for attention_backward_dkv.
// Shapes and P as attention_forward (rows as vec4s, D a multiple of 4);
// bindings q, k, v, dout, out, lse, dq, delta.
#ifndef TK
#define TK 16 // keys a tile; the host lowers it for big heads
#endif
#define D4 (D / 4)
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Q { vec4 q[]; };
layout(std430, binding = 1) readonly buffer K { vec4 k[]; };
layout(std430, binding = 2) readonly buffer V { vec4 v[]; };
layout(std430, binding = 3) readonly buffer DO { vec4 dout[]; };
layout(std430, binding = 4) readonly buffer O { vec4 o[]; };
layout(std430, binding = 5) readonly buffer L { float lse[]; };
layout(std430, binding = 6) writeonly buffer DQ { vec4 dq[]; };
layout(std430, binding = 7) writeonly buffer Dl { float delta[]; };

shared vec4 Ks[TK][D4];
shared vec4 Vs[TK][D4];

void main() {
	uint Nq = uint(P[0]), Nk = uint(P[1]);
	bool causal = P[2] == 1;
	float scale = F[0];
	uint bh = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
	uint i = gl_WorkGroupID.x * 64u + t;
	bool valid = i < Nq;
	uint row = (bh * Nq + i) * uint(D4);
	vec4 qr[D4], dor[D4], acc[D4];
	float dl = 0.0;
	for (uint c = 0u; c < uint(D4); c++) {
		qr[c] = valid ? q[row + c] * scale : vec4(0.0);
		dor[c] = valid ? dout[row + c] : vec4(0.0);
		dl += valid ? dot(dor[c], o[row + c]) : 0.0;
		acc[c] = vec4(0.0);
	}
	float li = valid ? lse[bh * Nq + i] : 0.0;
	uint kEnd = causal ? min(Nk, gl_WorkGroupID.x * 64u + 64u) : Nk;
	for (uint j0 = 0u; j0 < kEnd; j0 += uint(TK)) {
		for (uint e = t; e < uint(TK * D4); e += 64u) {
			uint jj = e / uint(D4), c = e % uint(D4), j = j0 + jj;
			Ks[jj][c] = j < Nk ? k[(bh * Nk + j) * uint(D4) + c] : vec4(0.0);
			Vs[jj][c] = j < Nk ? v[(bh * Nk + j) * uint(D4) + c] : vec4(0.0);
		}
		barrier();
		if (valid) {
			uint jn = min(uint(TK), Nk - j0);
			if (causal) jn = min(jn, i + 1u - min(i + 1u, j0));
			for (uint jj = 0u; jj < jn; jj++) {
				float s = 0.0, dp = 0.0;
				for (uint c = 0u; c < uint(D4); c++) {
					s += dot(qr[c], Ks[jj][c]);
					dp += dot(dor[c], Vs[jj][c]);
				}
				float ds = exp(s - li) * (dp - dl);
				for (uint c = 0u; c < uint(D4); c++) acc[c] += ds * Ks[jj][c];
			}
		}
		barrier();
	}
	if (!valid) return;
	for (uint c = 0u; c < uint(D4); c++) dq[row + c] = acc[c] * scale;
	delta[bh * Nq + i] = dl;
}
