// conv2d_backward_weight: dw as an implicit GEMM over the whole batch:
// dw[co, j] = sum_k dout(co, k) * x(k, j) with k = (z, oy, ox) and
// j = (ci, ky, kx): dout(co, k) = dout[z, co, oy, ox] and x(k, j) =
// x[z, ci, oy*s - padTop + ky, ox*s - padLeft + kx] (0 outside).
// P[0] = Cout, P[1] = Cin*kh*kw, P[2] = N*Ho*Wo, P[3] = Cin, P[4] = H,
// P[5] = W, P[6] = kh, P[7] = kw, P[8] = stride, P[9] = padTop,
// P[10] = padLeft, P[11] = Ho, P[12] = Wo, P[13] = the K of one split:
// work group z sums K slice z (split-K; the grid's z is the split count)
// into dw partial z, (splits, Cout, Cin*kh*kw), which the host reduces.
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer O { float dw[]; };

#define K_RANGE(z, lo, hi) lo = (z) * uint(P[13]); hi = min(K, lo + uint(P[13]));

float loadA(uint z, uint m, uint k) {
	uint hw = uint(P[11] * P[12]);
	uint zz = k / hw, p = k % hw;
	return dout[(zz * uint(P[0]) + m) * hw + p];
}
float loadB(uint z, uint k, uint n) {
	int hw = P[11] * P[12];
	int zz = int(k) / hw, p = int(k) % hw;
	int khw = P[6] * P[7];
	int ci = int(n) / khw, r = int(n) % khw;
	int ky = r / P[7], kx = r % P[7];
	int oy = p / P[12], ox = p % P[12];
	int iy = oy * P[8] - P[9] + ky, ix = ox * P[8] - P[10] + kx;
	if (iy < 0 || ix < 0 || iy >= P[4] || ix >= P[5]) return 0.0;
	return x[((zz * P[3] + ci) * P[4] + iy) * P[5] + ix];
}
void storeC(uint z, uint m, uint n, float v) {
	dw[(z * uint(P[0]) + m) * uint(P[1]) + n] = v;
}
#include "common/gemm.glsl"

void main() { gemm(); }
