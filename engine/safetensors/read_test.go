package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"lorastudio/engine/half"
	"lorastudio/engine/internal/fixtures"
)

// plainHeader decodes a file's header with encoding/json alone: an independent
// reading to compare Open against.
func plainHeader(t *testing.T, path string) (map[string]struct {
	Dtype       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}, int64) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(binary.LittleEndian.Uint64(raw))
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &all); err != nil {
		t.Fatal(err)
	}
	delete(all, "__metadata__")
	out := map[string]struct {
		Dtype       string  `json:"dtype"`
		Shape       []int   `json:"shape"`
		DataOffsets []int64 `json:"data_offsets"`
	}{}
	for k, v := range all {
		e := out[k]
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatal(err)
		}
		out[k] = e
	}
	return out, 8 + n
}

func fixtureFiles(t *testing.T) []string {
	root := fixtures.Root(t)
	files := []string{filepath.Join(root, "sdxl-tiny.safetensors")}
	for _, p := range []string{"unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
		"text_encoder/model.safetensors", "text_encoder_2/model.safetensors"} {
		files = append(files, filepath.Join(root, "model", p))
	}
	return files
}

func TestOpenFixtures(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want, dataOff := plainHeader(t, path)
			names := f.Names()
			if len(names) != len(want) || len(names) == 0 {
				t.Fatalf("%d names, header has %d", len(names), len(want))
			}
			if !sort.StringsAreSorted(names) {
				t.Error("Names not sorted")
			}
			for _, name := range names {
				info, ok := f.Tensor(name)
				w := want[name]
				if !ok || string(info.DType) != w.Dtype || !reflect.DeepEqual(info.Shape, w.Shape) ||
					info.Offset != dataOff+w.DataOffsets[0] || info.Size != w.DataOffsets[1]-w.DataOffsets[0] {
					t.Fatalf("%s: got %+v, header says %+v", name, info, w)
				}
				b, err := f.Bytes(name)
				if err != nil || int64(len(b)) != info.Size {
					t.Fatalf("%s: Bytes: %d bytes, %v", name, len(b), err)
				}
			}
			if _, ok := f.Tensor("no.such.tensor"); ok {
				t.Error("Tensor found a missing name")
			}
			if _, err := f.Bytes("no.such.tensor"); err == nil || !strings.Contains(err.Error(), "no.such.tensor") {
				t.Errorf("Bytes of a missing name: %v", err)
			}
		})
	}
}

// TestFixtureShapesMatchConfig checks the text encoder's embeddings against the
// widths its config.json declares.
func TestFixtureShapesMatchConfig(t *testing.T) {
	root := fixtures.Root(t)
	for _, te := range []string{"text_encoder", "text_encoder_2"} {
		var cfg struct {
			VocabSize   int `json:"vocab_size"`
			HiddenSize  int `json:"hidden_size"`
			MaxPosition int `json:"max_position_embeddings"`
		}
		raw, err := os.ReadFile(filepath.Join(root, "model", te, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		f, err := Open(filepath.Join(root, "model", te, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		tok, ok := f.Tensor("text_model.embeddings.token_embedding.weight")
		if !ok || !reflect.DeepEqual(tok.Shape, []int{cfg.VocabSize, cfg.HiddenSize}) {
			t.Errorf("%s token_embedding %+v, config says [%d %d]", te, tok, cfg.VocabSize, cfg.HiddenSize)
		}
		pos, ok := f.Tensor("text_model.embeddings.position_embedding.weight")
		if !ok || !reflect.DeepEqual(pos.Shape, []int{cfg.MaxPosition, cfg.HiddenSize}) {
			t.Errorf("%s position_embedding %+v, config says [%d %d]", te, pos, cfg.MaxPosition, cfg.HiddenSize)
		}
		if f.Metadata()["format"] != "pt" {
			t.Errorf("%s metadata %v, want format=pt", te, f.Metadata())
		}
		// Float32 and Float16Bits of an F16 tensor agree with its raw bytes.
		b, _ := f.Bytes(tok.Name)
		f32, err := f.Float32(tok.Name)
		if err != nil {
			t.Fatal(err)
		}
		bitsOut, err := f.Float16Bits(tok.Name)
		if err != nil {
			t.Fatal(err)
		}
		nonzero := 0
		for i := range f32 {
			h := binary.LittleEndian.Uint16(b[2*i:])
			if bitsOut[i] != h || f32[i] != half.Float16ToFloat32(h) {
				t.Fatalf("element %d: bits %#04x f32 %v, raw %#04x", i, bitsOut[i], f32[i], h)
			}
			if f32[i] != 0 {
				nonzero++
			}
		}
		if nonzero < len(f32)/2 {
			t.Errorf("%s: only %d of %d weights non-zero", te, nonzero, len(f32))
		}
		f.Close()
	}
}

// TestFixtureRoundTrip re-encodes every fixture from what Open read: the bytes
// must come back identical (same JSON layout and padding as the reference).
func TestFixtureRoundTrip(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var infos []TensorInfo
		for _, n := range f.Names() {
			info, _ := f.Tensor(n)
			infos = append(infos, info)
		}
		sort.Slice(infos, func(i, j int) bool { return infos[i].Offset < infos[j].Offset })
		var ts []Tensor
		for _, info := range infos {
			b, _ := f.Bytes(info.Name)
			ts = append(ts, Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: b})
		}
		out := filepath.Join(t.TempDir(), "copy.safetensors")
		if err := Write(out, ts, f.Metadata()); err != nil {
			t.Fatal(err)
		}
		f.Close()
		a, _ := os.ReadFile(path)
		b, _ := os.ReadFile(out)
		if !bytes.Equal(a, b) {
			n := 0
			for n < len(a) && n < len(b) && a[n] == b[n] {
				n++
			}
			t.Errorf("%s: round trip differs at byte %d (%d vs %d bytes)", path, n, len(a), len(b))
		}
	}
}

func le16(v []uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func le32(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func TestWriteReadDTypes(t *testing.T) {
	vals := []float32{0, 1, -2.5, 3.140625, 1e-6, -65504, 70000, float32(math.Inf(-1)), 1.0009765625, 0.333333}
	f16 := make([]uint16, len(vals))
	bf16 := make([]uint16, len(vals))
	for i, v := range vals {
		f16[i] = half.Float32ToFloat16(v)
		bf16[i] = half.Float32ToBFloat16(v)
	}
	i64 := make([]byte, 8*3)
	for i, v := range []int64{-1, 1 << 40, 7} {
		binary.LittleEndian.PutUint64(i64[8*i:], uint64(v))
	}
	f64 := make([]byte, 8*2)
	binary.LittleEndian.PutUint64(f64, math.Float64bits(0.1))
	binary.LittleEndian.PutUint64(f64[8:], math.Float64bits(-3))
	ts := []Tensor{
		{Name: "z.f32", DType: F32, Shape: []int{2, 5}, Data: le32(vals)},
		{Name: "a.f16", DType: F16, Shape: []int{10}, Data: le16(f16)},
		{Name: "m.bf16", DType: BF16, Shape: []int{5, 2, 1}, Data: le16(bf16)},
		{Name: "ids", DType: I64, Shape: []int{3}, Data: i64},
		{Name: "f64", DType: F64, Shape: []int{2}, Data: f64},
		{Name: "i8", DType: I8, Shape: []int{2}, Data: []byte{0xff, 5}},
		{Name: "u8", DType: U8, Shape: []int{2}, Data: []byte{0xff, 5}},
		{Name: "i16", DType: I16, Shape: []int{1}, Data: []byte{0xfe, 0xff}},
		{Name: "i32", DType: I32, Shape: []int{1}, Data: []byte{0xfd, 0xff, 0xff, 0xff}},
		{Name: "mask", DType: Bool, Shape: []int{3}, Data: []byte{1, 0, 1}},
		{Name: "scalar", DType: F32, Shape: []int{}, Data: le32([]float32{42})},
		{Name: "empty", DType: F32, Shape: []int{0, 4}, Data: nil},
		{Name: "quote\"and\\slash\nname é", DType: U8, Shape: []int{1}, Data: []byte{9}},
	}
	meta := map[string]string{"format": "pt", "ss_note": "line\nbreak \"quoted\" ü", "a": ""}
	path := filepath.Join(t.TempDir(), "all.safetensors")
	if err := Write(path, ts, meta); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.Metadata(), meta) {
		t.Errorf("metadata %v, want %v", f.Metadata(), meta)
	}
	raw, _ := os.ReadFile(path)
	hlen := binary.LittleEndian.Uint64(raw)
	if hlen%8 != 0 {
		t.Errorf("header length %d not padded to 8", hlen)
	}
	// Tensors lie in the order given.
	var prev int64 = -1
	for _, tt := range ts {
		info, ok := f.Tensor(tt.Name)
		if !ok || info.DType != tt.DType || !reflect.DeepEqual(info.Shape, tt.Shape) || info.Offset < prev {
			t.Fatalf("%q: %+v ok=%v", tt.Name, info, ok)
		}
		prev = info.Offset
		b, err := f.Bytes(tt.Name)
		if err != nil || !bytes.Equal(b, tt.Data) {
			t.Fatalf("%q: bytes %v %v, want %v", tt.Name, b, err, tt.Data)
		}
	}
	check := func(name string, want []float32) {
		t.Helper()
		got, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", name, got, want)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	check("z.f32", vals)
	wantF16 := make([]float32, len(vals))
	wantBF16 := make([]float32, len(vals))
	for i := range vals {
		wantF16[i] = half.Float16ToFloat32(f16[i])
		wantBF16[i] = half.BFloat16ToFloat32(bf16[i])
	}
	check("a.f16", wantF16)
	check("m.bf16", wantBF16)
	check("ids", []float32{-1, 1 << 40, 7})
	check("f64", []float32{0.1, -3})
	check("i8", []float32{-1, 5})
	check("u8", []float32{255, 5})
	check("i16", []float32{-2})
	check("i32", []float32{-3})
	check("mask", []float32{1, 0, 1})
	check("scalar", []float32{42})
	check("empty", []float32{})

	// fp16 bits: F16 as stored; F32 and BF16 rounded to nearest even.
	for _, c := range []struct {
		name string
		want func(i int) uint16
	}{
		{"a.f16", func(i int) uint16 { return f16[i] }},
		{"z.f32", func(i int) uint16 { return half.Float32ToFloat16(vals[i]) }},
		{"m.bf16", func(i int) uint16 { return half.Float32ToFloat16(half.BFloat16ToFloat32(bf16[i])) }},
	} {
		got, err := f.Float16Bits(c.name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != c.want(i) {
				t.Fatalf("Float16Bits(%s)[%d] = %#04x, want %#04x", c.name, i, got[i], c.want(i))
			}
		}
	}
	if got, _ := f.Float16Bits("z.f32"); got[6] != 0x7c00 {
		t.Errorf("70000 -> %#04x, want +Inf", got[6])
	}
	if _, err := f.Float16Bits("ids"); err == nil || !strings.Contains(err.Error(), "I64") {
		t.Errorf("Float16Bits of I64: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Bytes("z.f32"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Bytes after Close: %v", err)
	}
}

func TestWriteIsDeterministicAndAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	ts := []Tensor{{Name: "b", DType: F32, Shape: []int{1}, Data: le32([]float32{1})}, {Name: "a", DType: U8, Shape: []int{3}, Data: []byte{1, 2, 3}}}
	meta := map[string]string{"z": "1", "y": "2", "x": "3", "w": "4"}
	if err := Write(path, ts, meta); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	for i := 0; i < 5; i++ {
		again, err := Encode(ts, meta)
		if err != nil || !bytes.Equal(again, first) {
			t.Fatalf("Encode run %d differs from the written file (%v)", i, err)
		}
	}
	want := `{"__metadata__":{"w":"4","x":"3","y":"2","z":"1"},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[3],"data_offsets":[4,7]}}`
	hdr := string(first[8 : 8+binary.LittleEndian.Uint64(first)])
	if strings.TrimRight(hdr, " ") != want {
		t.Errorf("header\n%s\nwant\n%s", hdr, want)
	}
	// A failing write leaves the old file and no temporary behind.
	bad := []Tensor{{Name: "x", DType: F32, Shape: []int{3}, Data: []byte{1}}}
	err := Write(path, bad, nil)
	if err == nil || !strings.Contains(err.Error(), "w.safetensors") || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("bad write error: %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, first) {
		t.Error("a failed write changed the existing file")
	}
	if err := Write(filepath.Join(dir, "missing", "x.safetensors"), ts, nil); err == nil {
		t.Error("write into a missing directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
	for _, c := range []struct {
		ts   []Tensor
		want string
	}{
		{[]Tensor{{Name: "a", DType: F32, Data: le32([]float32{1})}, {Name: "a", DType: F32, Data: le32([]float32{1})}}, "twice"},
		{[]Tensor{{Name: "a", DType: "F12", Data: nil}}, "unknown dtype"},
		{[]Tensor{{Name: "", DType: F32, Shape: []int{}, Data: le32([]float32{1})}}, "invalid tensor name"},
		{[]Tensor{{Name: "__metadata__", DType: F32, Data: le32([]float32{1})}}, "invalid tensor name"},
		{[]Tensor{{Name: "a", DType: F32, Shape: []int{-1}, Data: nil}}, "negative"},
		{[]Tensor{{Name: "a\xff", DType: U8, Shape: []int{1}, Data: []byte{1}}}, "UTF-8"},
	} {
		if _, err := Encode(c.ts, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Encode(%+v): %v, want %q", c.ts, err, c.want)
		}
	}
}
