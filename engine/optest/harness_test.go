package optest

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/tensor"
)

// fakeT records what a case check reports; Fatalf stops the check.
type fakeT struct{ msgs []string }

type fatal struct{}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	panic(fatal{})
}

// report runs check on a fake reporter and returns the failures.
func report(check func(t reporter)) (msgs []string) {
	f := &fakeT{}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatal); !ok {
				panic(r)
			}
		}
		msgs = f.msgs
	}()
	check(f)
	return f.msgs
}

func caseNamed(t *testing.T, name string) Case {
	for _, c := range Cases(false) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no case %q", name)
	return Case{}
}

// broken is the CPU backend with deliberate faults the harness must catch.
type broken struct {
	*cpu.Backend
	gradScale float32 // ActivationBackward is scaled by this
	fwdScale  float32 // Softmax is scaled by this
	leak      bool    // GEGLU leaks a tensor
}

func (b *broken) ActivationBackward(dout, x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	g, err := b.Backend.ActivationBackward(dout, x, f)
	if err != nil || b.gradScale == 0 {
		return g, err
	}
	defer g.Free()
	return b.Backend.Scale(g, b.gradScale)
}

func (b *broken) Softmax(x *tensor.Tensor) (*tensor.Tensor, error) {
	y, err := b.Backend.Softmax(x)
	if err != nil || b.fwdScale == 0 {
		return y, err
	}
	defer y.Free()
	return b.Backend.Scale(y, b.fwdScale)
}

func (b *broken) GEGLU(x *tensor.Tensor, f tensor.Act) (*tensor.Tensor, error) {
	if b.leak {
		if _, err := b.Backend.Zeros(tensor.Shape{3}, tensor.F32); err != nil {
			return nil, err
		}
	}
	return b.Backend.GEGLU(x, f)
}

func mentions(msgs []string, words ...string) bool {
	for _, m := range msgs {
		all := true
		for _, w := range words {
			all = all && strings.Contains(m, w)
		}
		if all {
			return true
		}
	}
	return false
}

func TestHarnessPassesTheReference(t *testing.T) {
	o := parse(nil)
	for _, name := range []string{"act_gelu", "softmax", "geglu_gelu", "attention_causal", "conv3x3_s2_pad_br"} {
		c := caseNamed(t, name)
		b := cpu.New()
		if msgs := report(func(r reporter) { referenceCase(r, c, b, o) }); len(msgs) > 0 {
			t.Errorf("%s reference: %v", name, msgs)
		}
		if msgs := report(func(r reporter) { finiteDiffCase(r, c, b, o) }); len(msgs) > 0 {
			t.Errorf("%s finite differences: %v", name, msgs)
		}
		if msgs := report(func(r reporter) { againstCase(r, c, cpu.New(), b, o) }); len(msgs) > 0 {
			t.Errorf("%s against: %v", name, msgs)
		}
	}
}

func TestHarnessCatchesAWrongBackward(t *testing.T) {
	o := parse(nil)
	c := caseNamed(t, "act_gelu")
	b := &broken{Backend: cpu.New(), gradScale: 1.002} // 0.2% off
	if msgs := report(func(r reporter) { referenceCase(r, c, b, o) }); !mentions(msgs, "act_gelu dx", "max-abs", "relative") {
		t.Errorf("reference missed a 0.2%% gradient error: %v", msgs)
	}
	if msgs := report(func(r reporter) { againstCase(r, c, cpu.New(), b, o) }); !mentions(msgs, "act_gelu dx", "max-abs") {
		t.Errorf("against missed a 0.2%% gradient error: %v", msgs)
	}
	b.gradScale = 1.1 // fp32 finite differences need a coarser error
	if msgs := report(func(r reporter) { finiteDiffCase(r, c, b, o) }); !mentions(msgs, "act_gelu dx", "finite differences") {
		t.Errorf("finite differences missed a 10%% gradient error: %v", msgs)
	}
}

func TestHarnessCatchesAWrongForward(t *testing.T) {
	o := parse(nil)
	c := caseNamed(t, "softmax")
	b := &broken{Backend: cpu.New(), fwdScale: 1.001}
	if msgs := report(func(r reporter) { referenceCase(r, c, b, o) }); !mentions(msgs, "softmax output 0", "max-abs") {
		t.Errorf("reference missed a 0.1%% forward error: %v", msgs)
	}
	if msgs := report(func(r reporter) { againstCase(r, c, cpu.New(), b, o) }); !mentions(msgs, "softmax output 0") {
		t.Errorf("against missed a 0.1%% forward error: %v", msgs)
	}
}

func TestHarnessCatchesALeak(t *testing.T) {
	c := caseNamed(t, "geglu_gelu")
	b := &broken{Backend: cpu.New(), leak: true}
	if msgs := report(func(r reporter) { referenceCase(r, c, b, parse(nil)) }); !mentions(msgs, "leaked") {
		t.Errorf("a leaked tensor went unnoticed: %v", msgs)
	}
}

func TestCompare(t *testing.T) {
	m := Compare([]float64{1, 2.5, 3}, []float64{1, 2, -4})
	if m.MaxAbs != 7 || m.At != 2 || m.Scale != 4 || m.Rel != 1.75 || m.Got != 3 || m.Want != -4 {
		t.Fatalf("%+v", m)
	}
	if m := Compare([]float64{math.NaN()}, []float64{1}); !math.IsInf(m.MaxAbs, 1) || m.ok(1) {
		t.Fatalf("NaN passes: %+v", m)
	}
	if m := Compare([]float64{1e-9}, []float64{0}); !m.ok(1e-4) {
		t.Fatalf("tiny absolute error on a zero tensor fails: %+v", m)
	}
}

func TestCaseTable(t *testing.T) {
	for _, small := range []bool{false, true} {
		seen := map[string]bool{}
		for _, c := range Cases(small) {
			if seen[c.Name] {
				t.Errorf("duplicate case %q", c.Name)
			}
			seen[c.Name] = true
			if c.Forward == nil || c.Ref == nil {
				t.Errorf("%s: no forward or reference", c.Name)
			}
			if c.Backward != nil && len(c.gradInputs()) == 0 {
				t.Errorf("%s: a backward with no differentiable input", c.Name)
			}
		}
	}
	if len(Cases(true)) == 0 || len(Cases(true)) > len(Cases(false)) {
		t.Fatal("small table is empty or larger")
	}
}
