package optim

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/safetensors"
)

// TestAdamWGoldenSteps feeds the fixture's golden gradients of both training
// steps to AdamW (hyper-parameters parsed from train_step.json) and compares
// the parameters after each step with torch's (goldens README: ≤ 1e-6 abs).
// The gradients are the reference's, not ours, so this judges the optimizer
// alone.
func TestAdamWGoldenSteps(t *testing.T) {
	root := fixtures.Root(t)
	var meta struct {
		Optimizer string `json:"optimizer"`
	}
	b, err := os.ReadFile(filepath.Join(root, "lora", "train_step.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseAdamW(meta.Optimizer)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(root, "goldens", "lora", "train_step.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	for _, n := range f.Names() {
		if p, ok := strings.CutPrefix(n, "param0."); ok {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("no param0.* tensors in train_step.safetensors")
	}
	load := func(name string) []float32 {
		t.Helper()
		v, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	params := make([][]float32, len(names))
	sizes := make([]int, len(names))
	for i, n := range names {
		params[i] = load("param0." + n)
		sizes[i] = len(params[i])
	}
	o := NewAdamW(cfg, sizes)
	const tol = 1e-6
	for step := 0; step < 2; step++ {
		prefix := "step" + string(rune('0'+step)) + "."
		grads := make([][]float32, len(names))
		for i, n := range names {
			grads[i] = load(prefix + "grad." + n)
		}
		if err := o.Step(params, grads, cfg.LR); err != nil {
			t.Fatal(err)
		}
		worst, at := 0.0, ""
		for i, n := range names {
			want := load(prefix + "param_after." + n)
			for j := range want {
				if d := math.Abs(float64(params[i][j] - want[j])); d > worst || math.IsNaN(d) {
					worst, at = d, n
				}
			}
		}
		if worst > tol || math.IsNaN(worst) {
			t.Errorf("step %d: max abs error %g at %s (tolerance %g)", step, worst, at, tol)
		} else {
			t.Logf("step %d: %d parameters within %g (max abs error %g)", step, len(names), tol, worst)
		}
	}

	// a restored state continues exactly as the original
	st := o.State()
	o2 := NewAdamW(cfg, sizes)
	if err := o2.Restore(st); err != nil {
		t.Fatal(err)
	}
	p1, p2 := clone(params), clone(params)
	g := make([][]float32, len(names))
	for i, n := range names {
		g[i] = load("step1.grad." + n)
	}
	if err := o.Step(p1, g, cfg.LR); err != nil {
		t.Fatal(err)
	}
	if err := o2.Step(p2, g, cfg.LR); err != nil {
		t.Fatal(err)
	}
	for i := range p1 {
		for j := range p1[i] {
			if math.Float32bits(p1[i][j]) != math.Float32bits(p2[i][j]) {
				t.Fatalf("restored optimizer differs at %s[%d]: %g vs %g", names[i], j, p2[i][j], p1[i][j])
			}
		}
	}
	if err := NewAdamW(cfg, sizes[1:]).Restore(st); err == nil {
		t.Error("Restore accepted a state for other parameters")
	}
	if err := o2.Restore(st[:len(st)-3]); err == nil {
		t.Error("Restore accepted a truncated state")
	}
}

func clone(v [][]float32) [][]float32 {
	out := make([][]float32, len(v))
	for i := range v {
		out[i] = append([]float32(nil), v[i]...)
	}
	return out
}

func TestParseAdamW(t *testing.T) {
	c, err := ParseAdamW("torch.optim.AdamW(lr=2e-4, betas=(0.8, 0.99), weight_decay=0, eps=1e-6)")
	if err != nil {
		t.Fatal(err)
	}
	if want := (AdamWConfig{LR: 2e-4, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6}); c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if c, err = ParseAdamW("AdamW(lr=1e-3)"); err != nil || c != DefaultAdamW(1e-3) {
		t.Errorf("defaults: got %+v, %v", c, err)
	}
	for _, bad := range []string{"SGD(lr=1)", "AdamW(lr=x)", "AdamW(betas=(0.9))", "AdamW(amsgrad=True)", "AdamW(foo=1)", "AdamW(lr=-1)"} {
		if _, err := ParseAdamW(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestSchedule(t *testing.T) {
	const base = 1e-3
	cases := []struct {
		s    Schedule
		step int
		want float64
	}{
		{Schedule{"constant", 0, 100, base}, 0, base},
		{Schedule{"constant", 10, 100, base}, 0, 0},
		{Schedule{"constant", 10, 100, base}, 5, base / 2},
		{Schedule{"constant", 10, 100, base}, 50, base},
		{Schedule{"linear", 10, 110, base}, 10, base},
		{Schedule{"linear", 10, 110, base}, 60, base / 2},
		{Schedule{"linear", 10, 110, base}, 110, 0},
		{Schedule{"cosine", 0, 100, base}, 0, base},
		{Schedule{"cosine", 0, 100, base}, 50, base / 2},
		{Schedule{"cosine", 0, 100, base}, 100, 0},
		{Schedule{"cosine", 20, 120, base}, 45, base * 0.5 * (1 + math.Cos(math.Pi*0.25))},
	}
	for _, c := range cases {
		if err := c.s.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := c.s.LR(c.step); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("%+v step %d: lr %g, want %g", c.s, c.step, got, c.want)
		}
	}
	if err := (Schedule{Kind: "step"}).Validate(); err == nil {
		t.Error("unknown kind accepted")
	}
	if err := (Schedule{Kind: "cosine"}).Validate(); err == nil {
		t.Error("cosine without a total accepted")
	}
}

func TestClipGradNorm(t *testing.T) {
	g := [][]float32{{3, 0}, {0, 4}, nil}
	if n := ClipGradNorm(g, 1); math.Abs(n-5) > 1e-6 {
		t.Errorf("norm %g, want 5", n)
	}
	coef := float32(1 / (5 + 1e-6))
	if g[0][0] != 3*coef || g[1][1] != 4*coef {
		t.Errorf("clipped to %v, want ×%g", g, coef)
	}
	h := [][]float32{{0.3, 0.4}}
	if n := ClipGradNorm(h, 1); math.Abs(n-0.5) > 1e-6 || h[0][0] != 0.3 || h[0][1] != 0.4 {
		t.Errorf("under the limit: norm %g, grads %v changed", n, h)
	}
}
