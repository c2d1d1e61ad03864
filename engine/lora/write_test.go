package lora

import (
	"bytes"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
)

// TestWriteKohyaMatchesReference writes the peft adapter as a kohya file and
// checks it holds exactly the tensors (names, dtypes, shapes, bytes) and
// metadata of the reference's Stability-layout kohya file, then reads back to
// the same layers.
func TestWriteKohyaMatchesReference(t *testing.T) {
	root := fixtures.Root(t)
	cfg := fixtureConfig(t)
	l, err := Open(filepath.Join(root, "lora", "peft"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "written.safetensors")
	if err := WriteKohya(out, l, cfg, safetensors.F16, nil); err != nil {
		t.Fatal(err)
	}
	got, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	ref, err := safetensors.Open(filepath.Join(root, "lora", "kohya_sgm_names.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if !slices.Equal(got.Names(), ref.Names()) {
		t.Fatalf("written %d keys, reference %d (first %q vs %q)", len(got.Names()), len(ref.Names()), got.Names()[0], ref.Names()[0])
	}
	for _, n := range ref.Names() {
		gi, _ := got.Tensor(n)
		ri, _ := ref.Tensor(n)
		if gi.DType != ri.DType || !slices.Equal(gi.Shape, ri.Shape) {
			t.Fatalf("%s: written %s %v, reference %s %v", n, gi.DType, gi.Shape, ri.DType, ri.Shape)
		}
		gb, _ := got.Bytes(n)
		rb, _ := ref.Bytes(n)
		if !bytes.Equal(gb, rb) {
			t.Fatalf("%s: bytes differ from the reference", n)
		}
	}
	if gm, rm := got.Metadata(), ref.Metadata(); !maps.Equal(gm, rm) {
		t.Fatalf("metadata %v, reference %v", gm, rm)
	}
	back, err := Open(out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for k, layer := range l.Layers {
		b := back.Layers[k]
		if b == nil || !slices.Equal(b.Down, layer.Down) || !slices.Equal(b.Up, layer.Up) || b.Scale() != layer.Scale() {
			t.Fatalf("%s did not read back", k)
		}
	}
}

// TestWriteKohyaConvAndTextEncoders round-trips layers of every component
// and a 3×3 convolution at F32, and gives a layer without alpha alpha = rank.
func TestWriteKohyaConvAndTextEncoders(t *testing.T) {
	cfg := fixtureConfig(t)
	l := &LoRA{Layers: map[string]*Layer{}}
	for i, m := range []struct{ component, suffix string }{
		{sdxl.UNet, "resnets.0.conv1.weight"},
		{sdxl.UNet, ".attn2.to_k.weight"},
		{sdxl.TextEncoder, "self_attn.v_proj.weight"},
		{sdxl.TextEncoder2, "mlp.fc1.weight"},
	} {
		module := firstParam(t, cfg, m.component, m.suffix)
		target := paramShape(t, cfg, m.component, module+".weight")
		rank := 2 + i
		layer := &Layer{Component: m.component, Module: module, Rank: rank, Out: target[0], In: prod(target[1:]),
			Down: filled(rank*prod(target[1:]), 0.01*float32(i+1)), Up: filled(target[0]*rank, 0.02), TargetShape: target,
			Alpha: float32(i), HasAlpha: i%2 == 0}
		l.Layers[layer.Key()] = layer
	}
	out := filepath.Join(t.TempDir(), "mixed.safetensors")
	if err := WriteKohya(out, l, cfg, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	back, err := Open(out, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if back.Format != FormatKohya || len(back.Layers) != len(l.Layers) {
		t.Fatalf("format %s, %d layers", back.Format, len(back.Layers))
	}
	for k, layer := range l.Layers {
		b := back.Layers[k]
		if b == nil || !slices.Equal(b.Down, layer.Down) || !slices.Equal(b.Up, layer.Up) || b.Scale() != layer.Scale() || !slices.Equal(b.TargetShape, layer.TargetShape) {
			t.Fatalf("%s did not read back (scale %v)", k, layer.Scale())
		}
	}
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range f.Names() {
		if !strings.HasPrefix(n, "lora_unet_") && !strings.HasPrefix(n, "lora_te1_") && !strings.HasPrefix(n, "lora_te2_") {
			t.Fatalf("key %s has no kohya prefix", n)
		}
		if strings.HasPrefix(n, "lora_unet_down_blocks") || strings.HasPrefix(n, "lora_unet_up_blocks") {
			t.Fatalf("key %s is not in the Stability layout sd-scripts writes", n)
		}
	}
	if _, ok := f.Metadata()["ss_network_dim"]; ok {
		t.Fatal("mixed ranks written as one ss_network_dim")
	}
	// A layer that fits no module of the model is refused by name.
	bad := &Layer{Component: sdxl.UNet, Module: "no.such.module", Rank: 1, Out: 1, In: 1, Down: []float32{1}, Up: []float32{1}}
	l.Layers[bad.Key()] = bad
	if err := WriteKohya(out, l, cfg, safetensors.F16, nil); err == nil || !strings.Contains(err.Error(), bad.Key()) {
		t.Fatalf("err %v, want one naming %s", err, bad.Key())
	}
}
