// copy: dst[dstOff + walk(i, dstStrides)] = src[srcOff + walk(i, srcStrides)]
// for every index i of a rank-6 iteration space. It is permute, slice,
// concat, split, broadcast and nearest 2x upsampling (a stride of 0 repeats).
// P[0] = n elements, P[1..6] = shape, P[7..12] = src strides, P[13] = src
// offset, P[14..19] = dst strides, P[20] = dst offset.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Src { float src[]; };
layout(std430, binding = 1) writeonly buffer Dst { float dst[]; };
#include "common/index.glsl"

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	dst[uint(P[20]) + offsetOf(i, 1, 14)] = src[uint(P[13]) + offsetOf(i, 1, 7)];
}
