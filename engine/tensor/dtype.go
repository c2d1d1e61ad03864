package tensor

import "fmt"

// DType is the element type of a tensor's storage.
type DType uint8

const (
	// F32 is IEEE 754 binary32; all activations and gradients use it.
	F32 DType = iota
	// F16 is IEEE 754 binary16, used for packed weights.
	F16
	// BF16 is bfloat16 (the top half of a binary32), used for packed weights.
	BF16
)

// String returns the dtype's lower-case name: "f32", "f16" or "bf16".
func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case BF16:
		return "bf16"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Size returns the number of bytes one element occupies.
func (d DType) Size() int {
	if d == F32 {
		return 4
	}
	return 2
}

// Valid reports whether d is one of F32, F16 and BF16.
func (d DType) Valid() bool { return d <= BF16 }
