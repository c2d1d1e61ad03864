// conv2d_forward: implicit GEMM. For image z, out[z, co, p] = sum_k
// w[co, k] * x(z, k, p) (+ bias[co]) with k = (ci, ky, kx), p = (oy, ox) and
// x(z, k, p) = x[z, ci, oy*s - padTop + ky, ox*s - padLeft + kx] (0 outside).
// x is (N, Cin, H, W) f32; w is (Cout, Cin, kh, kw), WTYPE 0 f32, 1 f16, 2 bf16.
// P[0] = Cout, P[1] = Ho*Wo, P[2] = Cin*kh*kw, P[3] = Cin, P[4] = H,
// P[5] = W, P[6] = kh, P[7] = kw, P[8] = stride, P[9] = padTop,
// P[10] = padLeft, P[11] = Wo, P[12] = 1 when bias is bound.
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Wt { uint w[]; };
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
#include "common/half.glsl"
#include "common/load.glsl"

float loadA(uint z, uint m, uint k) {
	uint i = m * uint(P[2]) + k;
	return LOAD(w, WTYPE, i);
}
float loadB(uint z, uint k, uint n) {
	int khw = P[6] * P[7];
	int ci = int(k) / khw, r = int(k) % khw;
	int ky = r / P[7], kx = r % P[7];
	int oy = int(n) / P[11], ox = int(n) % P[11];
	int iy = oy * P[8] - P[9] + ky, ix = ox * P[8] - P[10] + kx;
	if (iy < 0 || ix < 0 || iy >= P[4] || ix >= P[5]) return 0.0;
	return x[((int(z) * P[3] + ci) * P[4] + iy) * P[5] + ix];
}
void storeC(uint z, uint m, uint n, float v) {
	if (P[12] == 1) v += bias[m];
	o[(z * uint(P[0]) + m) * uint(P[1]) + n] = v;
}
#include "common/gemm.glsl"

void main() { gemm(); }
