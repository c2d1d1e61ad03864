// gemm.glsl: the tiled product C[z] = A[z] · B[z] shared by matmul and the
// convolutions. The including kernel defines loadA(z, m, k), loadB(z, k, n)
// and storeC(z, m, n, v) (so a convolution gathers its operand implicitly,
// with no im2col buffer), with P[0] = M, P[1] = N, P[2] = K; z is the
// work group's z. A 16x16 work group computes a 64x64 tile of C: each
// invocation keeps a 4x4 block of accumulators in registers and the K loop
// stages 16-deep slices of A and B in shared memory (8 KiB, well under
// llvmpipe's 32 KiB). Accumulation is fp32.
layout(local_size_x = 16, local_size_y = 16) in;

#if GEMM_REG
// Register-only variant for CPU rasterizers (llvmpipe), where barrier() is
// costly: each invocation streams its own rows of A and columns of B.
void gemm() {
	uint M = uint(P[0]), N = uint(P[1]), K = uint(P[2]);
	uint z = gl_WorkGroupID.z;
	uint m0 = gl_WorkGroupID.y * 64u + gl_LocalInvocationID.y;
	uint n0 = gl_WorkGroupID.x * 64u + gl_LocalInvocationID.x;
	if (m0 >= M || n0 >= N) return;
	float acc[4][4];
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++) acc[i][j] = 0.0;
	uint mi[4], nj[4];
	for (uint i = 0u; i < 4u; i++) {
		mi[i] = min(m0 + 16u * i, M - 1u);
		nj[i] = min(n0 + 16u * i, N - 1u);
	}
	for (uint k = 0u; k < K; k++) {
		float a[4], b[4];
		for (uint i = 0u; i < 4u; i++) a[i] = loadA(z, mi[i], k);
		for (uint j = 0u; j < 4u; j++) b[j] = loadB(z, k, nj[j]);
		for (uint i = 0u; i < 4u; i++)
			for (uint j = 0u; j < 4u; j++) acc[i][j] += a[i] * b[j];
	}
	for (uint i = 0u; i < 4u; i++) {
		uint m = m0 + 16u * i;
		if (m >= M) continue;
		for (uint j = 0u; j < 4u; j++) {
			uint n = n0 + 16u * j;
			if (n < N) storeC(z, m, n, acc[i][j]);
		}
	}
}
#else
shared float As[16][64];
shared float Bs[16][64];

void gemm() {
	uint M = uint(P[0]), N = uint(P[1]), K = uint(P[2]);
	uint z = gl_WorkGroupID.z;
	uint m0 = gl_WorkGroupID.y * 64u, n0 = gl_WorkGroupID.x * 64u;
	uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
	uint tid = ty * 16u + tx;
	float acc[4][4];
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++) acc[i][j] = 0.0;
	for (uint k0 = 0u; k0 < K; k0 += 16u) {
		for (uint r = 0u; r < 4u; r++) {
			uint e = tid + 256u * r;
			uint ka = e % 16u, ma = e / 16u;
			uint gm = m0 + ma, gka = k0 + ka;
			As[ka][ma] = (gm < M && gka < K) ? loadA(z, gm, gka) : 0.0;
			uint nb = e % 64u, kb = e / 64u;
			uint gn = n0 + nb, gkb = k0 + kb;
			Bs[kb][nb] = (gn < N && gkb < K) ? loadB(z, gkb, gn) : 0.0;
		}
		barrier();
		for (uint kk = 0u; kk < 16u; kk++) {
			float a[4], b[4];
			for (uint i = 0u; i < 4u; i++) a[i] = As[kk][ty + 16u * i];
			for (uint j = 0u; j < 4u; j++) b[j] = Bs[kk][tx + 16u * j];
			for (uint i = 0u; i < 4u; i++)
				for (uint j = 0u; j < 4u; j++) acc[i][j] += a[i] * b[j];
		}
		barrier();
	}
	for (uint i = 0u; i < 4u; i++) {
		uint m = m0 + ty + 16u * i;
		if (m >= M) continue;
		for (uint j = 0u; j < 4u; j++) {
			uint n = n0 + tx + 16u * j;
			if (n < N) storeC(z, m, n, acc[i][j]);
		}
	}
}
#endif
