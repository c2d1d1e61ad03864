// add: out[i] = a[i] + b[i] over n elements (the trivial kernel that proves
// the pipeline; broadcasting adds live in binary.comp).
// P[0] = n
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	o[i] = a[i] + b[i];
}
