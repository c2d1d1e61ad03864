// timestep_embedding: t is (N); out (N, dim). With half = dim/2 and the
// frequencies f (half), computed on the host in float32 steps like torch,
// out[n, i] = sin(t f_i) and out[n, half + i] = cos(t f_i), halves swapped
// when flip (P[3]) is 1; an odd dim leaves the last column 0. Arguments
// reach ~1000 rad, so they are reduced modulo 2π in three parts
// (Cody–Waite) before sin and cos.
// P[0] = N*dim, P[1] = dim, P[2] = half, P[3] = flip.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer T { float t[]; };
layout(std430, binding = 1) readonly buffer Fr { float freq[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };

float reduce2pi(float a) {
	const float C1 = 6.28125;                 // 2π split: C1 has 9 bits, so k*C1 is exact
	const float C2 = 1.9353071693331003e-3;
	const float C3 = 1.0253131677018246e-11;
	float k = floor(a * 0.15915494309189535 + 0.5);
	precise float r = a - k * C1;
	r = r - k * C2;
	r = r - k * C3;
	return r;
}

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	int dim = P[1], half_ = P[2];
	int n = int(i) / dim, c = int(i) % dim;
	if (c >= 2 * half_) { o[i] = 0.0; return; }
	bool first = c < half_;
	int k = first ? c : c - half_;
	precise float a = t[n] * freq[k];
	float r = reduce2pi(a);
	bool useSin = (P[3] == 1) ? !first : first;
	o[i] = useSin ? sin(r) : cos(r);
}
