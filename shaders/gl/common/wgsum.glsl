// wgsum.glsl: work-group reductions over WG invocations (a power of two the
// kernel defines, equal to local_size_x). Every invocation must call them.
shared float red_[WG];

float wgSum(float v) {
	uint t = gl_LocalInvocationID.x;
	barrier();
	red_[t] = v;
	barrier();
	for (uint w = uint(WG) / 2u; w > 0u; w >>= 1) {
		if (t < w) red_[t] += red_[t + w];
		barrier();
	}
	float r = red_[0];
	barrier();
	return r;
}

float wgMax(float v) {
	uint t = gl_LocalInvocationID.x;
	barrier();
	red_[t] = v;
	barrier();
	for (uint w = uint(WG) / 2u; w > 0u; w >>= 1) {
		if (t < w) red_[t] = max(red_[t], red_[t + w]);
		barrier();
	}
	float r = red_[0];
	barrier();
	return r;
}
