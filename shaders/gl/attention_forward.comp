// attention_forward: fused scaled-dot-product attention, flash-attention
// style. q is (BH, Nq, D), k and v (BH, Nk, D); out (BH, Nq, D) and lse
// (BH, Nq) = log sum_j exp(scale q_i·k_j). Each invocation owns one query
// row and keeps a running max, sum and output accumulator (online softmax)
// while the work group walks the keys in tiles of TK staged in shared
// memory: the (Nq, Nk) score matrix never exists. With causal (P[2] = 1)
// query i sees keys j <= i. D (the head size) is a define.
// P[0] = Nq, P[1] = Nk, P[2] = causal. F[0] = scale. Groups: (Nq/64, BH).
#ifndef TK
#define TK 16 // keys a tile; the host lowers it for big heads
#endif
#define NEG -1.0e30
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
layout(std430, binding = 4) writeonly buffer L { float lse[]; };

shared float Ks[TK][D];
shared float Vs[TK][D];

void main() {
	uint Nq = uint(P[0]), Nk = uint(P[1]);
	bool causal = P[2] == 1;
	float scale = F[0];
	uint bh = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
	uint i = gl_WorkGroupID.x * 64u + t;
	bool valid = i < Nq;
	float qr[D], acc[D];
	for (uint d = 0u; d < uint(D); d++) {
		qr[d] = valid ? q[(bh * Nq + i) * uint(D) + d] : 0.0;
		acc[d] = 0.0;
	}
	float m = NEG, l = 0.0;
	uint kEnd = causal ? min(Nk, gl_WorkGroupID.x * 64u + 64u) : Nk;
	for (uint j0 = 0u; j0 < kEnd; j0 += uint(TK)) {
		for (uint e = t; e < uint(TK * D); e += 64u) {
			uint jj = e / uint(D), d = e % uint(D), j = j0 + jj;
			Ks[jj][d] = j < Nk ? k[(bh * Nk + j) * uint(D) + d] : 0.0;
			Vs[jj][d] = j < Nk ? v[(bh * Nk + j) * uint(D) + d] : 0.0;
		}
		barrier();
		if (valid) {
			float s[TK];
			bool seen[TK];
			float mt = m;
			for (uint jj = 0u; jj < uint(TK); jj++) {
				uint j = j0 + jj;
				seen[jj] = j < Nk && (!causal || j <= i);
				float dot = 0.0;
				if (seen[jj]) {
					for (uint d = 0u; d < uint(D); d++) dot += qr[d] * Ks[jj][d];
					mt = max(mt, dot * scale);
				}
				s[jj] = dot * scale;
			}
			float corr = exp(m - mt);
			l *= corr;
			for (uint d = 0u; d < uint(D); d++) acc[d] *= corr;
			for (uint jj = 0u; jj < uint(TK); jj++) {
				if (!seen[jj]) continue;
				float p = exp(s[jj] - mt);
				l += p;
				for (uint d = 0u; d < uint(D); d++) acc[d] += p * Vs[jj][d];
			}
			m = mt;
		}
		barrier();
	}
	if (!valid) return;
	for (uint d = 0u; d < uint(D); d++) o[(bh * Nq + i) * uint(D) + d] = acc[d] / l;
	lse[bh * Nq + i] = m + log(l);
}
