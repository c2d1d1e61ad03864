package sdxl

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/safetensors"
)

// sourceBits reads parameters of src as fp16 bits.
func sourceBits(src *Source) Float16Func {
	return func(comp, name string) ([]uint16, error) {
		r, err := src.Tensor(comp, name)
		if err != nil {
			return nil, err
		}
		return r.Float16Bits()
	}
}

// leftovers lists the hidden temporary entries in dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestWriteSingleFileLikeReference writes the fixture model, read from its
// diffusers folder and from its single file, as a single file: every key the
// layout reads holds the bytes of the fixture's single file (the reference's
// own conversion), fused and transposed keys included.
func TestWriteSingleFileLikeReference(t *testing.T) {
	root := fixtures.Root(t)
	folder := filepath.Join(root, "model")
	ref, err := safetensors.Open(filepath.Join(root, "sdxl-tiny.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, from := range []string{folder, filepath.Join(root, "sdxl-tiny.safetensors")} {
		src, err := OpenSource(from, WithConfigDir(folder))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		dir := t.TempDir()
		out := filepath.Join(dir, "merged.safetensors")
		if err := WriteSingleFile(out, src.Config(), sourceBits(src), map[string]string{"note": "test"}); err != nil {
			t.Fatal(err)
		}
		if l := leftovers(t, dir); len(l) > 0 {
			t.Errorf("temporary files left: %v", l)
		}
		got, err := safetensors.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if got.Metadata()["note"] != "test" {
			t.Errorf("metadata %v", got.Metadata())
		}
		layout, _ := SingleFileLayout(src.Config())
		keys := map[string]bool{}
		for _, r := range layout {
			keys[r.Key] = true
		}
		if len(got.Names()) != len(keys) {
			t.Errorf("%d keys written, the layout reads %d", len(got.Names()), len(keys))
		}
		fused, transposed := 0, 0
		for _, r := range layout {
			if r.RowEnd > 0 {
				fused++
			}
			if r.Transpose {
				transposed++
			}
		}
		if fused == 0 || transposed == 0 {
			t.Fatalf("the fixture layout has %d fused and %d transposed parameters: the test would not cover them", fused, transposed)
		}
		for k := range keys {
			gi, _ := got.Tensor(k)
			ri, ok := ref.Tensor(k)
			if !ok {
				t.Fatalf("the fixture single file lacks %s", k)
			}
			gb, err := got.Bytes(k)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := ref.Bytes(k)
			if err != nil {
				t.Fatal(err)
			}
			if gi.DType != safetensors.F16 || !slices.Equal(gi.Shape, ri.Shape) || (ri.DType == safetensors.F16 && !bytes.Equal(gb, rb)) {
				t.Errorf("from %s: key %s: %s %v differs from the reference's %s %v", filepath.Base(from), k, gi.DType, gi.Shape, ri.DType, ri.Shape)
			}
		}
		got.Close()
		back, err := OpenSource(out, WithConfigDir(folder))
		if err != nil {
			t.Fatal(err)
		}
		if err := back.Check(); err != nil {
			t.Error(err)
		}
		back.Close()
	}
}

// TestWriteDiffusersFolder writes the fixture folder again: configs and
// tokenizers copied byte for byte, every parameter the same, the folder
// appearing whole under its name; an existing folder is refused, and a
// failing read leaves nothing behind.
func TestWriteDiffusersFolder(t *testing.T) {
	folder := fixtures.Path(t, "model")
	src, err := OpenSource(folder)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	parent := t.TempDir()
	out := filepath.Join(parent, "merged")
	if err := WriteDiffusersFolder(out, folder, src.Config(), sourceBits(src)); err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, parent); len(l) > 0 {
		t.Errorf("temporary entries left: %v", l)
	}
	for _, name := range []string{"model_index.json", "unet/config.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json", "tokenizer_2/merges.txt", "text_encoder_2/config.json"} {
		a, err := os.ReadFile(filepath.Join(folder, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s not copied (%v)", name, err)
		}
	}
	back, err := OpenSource(out)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if err := back.Check(); err != nil {
		t.Error(err)
	}
	for _, comp := range Components {
		for _, p := range src.Params(comp) {
			a, _ := sourceBits(src)(comp, p.Name)
			b, err := sourceBits(back)(comp, p.Name)
			if err != nil || !slices.Equal(a, b) {
				t.Fatalf("%s %s differs after the copy (%v)", comp, p.Name, err)
			}
		}
	}
	if err := WriteDiffusersFolder(out, folder, src.Config(), sourceBits(src)); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("writing over an existing folder: %v", err)
	}
	broken := errors.New("disk on fire")
	fail := func(comp, name string) ([]uint16, error) {
		if comp == VAE {
			return nil, broken
		}
		return sourceBits(src)(comp, name)
	}
	out2 := filepath.Join(parent, "second")
	if err := WriteDiffusersFolder(out2, folder, src.Config(), fail); !errors.Is(err, broken) {
		t.Errorf("a failing read: %v", err)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("a failed write left %s (%v)", out2, err)
	}
	if err := WriteSingleFile(filepath.Join(parent, "x.safetensors"), src.Config(), fail, nil); !errors.Is(err, broken) {
		t.Errorf("a failing read: %v", err)
	}
	if l := leftovers(t, parent); len(l) > 0 {
		t.Errorf("failed writes left %v", l)
	}
	if _, err := os.Stat(filepath.Join(parent, "x.safetensors")); !os.IsNotExist(err) {
		t.Error("a failed single-file write left its file")
	}
}
