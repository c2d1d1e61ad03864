package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"lorastudio/app/studio"
	"lorastudio/engine/device"
)

// pngTolerance is the largest per-channel difference (of 255) allowed against
// the reference PNGs: the fixtures allow ±1 LSB; one more for GL's rounding.
const pngTolerance = 2

// pipelineGolden is the part of a goldens/pipeline_*.json the CLI needs.
type pipelineGolden struct {
	Prompt    string  `json:"prompt"`
	Negative  *string `json:"negative_prompt"`
	Scheduler string  `json:"scheduler"`
	Steps     int     `json:"steps"`
	Guidance  float64 `json:"guidance"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Seed      uint64  `json:"seed"`
	PNG       string  `json:"png"`
	Config    struct {
		Karras bool `json:"use_karras_sigmas"`
	} `json:"scheduler_config"`
}

// sampler maps the reference's scheduler names to ours.
func (g pipelineGolden) sampler(t *testing.T) string {
	switch g.Scheduler {
	case "dpm", "dpmpp_2m":
		if g.Config.Karras {
			return "dpmpp_2m_karras"
		}
		return "dpmpp_2m"
	case "euler":
		return "euler"
	case "euler_a", "euler_ancestral":
		return "euler_a"
	}
	t.Fatalf("golden scheduler %q has no sampler here", g.Scheduler)
	return ""
}

// args is the generate command line reproducing the golden, from its seed number.
func (g pipelineGolden) args(t *testing.T, model, out, dev, dataDir string) []string {
	a := []string{"generate", "--model", model, "--prompt", g.Prompt, "--seed", fmt.Sprint(g.Seed),
		"--steps", fmt.Sprint(g.Steps), "--cfg", fmt.Sprint(g.Guidance), "--sampler", g.sampler(t),
		"--size", fmt.Sprintf("%dx%d", g.Width, g.Height), "--out", out, "--device", dev, "--data-dir", dataDir}
	if g.Negative != nil {
		a = append(a, "--negative", *g.Negative)
	}
	return a
}

func readGolden(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Python's json writes -Infinity and NaN (lambda_min_clipped); no field read here uses them.
	b = nonFinite.ReplaceAll(b, []byte(": null"))
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// nonFinite matches the non-JSON numbers Python writes.
var nonFinite = regexp.MustCompile(`:\s*(-?Infinity|NaN)\b`)

// decodePNG reads a PNG file as NRGBA.
func decodePNG(t *testing.T, path string) *image.NRGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			out.Set(x, y, color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)))
		}
	}
	return out
}

// comparePNG returns the largest per-channel difference between two PNG
// files, failing on a size mismatch.
func comparePNG(t *testing.T, got, want string) int {
	t.Helper()
	a, b := decodePNG(t, got), decodePNG(t, want)
	if a.Rect != b.Rect {
		t.Fatalf("%s is %v, reference %s is %v", got, a.Rect, want, b.Rect)
	}
	worst := 0
	for i := range a.Pix {
		d := int(a.Pix[i]) - int(b.Pix[i])
		worst = max(worst, d, -d)
	}
	return worst
}

// runCLI runs a command line and returns exit code, stdout and stderr.
func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// glAvailable says whether a GL context can be made; it fails the test when
// none can and LORASTUDIO_REQUIRE_GL=1, and skips it otherwise.
func glAvailable(t *testing.T) {
	t.Helper()
	b, err := device.Open("gl")
	if err != nil {
		if requireGL() {
			t.Fatalf("LORASTUDIO_REQUIRE_GL=1 but no GL context: %v", err)
		}
		t.Skipf("no GL context (set LORASTUDIO_REQUIRE_GL=1 to make this a failure): %v", err)
	}
	b.Close()
}

// TestGenerateGoldensCLI reproduces the pipeline goldens through the command
// line from the seed number alone, on CPU and on GL.
func TestGenerateGoldensCLI(t *testing.T) {
	root := fixtureRoot(t)
	model := filepath.Join(root, "model")
	jsons, _ := filepath.Glob(filepath.Join(root, "goldens", "pipeline_[a-z].json"))
	if len(jsons) < 3 {
		t.Fatalf("want pipeline_a/b/c goldens in %s, found %v", root, jsons)
	}
	for _, dev := range []string{"cpu", "gl"} {
		t.Run(dev, func(t *testing.T) {
			if dev == "gl" {
				glAvailable(t)
			}
			dataDir := t.TempDir()
			for _, jf := range jsons {
				var g pipelineGolden
				readGolden(t, jf, &g)
				name := strings.TrimSuffix(filepath.Base(jf), ".json")
				out := filepath.Join(t.TempDir(), name+".png")
				code, stdout, stderr := runCLI(g.args(t, model, out, dev, dataDir)...)
				if code != 0 {
					t.Fatalf("%s: exit %d\n%s", name, code, stderr)
				}
				if !strings.Contains(stdout, "output: "+out) || !strings.Contains(stdout, fmt.Sprintf("seed: %d", g.Seed)) {
					t.Errorf("%s: stdout %q", name, stdout)
				}
				d := comparePNG(t, out, filepath.Join(root, "goldens", g.PNG))
				t.Logf("%s on %s: max pixel difference %d/255", name, dev, d)
				if d > pngTolerance {
					t.Errorf("%s on %s: pixels differ from %s by up to %d levels (tolerance %d)", name, dev, g.PNG, d, pngTolerance)
				}
			}
		})
	}
}

// TestGenerateLoRAGoldensCLI reproduces pipeline_lora at weights 1 and 0.5
// with the kohya (sd-scripts layout) file given as --lora FILE:WEIGHT.
func TestGenerateLoRAGoldensCLI(t *testing.T) {
	root := fixtureRoot(t)
	var top map[string]json.RawMessage
	readGolden(t, filepath.Join(root, "goldens", "pipeline_lora.json"), &top)
	lora := filepath.Join(root, "lora", "kohya_sgm_names.safetensors")
	dataDir := t.TempDir()
	// every run the file holds, keyed scale<weight> (1.0 and 0.5 in the
	// public set)
	var weights []string
	for key := range top {
		if w, ok := strings.CutPrefix(key, "scale"); ok {
			if _, err := strconv.ParseFloat(w, 64); err == nil {
				weights = append(weights, w)
			}
		}
	}
	if len(weights) == 0 {
		t.Fatal("pipeline_lora.json has no scale<weight> runs")
	}
	slices.Sort(weights)
	for _, w := range weights {
		raw := top["scale"+w]
		var g pipelineGolden
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "lora"+w+".png")
		args := append(g.args(t, filepath.Join(root, "model"), out, "cpu", dataDir), "--lora", lora+":"+strings.TrimSuffix(w, ".0"))
		code, _, stderr := runCLI(args...)
		if code != 0 {
			t.Fatalf("weight %s: exit %d\n%s", w, code, stderr)
		}
		d := comparePNG(t, out, filepath.Join(root, "goldens", g.PNG))
		t.Logf("LoRA weight %s: max pixel difference %d/255", w, d)
		if d > pngTolerance {
			t.Errorf("LoRA weight %s: pixels differ from %s by up to %d levels", w, g.PNG, d)
		}
		m, err := studio.ReadPNGText(out)
		if err != nil {
			t.Fatal(err)
		}
		p, err := studio.ParseA1111(m[studio.ParametersKey])
		if err != nil {
			t.Fatal(err)
		}
		if len(p.LoraHashes) != 1 || p.LoraHashes[0].Name != "kohya_sgm_names" || len(p.LoraHashes[0].Hash) != 12 {
			t.Errorf("weight %s: Lora hashes %+v", w, p.LoraHashes)
		}
	}
}

// TestGenerateCLICacheAndHistory repeats a request (answered from the cache:
// identical bytes, no sampling steps), forces one with --no-cache, and finds
// all three in the history; the parameters chunk reads back as the request.
func TestGenerateCLICacheAndHistory(t *testing.T) {
	root := fixtureRoot(t)
	model := filepath.Join(root, "model")
	dataDir, outDir := t.TempDir(), t.TempDir()
	base := []string{"generate", "--model", model, "--prompt", "a photo of a cat", "--seed", "3", "--steps", "3",
		"--cfg", "1", "--sampler", "euler", "--size", "64x64", "--device", "cpu", "--data-dir", dataDir, "--negative", ""}
	outs := []string{filepath.Join(outDir, "1.png"), filepath.Join(outDir, "2.png"), filepath.Join(outDir, "3.png")}
	code, stdout, stderr := runCLI(append(base, "--out", outs[0])...)
	if code != 0 || strings.Contains(stdout, "from cache") {
		t.Fatalf("first run: exit %d %q %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "step 3/3") {
		t.Errorf("no progress lines on a non-terminal stderr: %q", stderr)
	}
	t0 := time.Now()
	code, stdout, stderr = runCLI(append(base, "--out", outs[1])...)
	took := time.Since(t0)
	if code != 0 || !strings.Contains(stdout, "from cache") {
		t.Fatalf("second run: exit %d %q %s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "step ") {
		t.Errorf("the cache hit ran sampling steps: %q", stderr)
	}
	t.Logf("cache hit through the CLI: %v", took)
	a, _ := os.ReadFile(outs[0])
	b, _ := os.ReadFile(outs[1])
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatal("the cached image differs from the first")
	}
	code, stdout, _ = runCLI(append(base, "--out", outs[2], "--no-cache")...)
	if code != 0 || strings.Contains(stdout, "from cache") {
		t.Fatalf("--no-cache: exit %d %q", code, stdout)
	}
	st, err := studio.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hist, err := st.Generations(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Fatalf("history has %d rows, want 3: %+v", len(hist), hist)
	}
	for i, h := range hist { // newest first
		want := outs[2-i]
		if h.OutputPath != want || h.FromCache != (i == 1) || h.Seed != 3 || h.Negative == nil || *h.Negative != "" ||
			h.Steps != 3 || h.Sampler != "euler" || h.CFG != 1 || h.Width != 64 || h.Model != model && !strings.HasSuffix(h.Model, "/model") {
			t.Errorf("history row %d: %+v", i, h)
		}
	}
	m, err := studio.ReadPNGText(outs[2])
	if err != nil {
		t.Fatal(err)
	}
	p, err := studio.ParseA1111(m[studio.ParametersKey])
	if err != nil {
		t.Fatal(err)
	}
	if p.Prompt != "a photo of a cat" || p.Negative == nil || *p.Negative != "" || p.Seed != 3 || p.Steps != 3 ||
		p.Sampler != "Euler" || p.CFG != 1 || p.Width != 64 || p.Height != 64 || p.Model != "model" || p.Version != "lorastudio "+appVersion {
		t.Errorf("parameters %+v", p)
	}
}

func TestGenerateCLIErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.png")
	ok := []string{"generate", "--prompt", "p", "--data-dir", dir, "--size", "64x64", "--steps", "1"}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"generate", "--prompt", "p", "--data-dir", dir}, "--out"},
		{[]string{"generate", "--out", out, "--data-dir", dir}, "--prompt"},
		{append(ok, "--out", out, "--size", "64x60"), "multiples of 8"},
		{append(ok, "--out", out, "--size", "big"), "--size"},
		{append(ok, "--out", out, "--sampler", "ddim"), "ddim"},
		{append(ok, "--out", out, "--seed", "-1"), "seed"},
		{append(ok, "--out", out, "--steps", "0"), "steps"},
		{append(ok, "--out", out, "--device", "tpu"), "tpu"},
		{append(ok, "--out", out, "--frobnicate"), "frobnicate"},
		{append(ok, "--out", out, "stray"), "stray"},
		{append(ok, "--out", filepath.Join(dir, "x.jpg")), ".png"},
	} {
		code, _, stderr := runCLI(c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d mentioning %q", c.args[1:], code, stderr, exitUsage, c.msg)
		}
	}
	missing := filepath.Join(dir, "no-such-model.safetensors")
	code, _, stderr := runCLI(append(ok, "--out", out, "--model", missing)...)
	if code != 1 || !strings.Contains(stderr, missing) {
		t.Errorf("missing model: exit %d, stderr %q", code, stderr)
	}
	missingLoRA := filepath.Join(dir, "no-such-lora.safetensors")
	code, _, stderr = runCLI(append(ok, "--out", out, "--model", filepath.Join(fixtureRoot(t), "model"), "--lora", missingLoRA+":0.5")...)
	if code != 1 || !strings.Contains(stderr, missingLoRA) {
		t.Errorf("missing LoRA: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a failed run wrote the output")
	}
	if code, _, stderr := runCLI("generate", "--help"); code != 0 || !strings.Contains(stderr, "--no-cache") {
		t.Errorf("--help: exit %d %q", code, stderr)
	}
}

// TestGenerateLoRAFlag checks FILE[:WEIGHT] parsing, including paths with colons.
func TestGenerateLoRAFlag(t *testing.T) {
	var l loraList
	for _, s := range []string{"a.safetensors", "b.safetensors:0.5", "c:\\x.safetensors:-1", "odd:name.safetensors"} {
		if err := l.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	want := []studio.LoRASpec{{Path: "a.safetensors", Weight: 1}, {Path: "b.safetensors", Weight: 0.5},
		{Path: "c:\\x.safetensors", Weight: -1}, {Path: "odd:name.safetensors", Weight: 1}}
	for i := range want {
		if l[i] != want[i] {
			t.Errorf("lora %d = %+v, want %+v", i, l[i], want[i])
		}
	}
	a, err := parseGenerateArgs([]string{"--prompt", "p", "--out", "o.png"}, &bytes.Buffer{})
	if err != nil || a.req.Negative != nil || a.req.Seed != nil || a.req.Steps != 25 || a.req.CFG != 7 ||
		a.req.Sampler != "dpmpp_2m" || a.req.Width != 1024 || a.req.Height != 1024 || a.req.Device != "auto" {
		t.Fatalf("defaults: %+v %v", a.req, err)
	}
	a, err = parseGenerateArgs([]string{"--prompt", "p", "--out", "o.png", "--negative", "", "--seed", "0"}, &bytes.Buffer{})
	if err != nil || a.req.Negative == nil || *a.req.Negative != "" || a.req.Seed == nil || *a.req.Seed != 0 {
		t.Fatalf("empty negative and seed 0: %+v %v", a.req, err)
	}
}

// lastStep returns the highest k of the progress lines "step k/n" in
// stderr, or 0 when there are none.
func lastStep(stderr string) int {
	last := 0
	for _, m := range regexp.MustCompile(`step (\d+)/\d+`).FindAllStringSubmatch(stderr, -1) {
		if k, err := strconv.Atoi(m[1]); err == nil {
			last = max(last, k)
		}
	}
	return last
}

// lockedBuffer is a stderr that sends the process SIGINT on the first step,
// as Ctrl-C in a terminal would.
type lockedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.sent && bytes.Contains(p, []byte("step 1/")) {
		b.sent = true
		syscall.Kill(os.Getpid(), syscall.SIGINT)
	}
	return b.buf.Write(p)
}

// TestGenerateCLIInterrupt sends SIGINT during a generation: it stops
// before its last step, writes no image and no history row, and the process
// exits 130. How many steps ran before the stop is logged: the signal
// arrives asynchronously, and on a loaded machine a few more steps may run.
func TestGenerateCLIInterrupt(t *testing.T) {
	codes := []int{}
	exitProcess = func(code int) { codes = append(codes, code) }
	defer func() { exitProcess = os.Exit }()
	dataDir := t.TempDir()
	out := filepath.Join(t.TempDir(), "x.png")
	var stdout bytes.Buffer
	stderr := &lockedBuffer{}
	const steps = 200
	t0 := time.Now()
	generateCommand([]string{"--model", filepath.Join(fixtureRoot(t), "model"), "--prompt", "p", "--steps", strconv.Itoa(steps),
		"--size", "64x64", "--device", "cpu", "--seed", "1", "--out", out, "--data-dir", dataDir}, &stdout, stderr)
	if len(codes) != 1 || codes[0] != exitInterrupted {
		t.Fatalf("exit codes %v, want [%d]; stderr %s", codes, exitInterrupted, stderr.buf.String())
	}
	last := lastStep(stderr.buf.String())
	if last < 1 || last >= steps {
		t.Errorf("the last step reported was %d of %d: the interrupt at step 1 did not stop the run; stderr %q", last, steps, stderr.buf.String())
	}
	t.Logf("interrupted at step 1, stopped after step %d of %d, %v", last, steps, time.Since(t0))
	if !strings.Contains(stderr.buf.String(), "interrupted") {
		t.Errorf("stderr %q", stderr.buf.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("an interrupted run wrote the output")
	}
	st, err := studio.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if h, _ := st.Generations(0); len(h) != 0 {
		t.Fatalf("interrupted run in the history: %+v", h)
	}
}

// TestGenerateCLIModelChoice runs without --model: the demo model (said on
// stderr) on a fresh data directory, the configured model once one is set.
func TestGenerateCLIModelChoice(t *testing.T) {
	dataDir := t.TempDir()
	out := filepath.Join(t.TempDir(), "demo.png")
	args := []string{"generate", "--prompt", "a cat", "--steps", "2", "--size", "64x64", "--device", "cpu",
		"--seed", "1", "--data-dir", dataDir}
	code, _, stderr := runCLI(append(args, "--out", out)...)
	if code != 0 || !strings.Contains(stderr, "using the demo model (random weights)") {
		t.Fatalf("demo run: exit %d, stderr %q", code, stderr)
	}
	if img := decodePNG(t, out); img.Rect.Dx() != 64 {
		t.Fatalf("demo image %v", img.Rect)
	}
	st, err := studio.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	model, _ := filepath.Abs(filepath.Join(fixtureRoot(t), "model"))
	err = st.SetConfiguredModel(model)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "configured.png")
	code, _, stderr = runCLI(append(args, "--out", out2)...)
	if code != 0 || !strings.Contains(stderr, "using the configured model "+model) {
		t.Fatalf("configured run: exit %d, stderr %q", code, stderr)
	}
	m, err := studio.ReadPNGText(out2)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := studio.ParseA1111(m[studio.ParametersKey]); err != nil || p.Model != "model" || p.Negative != nil {
		t.Fatalf("configured model parameters %+v %v", p, err)
	}
}
