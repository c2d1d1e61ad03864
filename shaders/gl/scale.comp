// scale: out[i] = F[0] * x[i] + F[1] (Scale, AddScalar). P[0] = n.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer O { float o[]; };

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	o[i] = F[0] * x[i] + F[1];
}
