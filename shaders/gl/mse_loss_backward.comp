// mse_loss_backward: dpred[i] = dout[0] * 2 (pred[i] - target[i]) / n.
// P[0] = elements in this dispatch, P[1] = n (the whole tensor).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer D { float dout[]; };
layout(std430, binding = 1) readonly buffer A { float pred[]; };
layout(std430, binding = 2) readonly buffer B { float target[]; };
layout(std430, binding = 3) writeonly buffer O { float dpred[]; };

void main() {
	uint i = GID;
	if (i >= uint(P[0])) return;
	dpred[i] = dout[0] * 2.0 * (pred[i] - target[i]) / float(P[1]);
}
