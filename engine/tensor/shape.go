package tensor

import (
	"strconv"
	"strings"
)

// Shape is the size of each dimension, outermost first (row-major).
type Shape []int

// Numel returns the number of elements (1 for a rank-0 shape).
func (s Shape) Numel() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Equal reports whether s and o have the same rank and sizes.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// String formats the shape like (2, 3, 4).
func (s Shape) String() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(d))
	}
	b.WriteByte(')')
	return b.String()
}

// Clone returns a copy of s that shares no memory with it; the copy of a
// rank-0 shape is empty but not nil (nil means "no operand" to MatMulShape
// and Conv2DShape).
func (s Shape) Clone() Shape {
	return append(Shape{}, s...)
}

// Valid reports whether every dimension is at least 1.
func (s Shape) Valid() bool {
	for _, d := range s {
		if d < 1 {
			return false
		}
	}
	return true
}

// Axis resolves a possibly negative axis (-1 is the last) against rank
// len(s); ok is false when it is out of range.
func (s Shape) Axis(axis int) (int, bool) {
	if axis < 0 {
		axis += len(s)
	}
	return axis, axis >= 0 && axis < len(s)
}

// Strides returns the row-major element strides of s.
func (s Shape) Strides() []int {
	st := make([]int, len(s))
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= s[i]
	}
	return st
}
