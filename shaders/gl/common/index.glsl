// index.glsl: walking a strided iteration space of rank 6 (shapes padded with
// leading 1s by the host). offsetOf returns the element offset of flat index
// i of the space `shape` under the strides `strides`; both are read from P
// starting at the given slots.
uint offsetOf(uint i, int shapeAt, int strideAt) {
	uint off = 0u;
	for (int d = 5; d >= 0; d--) {
		uint n = uint(P[shapeAt + d]);
		uint c = i % n;
		i /= n;
		off += c * uint(P[strideAt + d]);
	}
	return off;
}
