// gemm.glsl: the tiled product C[z] = A[z] · B[z] shared by matmul and the
// convolutions. The including kernel defines loadA(z, m, k), loadB(z, k, n)
// and storeC(z, m, n, v) (so a convolution gathers its operand implicitly,
// with no im2col buffer), with P[0] = M, P[1] = N, P[2] = K; z is the
// work group's z. A 16x16 work group computes a TILE x TILE tile of C
// (TILE = 16 * GEMM_TM): each invocation keeps a GEMM_TM x GEMM_TM block of
// accumulators in registers. Variants (defines, chosen by the host):
//   GEMM_REG 1: no shared memory or barriers (CPU rasterizers), TM 8;
//   GEMM_REG 0: the K loop stages GEMM_BK-deep slices of A and B in shared
//   memory, TM 4 / BK 16 (64x64 tiles) or TM 8 / BK 8 (128x128 tiles, for
//   big products on GPUs); 8 KiB of shared memory either way.
// Accumulation is fp32.
layout(local_size_x = 16, local_size_y = 16) in;

#ifndef GEMM_TM
#define GEMM_TM 4
#endif
#ifndef GEMM_BK
#define GEMM_BK 16
#endif
#define TILE (16u * uint(GEMM_TM))

// K_RANGE(z, lo, hi) sets the slice [lo, hi) of K this work group sums; a
// kernel that splits K over z (split-K, for products with few tiles and a
// long K) defines it.
#ifndef K_RANGE
#define K_RANGE(z, lo, hi) lo = 0u; hi = K;
#endif

#if GEMM_REG
// Register-only variant for CPU rasterizers (llvmpipe), where barrier() is
// costly: each invocation streams its own rows of A and columns of B.
void gemm() {
	uint M = uint(P[0]), N = uint(P[1]), K = uint(P[2]);
	uint z = gl_WorkGroupID.z;
	uint m0 = gl_WorkGroupID.y * TILE + gl_LocalInvocationID.y;
	uint n0 = gl_WorkGroupID.x * TILE + gl_LocalInvocationID.x;
	if (m0 >= M || n0 >= N) return;
	float acc[GEMM_TM][GEMM_TM];
	for (int i = 0; i < GEMM_TM; i++)
		for (int j = 0; j < GEMM_TM; j++) acc[i][j] = 0.0;
	uint mi[GEMM_TM], nj[GEMM_TM];
	for (uint i = 0u; i < uint(GEMM_TM); i++) {
		mi[i] = min(m0 + 16u * i, M - 1u);
		nj[i] = min(n0 + 16u * i, N - 1u);
	}
	uint kLo, kHi;
	K_RANGE(z, kLo, kHi)
	for (uint k = kLo; k < kHi; k++) {
		float a[GEMM_TM], b[GEMM_TM];
		for (uint i = 0u; i < uint(GEMM_TM); i++) a[i] = loadA(z, mi[i], k);
		for (uint j = 0u; j < uint(GEMM_TM); j++) b[j] = loadB(z, k, nj[j]);
		for (uint i = 0u; i < uint(GEMM_TM); i++)
			for (uint j = 0u; j < uint(GEMM_TM); j++) acc[i][j] += a[i] * b[j];
	}
	for (uint i = 0u; i < uint(GEMM_TM); i++) {
		uint m = m0 + 16u * i;
		if (m >= M) continue;
		for (uint j = 0u; j < uint(GEMM_TM); j++) {
			uint n = n0 + 16u * j;
			if (n < N) storeC(z, m, n, acc[i][j]);
		}
	}
}
#else
// As is padded by one column so the transposing stores hit distinct banks.
shared float As[GEMM_BK][TILE + 1u];
shared float Bs[GEMM_BK][TILE];

void gemm() {
	uint M = uint(P[0]), N = uint(P[1]), K = uint(P[2]);
	uint z = gl_WorkGroupID.z;
	uint m0 = gl_WorkGroupID.y * TILE, n0 = gl_WorkGroupID.x * TILE;
	uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
	uint tid = ty * 16u + tx;
	float acc[GEMM_TM][GEMM_TM];
	for (int i = 0; i < GEMM_TM; i++)
		for (int j = 0; j < GEMM_TM; j++) acc[i][j] = 0.0;
	uint kLo, kHi;
	K_RANGE(z, kLo, kHi)
	for (uint k0 = kLo; k0 < kHi; k0 += uint(GEMM_BK)) {
		for (uint r = 0u; r < TILE * uint(GEMM_BK) / 256u; r++) {
			uint e = tid + 256u * r;
			uint ka = e % uint(GEMM_BK), ma = e / uint(GEMM_BK);
			uint gm = m0 + ma, gka = k0 + ka;
			As[ka][ma] = (gm < M && gka < kHi) ? loadA(z, gm, gka) : 0.0;
			uint nb = e % TILE, kb = e / TILE;
			uint gn = n0 + nb, gkb = k0 + kb;
			Bs[kb][nb] = (gn < N && gkb < kHi) ? loadB(z, gkb, gn) : 0.0;
		}
		barrier();
		for (uint kk = 0u; kk < uint(GEMM_BK); kk++) {
			float a[GEMM_TM], b[GEMM_TM];
			for (uint i = 0u; i < uint(GEMM_TM); i++) a[i] = As[kk][ty + 16u * i];
			for (uint j = 0u; j < uint(GEMM_TM); j++) b[j] = Bs[kk][tx + 16u * j];
			for (uint i = 0u; i < uint(GEMM_TM); i++)
				for (uint j = 0u; j < uint(GEMM_TM); j++) acc[i][j] += a[i] * b[j];
		}
		barrier();
	}
	for (uint i = 0u; i < uint(GEMM_TM); i++) {
		uint m = m0 + ty + 16u * i;
		if (m >= M) continue;
		for (uint j = 0u; j < uint(GEMM_TM); j++) {
			uint n = n0 + tx + 16u * j;
			if (n < N) storeC(z, m, n, acc[i][j]);
		}
	}
}
#endif
