// conv2d_backward_input: dx as an implicit GEMM. For image z,
// dx[z, ci, q] = sum_k w(ci, k) * dout(z, k, q) with k = (co, ky, kx),
// q = (iy, ix): w(ci, k) = w[co, ci, ky, kx] and dout(z, k, q) =
// dout[z, co, (iy + padTop - ky)/s, (ix + padLeft - kx)/s] where that divides
// exactly and lies inside (Ho, Wo), else 0.
// P[0] = Cin, P[1] = H*W, P[2] = Cout*kh*kw, P[3] = Cout, P[4] = H,
// P[5] = W, P[6] = kh, P[7] = kw, P[8] = stride, P[9] = padTop,
// P[10] = padLeft, P[11] = Ho, P[12] = Wo. WTYPE as in conv2d_forward.
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) readonly buffer Wt { uint w[]; };
layout(std430, binding = 2) writeonly buffer O { float dx[]; };
#include "common/half.glsl"
#include "common/load.glsl"

float loadA(uint z, uint m, uint k) {
	uint khw = uint(P[6] * P[7]);
	uint co = k / khw, r = k % khw;
	uint i = (co * uint(P[0]) + m) * khw + r;
	return LOAD(w, WTYPE, i);
}
float loadB(uint z, uint k, uint n) {
	int khw = P[6] * P[7];
	int co = int(k) / khw, r = int(k) % khw;
	int ky = r / P[7], kx = r % P[7];
	int iy = int(n) / P[5], ix = int(n) % P[5];
	int ty = iy + P[9] - ky, tx = ix + P[10] - kx;
	if (ty < 0 || tx < 0) return 0.0;
	int s = P[8];
	if (ty % s != 0 || tx % s != 0) return 0.0;
	int oy = ty / s, ox = tx / s;
	if (oy >= P[11] || ox >= P[12]) return 0.0;
	return dout[((int(z) * P[3] + co) * P[11] + oy) * P[12] + ox];
}
void storeC(uint z, uint m, uint n, float v) {
	dx[(z * uint(P[0]) + m) * uint(P[1]) + n] = v;
}
#include "common/gemm.glsl"

void main() { gemm(); }
