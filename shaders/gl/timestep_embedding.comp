// timestep_embedding: t is (N); out (N, dim). With half = dim/2 and
// f_i = exp(-ln(10000) i / (half - shift)), out[n, i] = sin(t f_i) and
// out[n, half + i] = cos(t f_i), halves swapped when FLIP (P[3]) is 1; an
// odd dim leaves the last column 0.
// P[0] = N*dim, P[1] = dim, P[2] = half, P[3] = flip. F[0] = shift.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer T { float t[]; };
layout(std430, binding = 1) writeonly buffer O { float o[]; };

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	int dim = P[1], half_ = P[2];
	int n = int(i) / dim, c = int(i) % dim;
	if (c >= 2 * half_) { o[i] = 0.0; return; }
	int k = c < half_ ? c : c - half_;
	bool first = c < half_;
	float freq = exp(-9.210340371976184 * float(k) / (float(half_) - F[0]));
	float a = t[n] * freq;
	bool useSin = (P[3] == 1) ? !first : first;
	o[i] = useSin ? sin(a) : cos(a);
}
