// matmul: C[z, m, n] = sum_k A(z, m, k) B(z, k, n) (+ bias[n]), batched over
// z, with any strides (transposes are strides; a shared B has batch stride
// 0). A and B may be packed f16/bf16 (ATYPE, BTYPE defines: 0 f32, 1 f16,
// 2 bf16), unpacked here; C is f32 (z, M, N) contiguous.
// P[0] = M, P[1] = N, P[2] = K, P[3..5] = A strides (batch, m, k),
// P[6..8] = B strides (batch, k, n), P[9] = 1 when bias is bound,
// P[10] = S, the split of K (1: none), P[11] = the K of one split. With
// S > 1, z = batch * S + split and C holds (batch * S, M, N) partial sums
// that the host reduces over the splits.
layout(std430, binding = 0) readonly buffer A { uint a[]; };
layout(std430, binding = 1) readonly buffer B { uint b[]; };
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer C { float c[]; };
#include "common/half.glsl"
#include "common/load.glsl"

#define K_RANGE(z, lo, hi) lo = ((z) % uint(P[10])) * uint(P[11]); hi = min(K, lo + uint(P[11]));

float loadA(uint z, uint m, uint k) {
	uint i = (z / uint(P[10])) * uint(P[3]) + m * uint(P[4]) + k * uint(P[5]);
	return LOAD(a, ATYPE, i);
}
float loadB(uint z, uint k, uint n) {
	uint i = (z / uint(P[10])) * uint(P[6]) + k * uint(P[7]) + n * uint(P[8]);
	return LOAD(b, BTYPE, i);
}
void storeC(uint z, uint m, uint n, float v) {
	if (P[9] == 1) v += bias[n];
	c[(z * uint(P[0]) + m) * uint(P[1]) + n] = v;
}
#include "common/gemm.glsl"

void main() { gemm(); }
