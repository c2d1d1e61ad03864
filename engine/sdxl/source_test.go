package sdxl

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/safetensors"
)

func tinyPaths(t *testing.T) (dir, single string) {
	root := fixtures.Root(t)
	return filepath.Join(root, "model"), filepath.Join(root, "sdxl-tiny.safetensors")
}

// TestSingleFileBytesEqualDiffusers reads every parameter of every component
// from the tiny single file (converted: renamed, q/k/v split, transposed,
// reshaped) and from the diffusers folder, and requires identical bytes.
func TestSingleFileBytesEqualDiffusers(t *testing.T) {
	dir, single := tinyPaths(t)
	d, err := OpenSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, err := OpenSource(single, WithConfigDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d.Format() != FormatDiffusers || s.Format() != FormatSingleFile {
		t.Fatalf("formats %q %q", d.Format(), s.Format())
	}
	if err := d.Check(); err != nil {
		t.Error(err)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
	kinds := map[string]int{}
	for _, comp := range Components {
		dp, sp := d.Params(comp), s.Params(comp)
		if len(dp) == 0 || !slices.EqualFunc(dp, sp, func(a, b Param) bool { return a.Name == b.Name && slices.Equal(a.Shape, b.Shape) }) {
			t.Fatalf("%s: parameter lists differ (%d vs %d)", comp, len(dp), len(sp))
		}
		for _, p := range dp {
			dr, err := d.Tensor(comp, p.Name)
			if err != nil {
				t.Fatal(err)
			}
			sr, err := s.Tensor(comp, p.Name)
			if err != nil {
				t.Fatal(err)
			}
			if dr.DType != safetensors.F16 || sr.DType != safetensors.F16 {
				t.Fatalf("%s %s: dtypes %s %s, want F16 in both", comp, p.Name, dr.DType, sr.DType)
			}
			db, err := dr.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			sb, err := sr.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(db)) != 2*p.NumElements() || !bytes.Equal(db, sb) {
				t.Errorf("%s %s (from %+v): %d bytes vs %d, equal %v", comp, p.Name, sr.Key(), len(db), len(sb), bytes.Equal(db, sb))
			}
			k := sr.Key()
			switch {
			case k.RowEnd > 0:
				kinds["rows"]++
			case k.Transpose:
				kinds["transpose"]++
			case k.Reshape:
				kinds["reshape"]++
			case k.Key != "conditioner.embedders.0.transformer."+p.Name:
				kinds["renamed"]++
			}
		}
	}
	// The conversions really ran on the fixture (a test that cannot fail is a defect).
	tc := s.Config().TextEncoder2
	want := map[string]int{"rows": 6 * tc.NumHiddenLayers, "transpose": 1, "reshape": 8}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s conversions, want %d", kinds[k], k, n)
		}
	}
	if kinds["renamed"] == 0 {
		t.Error("no renamed keys")
	}

	// float32 and fp16 reads of a transposed and a sliced tensor agree too.
	for _, name := range []string{"text_projection.weight", "text_model.encoder.layers.1.self_attn.k_proj.bias"} {
		dr, _ := d.Tensor(TextEncoder2, name)
		sr, _ := s.Tensor(TextEncoder2, name)
		df, err1 := dr.Float32()
		sf, err2 := sr.Float32()
		dh, err3 := dr.Float16Bits()
		sh, err4 := sr.Float16Bits()
		if err := errorsJoin(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(df, sf) || !slices.Equal(dh, sh) || len(df) != int(dr.NumElements()) {
			t.Errorf("%s: float reads differ", name)
		}
	}
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// TestSingleFileDefaultConfigMismatch: the tiny file read with SDXL base's
// sizes fails naming the first key whose shape differs.
func TestSingleFileDefaultConfigMismatch(t *testing.T) {
	_, single := tinyPaths(t)
	_, err := OpenSource(single)
	if err == nil {
		t.Fatal("tiny single file opened with SDXL base sizes")
	}
	for _, want := range []string{single, "key model.diffusion_model.input_blocks.0.0.weight has shape", "SDXL base 1.0 expects [320 4 3 3]", "does not record its sizes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// rewrite copies the tiny single file with edit applied to its tensor list.
func rewrite(t *testing.T, single string, edit func([]safetensors.Tensor) []safetensors.Tensor) string {
	t.Helper()
	f, err := safetensors.Open(single)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		info, _ := f.Tensor(n)
		b, _ := f.Bytes(n)
		ts = append(ts, safetensors.Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: b})
	}
	out := filepath.Join(t.TempDir(), "edited.safetensors")
	if err := safetensors.Write(out, edit(ts), nil); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSourceErrors(t *testing.T) {
	dir, single := tinyPaths(t)

	// Known extras are quiet; an unknown key is named by Check.
	extra := rewrite(t, single, func(ts []safetensors.Tensor) []safetensors.Tensor {
		return append(ts,
			safetensors.Tensor{Name: "conditioner.embedders.0.transformer.text_model.embeddings.position_ids", DType: safetensors.I64, Shape: []int{1, 1}, Data: make([]byte, 8)},
			safetensors.Tensor{Name: "conditioner.embedders.1.model.logit_scale", DType: safetensors.F16, Shape: []int{}, Data: make([]byte, 2)},
			safetensors.Tensor{Name: "model.diffusion_model.extra_head.weight", DType: safetensors.F16, Shape: []int{2}, Data: make([]byte, 4)},
		)
	})
	s, err := OpenSource(extra, WithConfigDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check()
	s.Close()
	if err == nil || !strings.Contains(err.Error(), "1 unknown key: "+extra+": model.diffusion_model.extra_head.weight") {
		t.Errorf("unknown key: %v", err)
	}

	// A missing key is named.
	missing := rewrite(t, single, func(ts []safetensors.Tensor) []safetensors.Tensor {
		return slices.DeleteFunc(ts, func(x safetensors.Tensor) bool { return x.Name == "first_stage_model.post_quant_conv.bias" })
	})
	if _, err := OpenSource(missing, WithConfigDir(dir)); err == nil || !strings.Contains(err.Error(), "1 missing key: first_stage_model.post_quant_conv.bias") {
		t.Errorf("missing key: %v", err)
	}

	// A weight stored as integers fails Check, naming the key.
	ints := rewrite(t, single, func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i, x := range ts {
			if x.Name == "model.diffusion_model.out.2.bias" {
				ts[i].DType = safetensors.I16
			}
		}
		return ts
	})
	if s, err := OpenSource(ints, WithConfigDir(dir)); err != nil {
		t.Error(err)
	} else {
		if err := s.Check(); err == nil || !strings.Contains(err.Error(), "key model.diffusion_model.out.2.bias is I16") {
			t.Errorf("integer weight: %v", err)
		}
		s.Close()
	}

	// A truncated file is named.
	b, err := os.ReadFile(single)
	if err != nil {
		t.Fatal(err)
	}
	trunc := filepath.Join(t.TempDir(), "truncated.safetensors")
	if err := os.WriteFile(trunc, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSource(trunc, WithConfigDir(dir)); err == nil || !strings.Contains(err.Error(), "truncated.safetensors") {
		t.Errorf("truncated: %v", err)
	}

	// A folder missing a component's weights names it.
	partial := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == VAE {
			os.Mkdir(filepath.Join(partial, VAE), 0o755)
			os.Symlink(filepath.Join(dir, VAE, "config.json"), filepath.Join(partial, VAE, "config.json"))
			continue
		}
		if err := os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(partial, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenSource(partial); err == nil || !strings.Contains(err.Error(), filepath.Join(partial, VAE)+": no weights") {
		t.Errorf("missing component: %v", err)
	}

	// Other inputs.
	if _, err := OpenSource(filepath.Join(t.TempDir(), "model.ckpt")); err == nil {
		t.Error("missing file opened")
	}
	ckpt := filepath.Join(t.TempDir(), "model.ckpt")
	os.WriteFile(ckpt, []byte("PK"), 0o644)
	if _, err := OpenSource(ckpt); err == nil || !strings.Contains(err.Error(), "pickle") {
		t.Errorf("pickle: %v", err)
	}
	if _, err := OpenSource(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no model_index.json") {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := OpenSource(single, WithConfigDir(t.TempDir())); err == nil || !strings.Contains(err.Error(), "model_index.json") {
		t.Errorf("bad config dir: %v", err)
	}

	// Lookups of unknown names, and reads after Close (the folder named by its index).
	s, err = OpenSource(filepath.Join(dir, "model_index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tensor("unet", "no.such.weight"); err == nil || !strings.Contains(err.Error(), "no.such.weight") {
		t.Errorf("unknown parameter: %v", err)
	}
	if _, err := s.Tensor("refiner", "conv_in.weight"); err == nil {
		t.Error("unknown component accepted")
	}
	r, err := s.Tensor(UNet, "conv_in.weight")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := r.Bytes(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("read after close: %v", err)
	}
}

// TestFlatVAEAttention: a single file whose VAE attention weights are stored
// as (C, C) instead of 1×1 convs (C, C, 1, 1) reads the same data.
func TestFlatVAEAttention(t *testing.T) {
	dir, single := tinyPaths(t)
	flattened := 0
	flat := rewrite(t, single, func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i, x := range ts {
			if strings.Contains(x.Name, ".mid.attn_1.") && len(x.Shape) == 4 {
				ts[i].Shape = x.Shape[:2]
				flattened++
			}
		}
		return ts
	})
	if flattened != 8 {
		t.Fatalf("flattened %d weights, want 8", flattened)
	}
	a, err := OpenSource(single, WithConfigDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenSource(flat, WithConfigDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	name := "decoder.mid_block.attentions.0.to_out.0.weight"
	ra, _ := a.Tensor(VAE, name)
	rb, _ := b.Tensor(VAE, name)
	ba, err1 := ra.Bytes()
	bb, err2 := rb.Bytes()
	if err := errorsJoin(err1, err2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ba, bb) || !slices.Equal(ra.Shape, rb.Shape) || len(rb.Shape) != 2 {
		t.Errorf("%s: flat and conv forms differ (%v, %v)", name, ra.Shape, rb.Shape)
	}
}
