// attention_backward_dkv: for each key row j (one invocation), walks the
// queries in tiles staged in shared memory and accumulates
// dv_j = sum_i p_ij dout_i and dk_j = scale * sum_i p_ij (dout_i·v_j - delta_i) q_i
// with p_ij recomputed from lse. With causal only queries i >= j count.
// P[0] = Nq, P[1] = Nk, P[2] = causal. F[0] = scale. Groups: (Nk/64, BH).
// Bindings q, k, v, dout, lse, delta, dk, dv.
#ifndef TQ
#define TQ 16 // queries a tile; the host lowers it for big heads
#endif
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) readonly buffer DO { float dout[]; };
layout(std430, binding = 4) readonly buffer L { float lse[]; };
layout(std430, binding = 5) readonly buffer Dl { float delta[]; };
layout(std430, binding = 6) writeonly buffer DK { float dk[]; };
layout(std430, binding = 7) writeonly buffer DV { float dv[]; };

shared float Qs[TQ][D];
shared float Ds[TQ][D];
shared float Ls[TQ];
shared float Es[TQ];

void main() {
	uint Nq = uint(P[0]), Nk = uint(P[1]);
	bool causal = P[2] == 1;
	float scale = F[0];
	uint bh = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
	uint j = gl_WorkGroupID.x * 64u + t;
	bool valid = j < Nk;
	uint row = (bh * Nk + j) * uint(D);
	float kr[D], vr[D], adk[D], adv[D];
	for (uint d = 0u; d < uint(D); d++) {
		kr[d] = valid ? k[row + d] : 0.0;
		vr[d] = valid ? v[row + d] : 0.0;
		adk[d] = 0.0;
		adv[d] = 0.0;
	}
	uint iStart = causal ? (gl_WorkGroupID.x * 64u) / uint(TQ) * uint(TQ) : 0u;
	for (uint i0 = iStart; i0 < Nq; i0 += uint(TQ)) {
		for (uint e = t; e < uint(TQ * D); e += 64u) {
			uint ii = e / uint(D), d = e % uint(D), i = i0 + ii;
			Qs[ii][d] = i < Nq ? q[(bh * Nq + i) * uint(D) + d] : 0.0;
			Ds[ii][d] = i < Nq ? dout[(bh * Nq + i) * uint(D) + d] : 0.0;
		}
		for (uint ii = t; ii < uint(TQ); ii += 64u) {
			uint i = i0 + ii;
			Ls[ii] = i < Nq ? lse[bh * Nq + i] : 0.0;
			Es[ii] = i < Nq ? delta[bh * Nq + i] : 0.0;
		}
		barrier();
		if (valid) {
			for (uint ii = 0u; ii < uint(TQ); ii++) {
				uint i = i0 + ii;
				if (i >= Nq || (causal && i < j)) continue;
				float s = 0.0, dp = 0.0;
				for (uint d = 0u; d < uint(D); d++) {
					s += Qs[ii][d] * kr[d];
					dp += Ds[ii][d] * vr[d];
				}
				float p = exp(s * scale - Ls[ii]);
				float ds = p * (dp - Es[ii]);
				for (uint d = 0u; d < uint(D); d++) {
					adv[d] += p * Ds[ii][d];
					adk[d] += ds * Qs[ii][d];
				}
			}
		}
		barrier();
	}
	if (!valid) return;
	for (uint d = 0u; d < uint(D); d++) {
		dk[row + d] = adk[d] * scale;
		dv[row + d] = adv[d];
	}
}
