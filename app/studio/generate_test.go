package studio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lorastudio/engine/sdxl/demo"
	"lorastudio/storage"
)

// demoRequest is a small, fast request on the demo model (random weights).
func demoRequest(out string, seed uint64) GenerateRequest {
	r := DefaultGenerateRequest()
	r.Prompt, r.Steps, r.Width, r.Height, r.Device, r.Out = "a red cube", 2, 64, 64, "cpu", out
	r.Seed = &seed
	r.AppVersion = "test"
	return r
}

func openStudio(t *testing.T) *Studio {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestGenerateCacheAndHistory generates on the demo model, repeats the request
// (answered from the cache with identical bytes), forces a regeneration with
// NoCache, and checks the history, the parameters chunk and that changing any
// input of the image changes the cache key.
func TestGenerateCacheAndHistory(t *testing.T) {
	s := openStudio(t)
	dir := t.TempDir()
	req := demoRequest(filepath.Join(dir, "sub", "a.png"), 42)
	var steps []int
	res, err := s.Generate(context.Background(), req, func(step, n int, prev image.Image) {
		steps = append(steps, step)
		if n != 2 {
			t.Errorf("progress steps = %d", n)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.FromCache || res.Seed != 42 || res.Device != "cpu" || len(res.CacheKey) != 64 || len(steps) != 2 {
		t.Fatalf("first run %+v, steps %v", res, steps)
	}
	if res.Model != filepath.Join(s.DataDir(), "models", demo.DirName) {
		t.Errorf("model %s, want the demo model under the data directory", res.Model)
	}
	first, err := os.ReadFile(req.Out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(first))
	if err != nil || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 64 {
		t.Fatalf("output: %v %v", err, img)
	}
	stored := filepath.Join(s.DataDir(), GenerationsDir, res.CacheKey+".png")
	if b, err := os.ReadFile(stored); err != nil || !bytes.Equal(b, first) {
		t.Fatalf("cache file %s: %v", stored, err)
	}
	m, err := ReadPNGText(req.Out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseA1111(m[ParametersKey])
	if err != nil {
		t.Fatal(err)
	}
	if p.Prompt != "a red cube" || p.Negative != nil || p.Steps != 2 || p.SamplerID != "dpmpp_2m" || p.CFG != 7 || p.Seed != 42 ||
		p.Width != 64 || p.Height != 64 || p.Model != demo.Name || len(p.ModelHash) != 10 || p.Version != "lorastudio test" {
		t.Fatalf("parameters %+v from %q", p, m[ParametersKey])
	}

	// The same request again: from the cache, identical bytes, no steps run
	// (the time is logged, not bounded: a loaded machine is no defect).
	req2 := req
	req2.Out = filepath.Join(dir, "b.png")
	t0 := time.Now()
	res2, err := s.Generate(context.Background(), req2, func(int, int, image.Image) { t.Error("a cache hit ran steps") })
	if err != nil {
		t.Fatal(err)
	}
	if !res2.FromCache || res2.CacheKey != res.CacheKey {
		t.Fatalf("second run %+v, want a cache hit with key %s", res2, res.CacheKey)
	}
	t.Logf("cache hit in %v", time.Since(t0))
	if b, _ := os.ReadFile(req2.Out); !bytes.Equal(b, first) {
		t.Fatal("the cached copy differs")
	}

	// NoCache regenerates (same pixels: deterministic on one backend).
	req3 := req
	req3.Out, req3.NoCache = filepath.Join(dir, "c.png"), true
	ran := 0
	res3, err := s.Generate(context.Background(), req3, func(int, int, image.Image) { ran++ })
	if err != nil || res3.FromCache || ran != 2 {
		t.Fatalf("no-cache run %+v %v, %d steps", res3, err, ran)
	}
	if b, _ := os.ReadFile(req3.Out); !bytes.Equal(b, first) {
		t.Fatal("regenerating the same request gave other bytes")
	}

	hist, err := s.Generations(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].OutputPath != req3.Out || hist[1].OutputPath != req2.Out || !hist[1].FromCache ||
		hist[0].FromCache || hist[2].FromCache || hist[2].Seed != 42 || hist[2].Negative != nil || hist[1].Device != "cache" ||
		hist[2].CacheKey != res.CacheKey || hist[2].LorasJSON != "[]" {
		t.Fatalf("history %+v", hist)
	}

	// Each input of the image changes the key; the output path and device do not.
	neg, empty := "blurry", ""
	base := res.CacheKey
	keyOf := func(mut func(r *GenerateRequest)) string {
		r := req
		mut(&r)
		rs, err := s.resolve(r)
		if err != nil {
			t.Fatal(err)
		}
		return rs.key
	}
	if k := keyOf(func(r *GenerateRequest) { r.Out = "/elsewhere/x.png"; r.Device = "gl" }); k != base {
		t.Error("the output path or device changed the key")
	}
	seen := map[string]string{}
	for name, mut := range map[string]func(r *GenerateRequest){
		"prompt":         func(r *GenerateRequest) { r.Prompt += "!" },
		"negative":       func(r *GenerateRequest) { r.Negative = &neg },
		"empty negative": func(r *GenerateRequest) { r.Negative = &empty },
		"seed":           func(r *GenerateRequest) { v := uint64(43); r.Seed = &v },
		"steps":          func(r *GenerateRequest) { r.Steps = 3 },
		"cfg":            func(r *GenerateRequest) { r.CFG = 7.5 },
		"sampler":        func(r *GenerateRequest) { r.Sampler = "euler" },
		"width":          func(r *GenerateRequest) { r.Width = 72 },
		"height":         func(r *GenerateRequest) { r.Height = 72 },
	} {
		k := keyOf(mut)
		if k == base {
			t.Errorf("changing the %s kept the key", name)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s give the same key", name, other)
		}
		seen[k] = name
	}
}

// TestGenerateModelAndLoRAIdentity checks that the key follows file contents
// (not names), that a touched-but-identical file keeps its key, and that LoRA
// weights and order matter.
func TestGenerateModelAndLoRAIdentity(t *testing.T) {
	s := openStudio(t)
	dir := t.TempDir()
	a := filepath.Join(dir, "a.safetensors")
	b := filepath.Join(dir, "b.safetensors")
	writeST := func(path, payload string) {
		t.Helper()
		hdr := `{"__metadata__":{"name":"` + filepath.Base(path) + `"}}`
		data := append([]byte{byte(len(hdr)), 0, 0, 0, 0, 0, 0, 0}, hdr...)
		if err := os.WriteFile(path, append(data, payload...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeST(a, "weights-1")
	writeST(b, "weights-2")
	req := demoRequest(filepath.Join(dir, "o.png"), 1)
	keyWith := func(loras ...LoRASpec) string {
		r := req
		r.LoRAs = loras
		rs, err := s.resolve(r)
		if err != nil {
			t.Fatal(err)
		}
		return rs.key
	}
	k1 := keyWith(LoRASpec{a, 1}, LoRASpec{b, 0.5})
	if k2 := keyWith(LoRASpec{b, 0.5}, LoRASpec{a, 1}); k2 == k1 {
		t.Error("LoRA order did not change the key")
	}
	if k2 := keyWith(LoRASpec{a, 1}, LoRASpec{b, 0.75}); k2 == k1 {
		t.Error("LoRA weight did not change the key")
	}
	// Same content under another name: same key.
	c := filepath.Join(dir, "renamed.safetensors")
	data, _ := os.ReadFile(a)
	os.WriteFile(c, data, 0o644)
	if k2 := keyWith(LoRASpec{c, 1}, LoRASpec{b, 0.5}); k2 != k1 {
		t.Error("a copy of the LoRA under another name changed the key")
	}
	// New content, same size: the mtime invalidates the remembered hash.
	writeST(a, "weights-3")
	future := time.Now().Add(time.Hour)
	os.Chtimes(a, future, future)
	if k2 := keyWith(LoRASpec{a, 1}, LoRASpec{b, 0.5}); k2 == k1 {
		t.Error("changed LoRA content kept the key (stale file hash)")
	}
	// The remembered hash is used while size and mtime hold: prove it by
	// recording a fake one for the file's current size and mtime.
	st, _ := os.Stat(b)
	h, err := s.HashFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := s.DB().FileHash(b, algoSHA256, st.Size(), st.ModTime()); !ok || got != h {
		t.Fatalf("HashFile did not remember %s: %q %v", b, got, ok)
	}
	fake := strings.Repeat("f", 64)
	if err := s.DB().PutFileHash(storage.FileHash{Path: b, Algo: algoSHA256, Size: st.Size(), MTime: st.ModTime(), Hash: fake}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.HashFile(b); got != fake {
		t.Fatalf("HashFile re-read an unchanged file: %q", got)
	}
	// The A1111 LoRA hash is the SHA-256 of the safetensors data after the header.
	r := req
	r.LoRAs = []LoRASpec{{c, 1}}
	rs, err := s.resolve(r)
	if err != nil {
		t.Fatal(err)
	}
	text := s.infotext(r, rs)
	sum := sha256.Sum256([]byte("weights-1"))
	if !strings.Contains(text, `Lora hashes: "renamed: `+hex.EncodeToString(sum[:])[:12]+`"`) {
		t.Errorf("infotext %q", text)
	}
	// A missing LoRA names the file.
	r.LoRAs = []LoRASpec{{filepath.Join(dir, "gone.safetensors"), 1}}
	if _, err := s.Generate(context.Background(), r, nil); err == nil || !strings.Contains(err.Error(), "gone.safetensors") {
		t.Fatalf("missing LoRA: %v", err)
	}
	if _, err := os.Stat(r.Out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed generation left an output file")
	}
}

// TestGenerateCancelled cancels during the first step: no output file, no
// cache entry, no history row.
func TestGenerateCancelled(t *testing.T) {
	s := openStudio(t)
	out := filepath.Join(t.TempDir(), "x.png")
	req := demoRequest(out, 5)
	req.Steps = 20
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	_, err := s.Generate(ctx, req, func(step, steps int, _ image.Image) { n++; cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled generation: %v", err)
	}
	if n != 1 {
		t.Errorf("%d steps ran after cancelling at the first", n)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("cancelled generation left an output file")
	}
	ents, _ := os.ReadDir(filepath.Dir(out))
	if len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
	if h, _ := s.Generations(0); len(h) != 0 {
		t.Fatalf("history %+v", h)
	}
	if c, _ := s.DB().CacheEntries(); len(c) != 0 {
		t.Fatalf("cache %+v", c)
	}
}

func TestGenerateValidate(t *testing.T) {
	seed := uint64(1) << 63
	for name, mut := range map[string]func(r *GenerateRequest){
		"no out":    func(r *GenerateRequest) { r.Out = "" },
		"not png":   func(r *GenerateRequest) { r.Out = "x.jpg" },
		"width":     func(r *GenerateRequest) { r.Width = 100 },
		"height":    func(r *GenerateRequest) { r.Height = 0 },
		"steps":     func(r *GenerateRequest) { r.Steps = 0 },
		"cfg":       func(r *GenerateRequest) { r.CFG = -1 },
		"sampler":   func(r *GenerateRequest) { r.Sampler = "ddim" },
		"device":    func(r *GenerateRequest) { r.Device = "vulkan" },
		"seed":      func(r *GenerateRequest) { r.Seed = &seed },
		"lora path": func(r *GenerateRequest) { r.LoRAs = []LoRASpec{{"", 1}} },
	} {
		r := demoRequest("x.png", 1)
		mut(&r)
		if err := r.Validate(); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := demoRequest("x.png", 1).Validate(); err != nil {
		t.Fatal(err)
	}
	// A missing model names the file and is not a request error.
	s := openStudio(t)
	r := demoRequest(filepath.Join(t.TempDir(), "x.png"), 1)
	r.Model = filepath.Join(t.TempDir(), "nope.safetensors")
	_, err := s.Generate(context.Background(), r, nil)
	if err == nil || errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "nope.safetensors") {
		t.Fatalf("missing model: %v", err)
	}
}

// TestConfiguredModel checks that a configured model is used when none is named.
func TestConfiguredModel(t *testing.T) {
	s := openStudio(t)
	if p, ok, err := s.ConfiguredModel(); ok || err != nil || p != "" {
		t.Fatalf("fresh studio has a configured model %q %v %v", p, ok, err)
	}
	dir := t.TempDir()
	if err := s.SetConfiguredModel(dir); err != nil {
		t.Fatal(err)
	}
	p, isDemo, err := s.ResolveModel("")
	if err != nil || isDemo || p != dir {
		t.Fatalf("ResolveModel = %q %v %v", p, isDemo, err)
	}
	s.SetConfiguredModel("")
	if _, isDemo, err := s.ResolveModel(""); err != nil || !isDemo {
		t.Fatalf("after clearing: demo %v %v", isDemo, err)
	}
}

// fixtureDir finds the fixture set: $LORASTUDIO_FIXTURES relative to the
// repository root, else engine/testdata/sdxl-tiny beside it.
func fixtureDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LORASTUDIO_FIXTURES")
	if dir == "" {
		dir = filepath.Join("engine", "testdata", "sdxl-tiny")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("fixtures not found at %s (set LORASTUDIO_FIXTURES): %v", dir, err)
	}
	return dir
}

// TestGeneratorKeepsPipeline checks that a Generator reuses its pipeline
// while model and LoRAs stay the same, reloads when a LoRA weight changes,
// and that a reused pipeline paints exactly what a fresh one does.
func TestGeneratorKeepsPipeline(t *testing.T) {
	s := openStudio(t)
	root := fixtureDir(t)
	dir := t.TempDir()
	lora := filepath.Join(root, "lora", "kohya_sgm_names.safetensors")
	req := demoRequest("", 7)
	req.Model = filepath.Join(root, "model")
	req.Sampler, req.Steps, req.CFG, req.NoCache = "euler", 2, 5, true
	g := s.NewGenerator()
	defer g.Close()
	gen := func(name string, weight float32, seed uint64) []byte {
		t.Helper()
		r := req
		r.Out, r.Seed = filepath.Join(dir, name), &seed
		r.LoRAs = []LoRASpec{{lora, weight}}
		if _, err := g.Generate(context.Background(), r, nil); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(r.Out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gen("a.png", 1, 7)
	gen("b.png", 1, 8)
	if g.loads != 1 {
		t.Fatalf("%d loads for two requests on the same model and LoRA", g.loads)
	}
	half := gen("c.png", 0.5, 7)
	if g.loads != 2 {
		t.Fatalf("%d loads after changing the LoRA weight, want 2", g.loads)
	}
	one := gen("d.png", 1, 7)
	if g.loads != 3 {
		t.Fatalf("%d loads after changing the weight back, want 3", g.loads)
	}
	if bytes.Equal(half, one) {
		t.Fatal("LoRA weights 0.5 and 1 gave the same image")
	}
	// A fresh one-off generation of the last request gives identical bytes.
	r := req
	seed := uint64(7)
	r.Out, r.Seed, r.LoRAs = filepath.Join(dir, "fresh.png"), &seed, []LoRASpec{{lora, 1}}
	if _, err := s.Generate(context.Background(), r, nil); err != nil {
		t.Fatal(err)
	}
	if fresh, _ := os.ReadFile(r.Out); !bytes.Equal(fresh, one) {
		t.Fatal("a reused pipeline painted another image than a fresh one")
	}
	if a, _ := os.ReadFile(filepath.Join(dir, "a.png")); !bytes.Equal(a, one) {
		t.Fatal("reloading the same LoRA weight gave another image")
	}
}
