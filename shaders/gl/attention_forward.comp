// attention_forward: fused scaled-dot-product attention, flash-attention
// style. q is (BH, Nq, D), k and v (BH, Nk, D); out (BH, Nq, D) and lse
// (BH, Nq) = log sum_j exp(scale q_i·k_j). Each invocation owns one query
// row and keeps a running max, sum and output accumulator (online softmax)
// while the work group walks the keys in tiles of TK staged in shared
// memory: the (Nq, Nk) score matrix never exists. With causal (P[2] = 1)
// query i sees keys j <= i. D (the head size, a multiple of 4) is a define;
// rows are handled as vec4s.
// P[0] = Nq, P[1] = Nk, P[2] = causal. F[0] = scale. Groups: (Nq/64, BH).
#ifndef TK
#define TK 16 // keys a tile; the host lowers it for big heads
#endif
#define D4 (D / 4)
#define NEG -1.0e30
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Q { vec4 q[]; };
layout(std430, binding = 1) readonly buffer K { vec4 k[]; };
layout(std430, binding = 2) readonly buffer V { vec4 v[]; };
layout(std430, binding = 3) writeonly buffer O { vec4 o[]; };
layout(std430, binding = 4) writeonly buffer L { float lse[]; };

shared vec4 Ks[TK][D4];
shared vec4 Vs[TK][D4];

void main() {
	uint Nq = uint(P[0]), Nk = uint(P[1]);
	bool causal = P[2] == 1;
	float scale = F[0];
	uint bh = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
	uint i = gl_WorkGroupID.x * 64u + t;
	bool valid = i < Nq;
	vec4 qr[D4], acc[D4];
	for (uint c = 0u; c < uint(D4); c++) {
		qr[c] = valid ? q[(bh * Nq + i) * uint(D4) + c] * scale : vec4(0.0);
		acc[c] = vec4(0.0);
	}
	float m = NEG, l = 0.0;
	uint kEnd = causal ? min(Nk, gl_WorkGroupID.x * 64u + 64u) : Nk;
	for (uint j0 = 0u; j0 < kEnd; j0 += uint(TK)) {
		for (uint e = t; e < uint(TK * D4); e += 64u) {
			uint jj = e / uint(D4), c = e % uint(D4), j = j0 + jj;
			Ks[jj][c] = j < Nk ? k[(bh * Nk + j) * uint(D4) + c] : vec4(0.0);
			Vs[jj][c] = j < Nk ? v[(bh * Nk + j) * uint(D4) + c] : vec4(0.0);
		}
		barrier();
		if (valid) {
			float s[TK];
			float mt = m;
			uint jn = min(uint(TK), Nk - j0);
			if (causal) jn = min(jn, i + 1u - min(i + 1u, j0));
			for (uint jj = 0u; jj < jn; jj++) {
				float dt = 0.0;
				for (uint c = 0u; c < uint(D4); c++) dt += dot(qr[c], Ks[jj][c]);
				s[jj] = dt;
				mt = max(mt, dt);
			}
			if (jn > 0u) {
				float corr = exp(m - mt);
				l *= corr;
				for (uint c = 0u; c < uint(D4); c++) acc[c] *= corr;
				for (uint jj = 0u; jj < jn; jj++) {
					float p = exp(s[jj] - mt);
					l += p;
					for (uint c = 0u; c < uint(D4); c++) acc[c] += p * Vs[jj][c];
				}
				m = mt;
			}
		}
		barrier();
	}
	if (!valid) return;
	for (uint c = 0u; c < uint(D4); c++) o[(bh * Nq + i) * uint(D4) + c] = acc[c] / l;
	lse[bh * Nq + i] = m + log(l);
}
