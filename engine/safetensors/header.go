package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header accepted, as in the reference
// implementation (100 MB).
const MaxHeaderSize = 100_000_000

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType DType
	// Shape is the tensor's dimensions; an empty shape is a scalar.
	Shape []int
	// Offset is the position of the tensor's first byte from the start of the
	// file (8 + header length + the header's begin offset).
	Offset int64
	// Size is the tensor's length in bytes (elements × dtype size).
	Size int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// header is a parsed and validated file header.
type header struct {
	tensors  []TensorInfo // in the order of their data offsets
	metadata map[string]string
	dataOff  int64 // start of the data section in the file
}

// parseFile validates the framing and header of a complete safetensors image
// (the 8-byte length, the JSON header, the data section). name is the file's
// name, used in errors. It never panics on any input.
func parseFile(name string, file []byte) (*header, error) {
	if len(file) < 8 {
		return nil, fmt.Errorf("safetensors: %s: file is %d bytes, too short for the 8-byte header length", name, len(file))
	}
	n := binary.LittleEndian.Uint64(file[:8])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: %s: header length %d exceeds the %d-byte limit (not a safetensors file?)", name, n, MaxHeaderSize)
	}
	if n > uint64(len(file)-8) {
		return nil, fmt.Errorf("safetensors: %s: header length %d exceeds the file (%d bytes after the length): truncated file?", name, n, len(file)-8)
	}
	dataOff := 8 + int64(n)
	h, err := parseHeader(file[8:dataOff], int64(len(file))-dataOff)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", name, err)
	}
	h.dataOff = dataOff
	for i := range h.tensors {
		h.tensors[i].Offset += dataOff
	}
	return h, nil
}

// parseHeader validates a JSON header against a data section of dataLen
// bytes. Offsets in the result are relative to the data section.
func parseHeader(hdr []byte, dataLen int64) (*header, error) {
	if len(hdr) == 0 {
		return nil, fmt.Errorf("empty header")
	}
	if hdr[0] != '{' {
		return nil, fmt.Errorf("header does not start with '{' (not a safetensors file?)")
	}
	if !utf8.Valid(hdr) {
		return nil, fmt.Errorf("header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // the opening '{'
		return nil, fmt.Errorf("header is not valid JSON: %v", err)
	}
	h := &header{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("header is not valid JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("header is not valid JSON: object key %v is not a string", tok)
		}
		if seen[key] {
			return nil, fmt.Errorf("header names %q twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("header is not valid JSON at %q: %v", key, err)
		}
		if key == "__metadata__" {
			if err := parseMetadata(raw, &h.metadata); err != nil {
				return nil, err
			}
			continue
		}
		t, err := parseEntry(key, raw, dataLen)
		if err != nil {
			return nil, err
		}
		h.tensors = append(h.tensors, t)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("header is not valid JSON: %v", err)
	}
	// Only whitespace (the reference pads with spaces) may follow the object.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("header has trailing data after the JSON object")
	}
	if h.metadata == nil {
		h.metadata = map[string]string{}
	}
	// Byte ranges may leave gaps but must not overlap.
	sort.SliceStable(h.tensors, func(i, j int) bool {
		a, b := h.tensors[i], h.tensors[j]
		if a.Offset != b.Offset {
			return a.Offset < b.Offset
		}
		return a.Size < b.Size
	})
	for i := 1; i < len(h.tensors); i++ {
		prev, cur := h.tensors[i-1], h.tensors[i]
		if cur.Offset < prev.Offset+prev.Size {
			return nil, fmt.Errorf("tensors %q [%d, %d] and %q [%d, %d] overlap",
				prev.Name, prev.Offset, prev.Offset+prev.Size, cur.Name, cur.Offset, cur.Offset+cur.Size)
		}
	}
	return h, nil
}

func parseMetadata(raw json.RawMessage, out *map[string]string) error {
	if string(raw) == "null" {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("__metadata__ is not a JSON object of strings")
	}
	m := make(map[string]string, len(obj))
	for k, v := range obj {
		var s string
		if err := json.Unmarshal(v, &s); err != nil || (len(v) > 0 && v[0] != '"') {
			return fmt.Errorf("__metadata__ %q is %s, not a string", k, abbreviate(v))
		}
		m[k] = s
	}
	*out = m
	return nil
}

// parseEntry validates one tensor entry: exactly the keys dtype, shape and
// data_offsets, a known dtype, a byte range inside the data section whose
// length is elements × dtype size.
func parseEntry(name string, raw json.RawMessage, dataLen int64) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	fail := func(format string, args ...any) (TensorInfo, error) {
		return TensorInfo{}, fmt.Errorf("tensor %q: %s", name, fmt.Sprintf(format, args...))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return fail("entry is %s, not an object", abbreviate(raw))
	}
	for k := range fields {
		if k != "dtype" && k != "shape" && k != "data_offsets" {
			return fail("unknown field %q", k)
		}
	}
	var dt string
	if v, ok := fields["dtype"]; !ok {
		return fail("missing dtype")
	} else if err := json.Unmarshal(v, &dt); err != nil {
		return fail("dtype is %s, not a string", abbreviate(v))
	}
	t.DType = DType(dt)
	if !t.DType.Valid() {
		return fail("unknown dtype %q", dt)
	}
	shapeRaw, ok := fields["shape"]
	if !ok {
		return fail("missing shape")
	}
	shape, err := parseUints(shapeRaw)
	if err != nil {
		return fail("shape %s: %v", abbreviate(shapeRaw), err)
	}
	offRaw, ok := fields["data_offsets"]
	if !ok {
		return fail("missing data_offsets")
	}
	offs, err := parseUints(offRaw)
	if err != nil || len(offs) != 2 {
		return fail("data_offsets %s is not a pair of non-negative integers", abbreviate(offRaw))
	}
	begin, end := offs[0], offs[1]
	if begin > end {
		return fail("data_offsets [%d, %d] end before they begin", begin, end)
	}
	if end > uint64(dataLen) {
		return fail("data_offsets [%d, %d] exceed the data section (%d bytes)", begin, end, dataLen)
	}
	// elements × dtype size, with overflow detection; it must equal end-begin.
	size := uint64(t.DType.Size())
	t.Shape = make([]int, len(shape))
	overflow := false
	for i, d := range shape {
		hi, lo := bits.Mul64(size, d)
		if hi != 0 || lo > 1<<62 {
			overflow = true
		}
		size = lo
		if d > 1<<62 {
			overflow = true
		}
		t.Shape[i] = int(d)
	}
	if overflow {
		return fail("shape %v is too large", shape)
	}
	if size != end-begin {
		return fail("shape %v of %s needs %d bytes but data_offsets [%d, %d] hold %d", shape, dt, size, begin, end, end-begin)
	}
	t.Offset = int64(begin)
	t.Size = int64(size)
	return t, nil
}

// parseUints parses a JSON array of non-negative integers.
func parseUints(raw json.RawMessage) ([]uint64, error) {
	var nums []json.Number
	if err := json.Unmarshal(raw, &nums); err != nil || (nums == nil && string(raw) == "null") {
		return nil, fmt.Errorf("not an array of integers")
	}
	out := make([]uint64, len(nums))
	for i, n := range nums {
		v, err := strconv.ParseUint(n.String(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a non-negative integer", n)
		}
		out[i] = v
	}
	return out, nil
}

// abbreviate shortens a JSON value for an error message.
func abbreviate(raw []byte) string {
	const max = 40
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	return string(raw)
}
