// attention_backward_dkv: for each key row j (one invocation), walks the
// queries in tiles staged in shared memory and accumulates
// dv_j = sum_i p_ij dout_i and dk_j = scale * sum_i p_ij (dout_i·v_j - delta_i) q_i
// with p_ij recomputed from lse. With causal only queries i >= j count.
// Rows as vec4s (D a multiple of 4).
// P[0] = Nq, P[1] = Nk, P[2] = causal. F[0] = scale. Groups: (Nk/64, BH).
// Bindings q, k, v, dout, lse, delta, dk, dv.
#ifndef TQ
#define TQ 16 // queries a tile; the host lowers it for big heads
#endif
#define D4 (D / 4)
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Q { vec4 q[]; };
layout(std430, binding = 1) readonly buffer K { vec4 k[]; };
layout(std430, binding = 2) readonly buffer V { vec4 v[]; };
layout(std430, binding = 3) readonly buffer DO { vec4 dout[]; };
layout(std430, binding = 4) readonly buffer L { float lse[]; };
layout(std430, binding = 5) readonly buffer Dl { float delta[]; };
layout(std430, binding = 6) writeonly buffer DK { vec4 dk[]; };
layout(std430, binding = 7) writeonly buffer DV { vec4 dv[]; };

shared vec4 Qs[TQ][D4];
shared vec4 Ds[TQ][D4];
shared float Ls[TQ];
shared float Es[TQ];

void main() {
	uint Nq = uint(P[0]), Nk = uint(P[1]);
	bool causal = P[2] == 1;
	float scale = F[0];
	uint bh = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
	uint j = gl_WorkGroupID.x * 64u + t;
	bool valid = j < Nk;
	uint row = (bh * Nk + j) * uint(D4);
	vec4 kr[D4], vr[D4], adk[D4], adv[D4];
	for (uint c = 0u; c < uint(D4); c++) {
		kr[c] = valid ? k[row + c] * scale : vec4(0.0);
		vr[c] = valid ? v[row + c] : vec4(0.0);
		adk[c] = vec4(0.0);
		adv[c] = vec4(0.0);
	}
	uint iStart = causal ? (gl_WorkGroupID.x * 64u) / uint(TQ) * uint(TQ) : 0u;
	for (uint i0 = iStart; i0 < Nq; i0 += uint(TQ)) {
		for (uint e = t; e < uint(TQ * D4); e += 64u) {
			uint ii = e / uint(D4), c = e % uint(D4), i = i0 + ii;
			Qs[ii][c] = i < Nq ? q[(bh * Nq + i) * uint(D4) + c] : vec4(0.0);
			Ds[ii][c] = i < Nq ? dout[(bh * Nq + i) * uint(D4) + c] : vec4(0.0);
		}
		for (uint ii = t; ii < uint(TQ); ii += 64u) {
			uint i = i0 + ii;
			Ls[ii] = i < Nq ? lse[bh * Nq + i] : 0.0;
			Es[ii] = i < Nq ? delta[bh * Nq + i] : 0.0;
		}
		barrier();
		if (valid) {
			uint in_ = min(uint(TQ), Nq - i0);
			for (uint ii = 0u; ii < in_; ii++) {
				if (causal && i0 + ii < j) continue;
				float s = 0.0, dp = 0.0;
				for (uint c = 0u; c < uint(D4); c++) {
					s += dot(Qs[ii][c], kr[c]);
					dp += dot(Ds[ii][c], vr[c]);
				}
				float p = exp(s - Ls[ii]);
				float ds = p * (dp - Es[ii]);
				for (uint c = 0u; c < uint(D4); c++) {
					adv[c] += p * Ds[ii][c];
					adk[c] += ds * Qs[ii][c];
				}
			}
		}
		barrier();
	}
	if (!valid) return;
	for (uint c = 0u; c < uint(D4); c++) {
		dk[row + c] = adk[c] * scale;
		dv[row + c] = adv[c];
	}
}
