package tensor

import (
	"errors"
	"fmt"
)

var (
	// ErrFreed is wrapped by errors about a tensor used after Free.
	ErrFreed = errors.New("tensor used after free")
	// ErrShape is wrapped by errors about incompatible or invalid shapes.
	ErrShape = errors.New("shape mismatch")
	// ErrDType is wrapped by errors about an unsupported dtype.
	ErrDType = errors.New("unsupported dtype")
	// ErrBackend is wrapped by errors about a tensor owned by another backend.
	ErrBackend = errors.New("tensor belongs to another backend")
	// ErrArg is wrapped by errors about an invalid non-tensor argument.
	ErrArg = errors.New("invalid argument")
	// ErrClosed is wrapped by errors about a backend used after Close.
	ErrClosed = errors.New("backend closed")
)

// OpError is the error every op returns: the op's name, a message with the
// shapes or dtypes involved, and the sentinel it wraps.
type OpError struct {
	Op  string // the op, e.g. "matmul" or "conv2d backward"
	Msg string // what is wrong, with shapes, e.g. "a is (2, 3), b is (4, 5)"
	Err error  // one of ErrShape, ErrDType, ErrFreed, ErrBackend, ErrArg, ErrClosed, or a backend error
}

// Error formats the error as "op: message".
func (e *OpError) Error() string {
	if e.Msg == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return e.Op + ": " + e.Msg
}

// Unwrap returns the wrapped sentinel.
func (e *OpError) Unwrap() error { return e.Err }

// Errorf returns an *OpError for op wrapping kind with a formatted message.
func Errorf(op string, kind error, format string, args ...any) error {
	return &OpError{Op: op, Err: kind, Msg: fmt.Sprintf(format, args...) + " (" + kind.Error() + ")"}
}
