// geglu_backward: dout is (R, F), x (R, 2F); dx[r, j] = dout * f(g) and
// dx[r, F + j] = dout * h * f'(g) with h = x[r, j], g = x[r, F + j].
// P[0] = R*F, P[1] = F.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer O { float dx[]; };
#include "common/act.glsl"

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	uint f = uint(P[1]);
	uint r = i / f, j = i % f;
	uint h = r * 2u * f + j;
	float hv = x[h], g = x[h + f], d = dout[i];
	dx[h] = d * actF(g);
	dx[h + f] = d * hv * actD(g);
}
