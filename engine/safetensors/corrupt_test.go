package safetensors

import (
	"encoding/binary"
	"lorastudio/engine/internal/fixtures"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawFile builds a file image from a header string and a data section.
func rawFile(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestCorruptHeaders(t *testing.T) {
	data32 := make([]byte, 32)
	lenOnly := func(n uint64, rest string) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, n)
		return append(b, rest...)
	}
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty file", nil, "too short"},
		{"short length", []byte{1, 2, 3}, "too short"},
		{"absurd length", lenOnly(1<<40, "{}"), "exceeds the 100000000-byte limit"},
		{"length past end", lenOnly(100, "{}"), "header length 100 exceeds the file"},
		{"zero length", lenOnly(0, ""), "empty header"},
		{"not json", rawFile("hello", nil), "does not start with '{'"},
		{"truncated json", rawFile(`{"x":{"dtype":"F32"`, nil), "not valid JSON"},
		{"array header", rawFile(`[1,2]`, nil), "does not start with '{'"},
		{"trailing garbage", rawFile(`{}xx`, nil), "trailing data"},
		{"invalid utf8", rawFile("{\"\xff\":1}", nil), "UTF-8"},
		{"duplicate name", rawFile(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, data32), `names "x" twice`},
		{"entry not object", rawFile(`{"x":5}`, data32), `tensor "x": entry is 5, not an object`},
		{"unknown dtype", rawFile(`{"x":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}`, data32), `unknown dtype "F12"`},
		{"dtype not string", rawFile(`{"x":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, data32), "dtype is 4"},
		{"missing dtype", rawFile(`{"x":{"shape":[1],"data_offsets":[0,4]}}`, data32), "missing dtype"},
		{"missing shape", rawFile(`{"x":{"dtype":"F32","data_offsets":[0,4]}}`, data32), "missing shape"},
		{"missing offsets", rawFile(`{"x":{"dtype":"F32","shape":[1]}}`, data32), "missing data_offsets"},
		{"unknown field", rawFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}`, data32), `unknown field "extra"`},
		{"negative dim", rawFile(`{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, data32), "-1 is not a non-negative integer"},
		{"fractional dim", rawFile(`{"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, data32), "1.5 is not"},
		{"shape not array", rawFile(`{"x":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}`, data32), "not an array"},
		{"one offset", rawFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, data32), "not a pair"},
		{"three offsets", rawFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, data32), "not a pair"},
		{"begin after end", rawFile(`{"x":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, data32), "end before they begin"},
		{"past data", rawFile(`{"x":{"dtype":"F32","shape":[10],"data_offsets":[0,40]}}`, data32), `tensor "x": data_offsets [0, 40] exceed the data section (32 bytes)`},
		{"huge offset", rawFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551616]}}`, data32), "not a pair"},
		{"size mismatch", rawFile(`{"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}`, data32), "needs 24 bytes but data_offsets [0, 16] hold 16"},
		{"overflowing shape", rawFile(`{"x":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}}`, data32), "too large"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, data32), `"a" [0, 8] and "b" [4, 12] overlap`},
		{"same range", rawFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, data32), "overlap"},
		{"metadata not object", rawFile(`{"__metadata__":[1]}`, nil), "__metadata__ is not a JSON object"},
		{"metadata number", rawFile(`{"__metadata__":{"format":1}}`, nil), `__metadata__ "format" is 1, not a string`},
		{"metadata null value", rawFile(`{"__metadata__":{"format":null}}`, nil), "not a string"},
		{"metadata nested", rawFile(`{"__metadata__":{"a":{"b":"c"}}}`, nil), "not a string"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "model.safetensors")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatalf("Open succeeded on a corrupt file")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "safetensors: model.safetensors: ") || !strings.Contains(msg, c.want) {
				t.Fatalf("error %q, want it to name the file and contain %q", msg, c.want)
			}
		})
	}
}

func TestAcceptedHeaders(t *testing.T) {
	data := make([]byte, 16)
	for _, c := range []struct {
		name, header string
		tensors      int
	}{
		{"empty object", `{}`, 0},
		{"padded", `{}      `, 0},
		{"null metadata", `{"__metadata__":null}`, 0},
		{"gap between tensors", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[8,10]}}`, 2},
		{"zero-size tensors", `{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"c":{"dtype":"F32","shape":[3,0],"data_offsets":[16,16]}}`, 3},
		{"any key order", `{"a":{"data_offsets":[0,1],"shape":[],"dtype":"BOOL"}}`, 1},
	} {
		h, err := parseFile("x.safetensors", rawFile(c.header, data))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(h.tensors) != c.tensors {
			t.Errorf("%s: %d tensors, want %d", c.name, len(h.tensors), c.tensors)
		}
	}
}

// TestTruncatedFixture cuts a real file at many lengths: every cut is a clear
// error, never a panic.
func TestTruncatedFixture(t *testing.T) {
	src := filepath.Join(fixtures.Root(t), "model", "vae", "diffusion_pytorch_model.safetensors")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(binary.LittleEndian.Uint64(raw))
	dir := t.TempDir()
	for _, n := range []int{0, 1, 7, 8, 9, 100, hlen, hlen + 7, hlen + 8, hlen + 9, len(raw) / 2, len(raw) - 1} {
		path := filepath.Join(dir, "cut.safetensors")
		if err := os.WriteFile(path, raw[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err == nil {
			f.Close()
			t.Errorf("Open of the first %d of %d bytes succeeded", n, len(raw))
			continue
		}
		if !strings.Contains(err.Error(), "cut.safetensors") {
			t.Errorf("cut at %d: error %q does not name the file", n, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "absent.safetensors")); err == nil || !strings.Contains(err.Error(), "absent.safetensors") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open(dir); err == nil {
		t.Error("Open of a directory succeeded")
	}
}
