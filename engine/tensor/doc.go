// Package tensor defines the engine's data model and the contract every
// compute backend implements: Tensor, Shape, DType and the Backend interface.
//
// # Ownership
//
// A Tensor is a shape, a dtype and a buffer owned by exactly one Backend (the
// one that created it). Ops accept only tensors of their own backend; passing a
// tensor from another backend is an error (ErrBackend), never a silent copy.
// Move data between backends with Download and Upload.
//
// Every op returns new tensors; inputs are never modified. The caller owns what
// an op returns and must release it with Free when done. Device memory is not
// garbage collected: a Tensor that is dropped without Free keeps its buffer
// until the Backend is closed.
//
// # Freeing
//
// Free releases the tensor's reference to its buffer. Reshape returns a view
// that shares the buffer; the buffer is released when the last tensor that
// shares it is freed. A second Free of the same Tensor, or passing a freed
// tensor to any op, returns an error wrapping ErrFreed; it never crashes and
// never computes on released memory.
//
// # DTypes
//
// Activations and gradients are F32. Weights may be stored packed as F16 or
// BF16 (half the memory); ops that take a weight operand (MatMul's b, Conv2D's
// w) accept F16/BF16 there and unpack in the kernel. All arithmetic accumulates
// in float32. Any other operand with a non-F32 dtype is an error wrapping
// ErrDType. Cast converts between dtypes with round-to-nearest-even.
//
// # Errors
//
// Ops validate their inputs before computing and return an *OpError that names
// the op and the offending shapes or dtypes, wrapping one of the sentinel
// errors (ErrShape, ErrDType, ErrFreed, ErrBackend, ErrArg) so callers can test
// with errors.Is. Backends never panic on bad input. The shape-inference
// helpers in this package (MatMulShape, Conv2DShape, BroadcastShapes, ...) are
// shared by all backends so they agree on what is valid and on the messages.
//
// # Gradients
//
// Every differentiable op has a Backward method beside it that takes the
// gradient of the output (dout, the same shape as the output) and the forward
// inputs, recomputes what it needs, and returns gradients shaped like the
// inputs. Backward methods with weights take a GradMask so a frozen weight's
// gradient is never computed; gradients not requested come back nil.
package tensor
