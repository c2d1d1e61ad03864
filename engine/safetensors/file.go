// Package safetensors reads and writes the safetensors checkpoint format:
// an 8-byte little-endian header length, a JSON header naming every tensor's
// dtype, shape and byte range, then the raw little-endian data.
//
// Files are memory-mapped where the OS allows (a plain read elsewhere), so a
// tensor's bytes are a view into the mapping and weights can stream to a
// device without an fp32 copy of the whole model.
package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"lorastudio/engine/half"
)

// File is an open safetensors file. Its methods are safe for concurrent use
// until Close.
type File struct {
	path     string
	data     []byte // the whole file (mapped or read)
	unmap    func() error
	tensors  map[string]TensorInfo
	names    []string
	metadata map[string]string
}

// Open maps the file at path and validates its header. A corrupt or truncated
// file gives an error naming the file and the problem.
func Open(path string) (*File, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	h, err := parseFile(filepath.Base(path), data)
	if err != nil {
		if unmap != nil {
			unmap()
		}
		return nil, err
	}
	f := &File{path: path, data: data, unmap: unmap, tensors: make(map[string]TensorInfo, len(h.tensors)), metadata: h.metadata}
	for _, t := range h.tensors {
		f.tensors[t.Name] = t
		f.names = append(f.names, t.Name)
	}
	sort.Strings(f.names)
	return f, nil
}

// Path returns the path the file was opened from.
func (f *File) Path() string { return f.path }

// Names returns the tensor names, sorted.
func (f *File) Names() []string { return append([]string(nil), f.names...) }

// Tensor returns the description of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	t, ok := f.tensors[name]
	if ok {
		t.Shape = append(make([]int, 0, len(t.Shape)), t.Shape...)
	}
	return t, ok
}

// Metadata returns a copy of the header's __metadata__ (empty when absent).
func (f *File) Metadata() map[string]string {
	m := make(map[string]string, len(f.metadata))
	for k, v := range f.metadata {
		m[k] = v
	}
	return m
}

// Close releases the mapping. Slices returned by Bytes must not be used after it.
func (f *File) Close() error {
	if f.data == nil {
		return nil
	}
	f.data = nil
	if f.unmap != nil {
		if err := f.unmap(); err != nil {
			return fmt.Errorf("safetensors: %s: unmap: %v", filepath.Base(f.path), err)
		}
	}
	return nil
}

func (f *File) lookup(name string) (TensorInfo, error) {
	if f.data == nil {
		return TensorInfo{}, fmt.Errorf("safetensors: %s: file is closed", filepath.Base(f.path))
	}
	t, ok := f.tensors[name]
	if !ok {
		return TensorInfo{}, fmt.Errorf("safetensors: %s: no tensor %q", filepath.Base(f.path), name)
	}
	return t, nil
}

// Bytes returns the named tensor's raw little-endian data: a read-only view
// into the mapping (no copy), valid until Close.
func (f *File) Bytes(name string) ([]byte, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return f.data[t.Offset : t.Offset+t.Size : t.Offset+t.Size], nil
}

// Float32 returns the named tensor converted to float32 (a new slice). Every
// numeric dtype converts; BOOL gives 0 or 1; 8-bit floats are not supported.
func (f *File) Float32(name string) ([]float32, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	b := f.data[t.Offset : t.Offset+t.Size]
	out, err := ToFloat32(t.DType, b)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: %v", filepath.Base(f.path), name, err)
	}
	return out, nil
}

// Float16Bits returns the named tensor as fp16 bit patterns (a new slice): F16
// as stored, BF16 and F32 rounded to nearest even (out-of-range values become
// ±Inf).
func (f *File) Float16Bits(name string) ([]uint16, error) {
	t, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	b := f.data[t.Offset : t.Offset+t.Size]
	out, err := ToFloat16Bits(t.DType, b)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: tensor %q: %v", filepath.Base(f.path), name, err)
	}
	return out, nil
}

// ToFloat32 converts little-endian data of dtype dt to float32.
func ToFloat32(dt DType, b []byte) ([]float32, error) {
	size := dt.Size()
	if size == 0 {
		return nil, fmt.Errorf("unknown dtype %q", dt)
	}
	if len(b)%size != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of %s elements", len(b), dt)
	}
	n := len(b) / size
	out := make([]float32, n)
	le := binary.LittleEndian
	switch dt {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case F16:
		table := f16Table()
		for i := range out {
			out[i] = table[le.Uint16(b[2*i:])]
		}
	case BF16:
		for i := range out {
			out[i] = half.BFloat16ToFloat32(le.Uint16(b[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	case I64:
		for i := range out {
			out[i] = float32(int64(le.Uint64(b[8*i:])))
		}
	case U64:
		for i := range out {
			out[i] = float32(le.Uint64(b[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = float32(int32(le.Uint32(b[4*i:])))
		}
	case U32:
		for i := range out {
			out[i] = float32(le.Uint32(b[4*i:]))
		}
	case I16:
		for i := range out {
			out[i] = float32(int16(le.Uint16(b[2*i:])))
		}
	case U16:
		for i := range out {
			out[i] = float32(le.Uint16(b[2*i:]))
		}
	case I8:
		for i := range out {
			out[i] = float32(int8(b[i]))
		}
	case U8:
		for i := range out {
			out[i] = float32(b[i])
		}
	case Bool:
		for i := range out {
			if b[i] != 0 {
				out[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("dtype %s cannot be converted to float32", dt)
	}
	return out, nil
}

// f16Table maps every fp16 bit pattern to its float32 value (256 KiB, built
// on first use): a lookup is several times faster than decoding.
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = half.Float16ToFloat32(uint16(i))
	}
	return &t
})

// ToFloat16Bits converts little-endian F16, BF16 or F32 data to fp16 bit
// patterns, rounding to nearest even.
func ToFloat16Bits(dt DType, b []byte) ([]uint16, error) {
	le := binary.LittleEndian
	switch dt {
	case F16, BF16:
		if len(b)%2 != 0 {
			return nil, fmt.Errorf("%d bytes is not a whole number of %s elements", len(b), dt)
		}
		out := make([]uint16, len(b)/2)
		for i := range out {
			out[i] = le.Uint16(b[2*i:])
		}
		if dt == BF16 {
			for i, v := range out {
				out[i] = half.Float32ToFloat16(half.BFloat16ToFloat32(v))
			}
		}
		return out, nil
	case F32:
		if len(b)%4 != 0 {
			return nil, fmt.Errorf("%d bytes is not a whole number of F32 elements", len(b))
		}
		out := make([]uint16, len(b)/4)
		for i := range out {
			out[i] = half.Float32ToFloat16(math.Float32frombits(le.Uint32(b[4*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("dtype %s cannot be converted to fp16 (F16, BF16 or F32 only)", dt)
}

// readWhole reads a file into memory: the fallback where mapping is unavailable.
func readWhole(path string) ([]byte, func() error, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %v", err)
	}
	return data, nil, nil
}
