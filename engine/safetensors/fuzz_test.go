package safetensors

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParseHeader feeds whole file images to the parser: it must never panic,
// and whatever it accepts must be self-consistent and survive re-encoding.
func FuzzParseHeader(f *testing.F) {
	f.Add(rawFile(`{"__metadata__":{"format":"pt"},"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 16)))
	f.Add(rawFile(`{"x":{"dtype":"F32","shape":[10],"data_offsets":[0,40]}}`, make([]byte, 32)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'})
	f.Fuzz(func(t *testing.T, file []byte) {
		h, err := parseFile("fuzz.safetensors", file)
		if err != nil {
			if h != nil {
				t.Fatal("header returned with an error")
			}
			return
		}
		var ts []Tensor
		end := h.dataOff
		for _, info := range h.tensors {
			if info.Offset < end {
				t.Fatalf("tensor %q at %d overlaps the previous one ending at %d", info.Name, info.Offset, end)
			}
			end = info.Offset + info.Size
			if end > int64(len(file)) {
				t.Fatalf("tensor %q ends at %d past the file (%d)", info.Name, end, len(file))
			}
			if int64(info.DType.Size())*info.NumElements() != info.Size {
				t.Fatalf("tensor %q: size %d does not match %v × %s", info.Name, info.Size, info.Shape, info.DType)
			}
			ts = append(ts, Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: file[info.Offset:end]})
		}
		enc, err := Encode(ts, h.metadata)
		if err != nil {
			t.Fatalf("re-encoding an accepted header failed: %v", err)
		}
		h2, err := parseFile("again.safetensors", enc)
		if err != nil {
			t.Fatalf("re-encoded file rejected: %v", err)
		}
		if len(h2.tensors) != len(h.tensors) || !reflect.DeepEqual(h2.metadata, h.metadata) {
			t.Fatalf("re-encoded header differs: %d/%d tensors", len(h2.tensors), len(h.tensors))
		}
		for i, a := range h.tensors {
			b := h2.tensors[i]
			if a.Name != b.Name || a.DType != b.DType || !reflect.DeepEqual(a.Shape, b.Shape) || a.Size != b.Size {
				t.Fatalf("tensor %d: %+v became %+v", i, a, b)
			}
			if !bytes.Equal(file[a.Offset:a.Offset+a.Size], enc[b.Offset:b.Offset+b.Size]) {
				t.Fatalf("tensor %q data changed", a.Name)
			}
		}
	})
}
