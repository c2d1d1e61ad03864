// Package optest is the engine's one table of op parity cases (in the style
// of ggml's test-backend-ops), run on every backend:
//
//	optest.RunReference(t, b)      // b against the float64 reference in this package
//	optest.RunAgainst(t, ref, b)   // b against another backend, e.g. cpu.New()
//	optest.FiniteDiff(t, b)        // every backward against central differences of b's forward
//	optest.RunMisuse(t, b)         // bad shapes, dtypes, freed tensors give clear errors
//
// Each case builds fresh random inputs of awkward shapes (7, 13, 33, 65,
// batch > 1, one-element dims), runs the forward and every backward, and
// failures report the max-abs and relative error with the index so a
// mismatch can be bisected. Pass Small for slow backends (GL on llvmpipe).
package optest

import (
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"strings"
	"testing"

	"lorastudio/engine/tensor"
)

// Input describes one operand of a case.
type Input struct {
	Name  string
	Shape tensor.Shape
	DType tensor.DType // F32 unless the operand is a packed weight
	// Grad marks a differentiable operand: Backward returns its gradient.
	Grad bool
	// Gen draws one value; nil means a standard normal.
	Gen func(r *rand.Rand) float64
}

// Case is one parameterised op test.
type Case struct {
	Name   string
	Inputs []Input
	// Forward runs the op and returns its outputs.
	Forward func(b tensor.Backend, in []*tensor.Tensor) ([]*tensor.Tensor, error)
	// Backward returns the gradients of the Grad inputs, in order, given the
	// forward's inputs and outputs and one dout per differentiable output
	// (the first NDiff outputs). Nil when the op has no backward.
	Backward func(b tensor.Backend, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error)
	// Ref is the float64 reference forward on the (dtype-rounded) input values.
	Ref func(in [][]float64) [][]float64
	// NDiff is how many leading outputs are differentiable; 0 means all.
	NDiff int
	// Tol overrides the forward tolerance (relative to the output's largest magnitude).
	Tol float64
}

// Option adjusts a run.
type Option func(*options)

type options struct {
	small bool
	match *regexp.Regexp
	seed  int64
	// foreign is a second backend for RunMisuse's ownership check.
	foreign tensor.Backend
}

// Small uses smaller shapes and fewer finite-difference probes, for slow backends.
func Small(o *options) { o.small = true }

// Only runs the cases whose name matches the regular expression.
func Only(pattern string) Option {
	re := regexp.MustCompile(pattern)
	return func(o *options) { o.match = re }
}

// Seed sets the random seed of the inputs (default 1).
func Seed(s int64) Option { return func(o *options) { o.seed = s } }

func parse(opts []Option) options {
	o := options{seed: 1}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func (o options) cases() []Case {
	var out []Case
	for _, c := range Cases(o.small) {
		if o.match == nil || o.match.MatchString(c.Name) {
			out = append(out, c)
		}
	}
	return out
}

// seedOf mixes the run seed with the case name so each case has its own inputs.
func seedOf(seed int64, name string) int64 {
	h := seed
	for _, ch := range name {
		h = h*131 + int64(ch)
	}
	return h
}

// values draws each input's values, rounded to its dtype.
func (c Case) values(r *rand.Rand) [][]float64 {
	vals := make([][]float64, len(c.Inputs))
	for i, in := range c.Inputs {
		v := make([]float64, in.Shape.Numel())
		for j := range v {
			x := r.NormFloat64()
			if in.Gen != nil {
				x = in.Gen(r)
			}
			v[j] = float64(tensor.RoundTo(float32(x), in.DType))
		}
		vals[i] = v
	}
	return vals
}

func (c Case) upload(b tensor.Backend, vals [][]float64) ([]*tensor.Tensor, error) {
	ts := make([]*tensor.Tensor, len(vals))
	for i, v := range vals {
		t, err := b.Upload(f32(v), c.Inputs[i].Shape, c.Inputs[i].DType)
		if err != nil {
			tensor.FreeAll(ts...)
			return nil, fmt.Errorf("upload %s: %w", c.Inputs[i].Name, err)
		}
		ts[i] = t
	}
	return ts, nil
}

func (c Case) nDiff(nout int) int {
	if c.NDiff > 0 {
		return c.NDiff
	}
	return nout
}

func (c Case) gradInputs() []int {
	var idx []int
	for i, in := range c.Inputs {
		if in.Grad {
			idx = append(idx, i)
		}
	}
	return idx
}

func f32(v []float64) []float32 {
	o := make([]float32, len(v))
	for i, e := range v {
		o[i] = float32(e)
	}
	return o
}

func f64(v []float32) []float64 {
	o := make([]float64, len(v))
	for i, e := range v {
		o[i] = float64(e)
	}
	return o
}

func download(b tensor.Backend, ts []*tensor.Tensor) ([][]float64, error) {
	out := make([][]float64, len(ts))
	for i, t := range ts {
		v, err := b.Download(t)
		if err != nil {
			return nil, err
		}
		out[i] = f64(v)
	}
	return out, nil
}

// result is one case run on one backend: forward outputs and gradients.
type result struct {
	outShapes []tensor.Shape
	outs      [][]float64
	grads     [][]float64
}

// run uploads vals, runs forward and (with douts) backward on b, downloads
// everything, frees every tensor it made and checks b's memory returns to
// where it was.
func (c Case) run(b tensor.Backend, vals [][]float64, douts func(shapes []tensor.Shape) [][]float64) (res result, err error) {
	before := b.Memory().InUse
	var made []*tensor.Tensor
	defer func() {
		if ferr := tensor.FreeAll(made...); ferr != nil && err == nil {
			err = ferr
		}
		if after := b.Memory().InUse; err == nil && after != before {
			err = fmt.Errorf("%s: memory in use went from %d to %d bytes: a tensor leaked", b.Name(), before, after)
		}
	}()
	in, err := c.upload(b, vals)
	if err != nil {
		return res, err
	}
	made = append(made, in...)
	out, err := c.Forward(b, in)
	if err != nil {
		return res, fmt.Errorf("forward: %w", err)
	}
	made = append(made, out...)
	for _, o := range out {
		res.outShapes = append(res.outShapes, o.Shape())
	}
	if res.outs, err = download(b, out); err != nil {
		return res, err
	}
	if c.Backward == nil || douts == nil {
		return res, nil
	}
	dv := douts(res.outShapes[:c.nDiff(len(out))])
	var dts []*tensor.Tensor
	for i, d := range dv {
		t, err := b.Upload(f32(d), res.outShapes[i], tensor.F32)
		if err != nil {
			return res, err
		}
		made = append(made, t)
		dts = append(dts, t)
	}
	grads, err := c.Backward(b, in, out, dts)
	if err != nil {
		return res, fmt.Errorf("backward: %w", err)
	}
	made = append(made, grads...)
	if len(grads) != len(c.gradInputs()) {
		return res, fmt.Errorf("backward returned %d gradients for %d differentiable inputs", len(grads), len(c.gradInputs()))
	}
	for i, g := range grads {
		want := c.Inputs[c.gradInputs()[i]].Shape
		if !g.Shape().Equal(want) {
			return res, fmt.Errorf("gradient of %s is %s, want %s", c.Inputs[c.gradInputs()[i]].Name, g.Shape(), want)
		}
	}
	res.grads, err = download(b, grads)
	return res, err
}

// randomDouts returns a normal dout for each shape from r.
func randomDouts(r *rand.Rand) func([]tensor.Shape) [][]float64 {
	return func(shapes []tensor.Shape) [][]float64 {
		out := make([][]float64, len(shapes))
		for i, s := range shapes {
			out[i] = make([]float64, s.Numel())
			for j := range out[i] {
				out[i][j] = float64(float32(r.NormFloat64()))
			}
		}
		return out
	}
}

// Mismatch describes how far got is from want.
type Mismatch struct {
	MaxAbs    float64 // largest |got - want|
	At        int     // its index
	Got, Want float64 // the values there
	Scale     float64 // largest |want| (the normalizer)
	Rel       float64 // MaxAbs / Scale
	NMSE      float64 // Σ(got-want)² / Σ want²
}

// String formats the mismatch for a test failure.
func (m Mismatch) String() string {
	return fmt.Sprintf("max-abs %.3g at [%d] (got %.7g want %.7g), relative %.3g of max |want| %.4g, nmse %.3g",
		m.MaxAbs, m.At, m.Got, m.Want, m.Rel, m.Scale, m.NMSE)
}

// Compare measures got against want (equal lengths).
func Compare(got, want []float64) Mismatch {
	var m Mismatch
	var se, sw float64
	for i := range want {
		d := math.Abs(got[i] - want[i])
		if d > m.MaxAbs || math.IsNaN(d) {
			m.MaxAbs, m.At, m.Got, m.Want = d, i, got[i], want[i]
			if math.IsNaN(d) {
				m.MaxAbs = math.Inf(1)
			}
		}
		m.Scale = math.Max(m.Scale, math.Abs(want[i]))
		se += d * d
		sw += want[i] * want[i]
	}
	m.Rel = m.MaxAbs / math.Max(m.Scale, 1e-3)
	if sw > 0 {
		m.NMSE = se / sw
	}
	return m
}

// ok reports whether every element is within tol of want, relative to the
// larger of want's largest magnitude and 1e-3 (so near-zero tensors pass
// on absolute error).
func (m Mismatch) ok(tol float64) bool {
	return m.MaxAbs <= tol*math.Max(m.Scale, 1e-3)
}

func check(t reporter, label string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", label, len(got), len(want))
		return
	}
	if m := Compare(got, want); !m.ok(tol) {
		t.Errorf("%s: %s (tolerance %.1g)", label, m, tol)
	}
}

// reporter is the part of *testing.T a case check uses (a fake in the
// harness's own tests records the failures instead).
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

const (
	fwdTol  = 1e-4 // forward vs float64 reference or another backend
	gradTol = 2e-4 // backward vs float64 finite differences or another backend
	fdTol   = 2e-2 // backward vs fp32 finite differences of the backend itself
)

func (c Case) fwdTol() float64 {
	if c.Tol > 0 {
		return c.Tol
	}
	return fwdTol
}

// refLoss is Σ_k dout_k · Ref(vals)_k over the differentiable outputs.
func (c Case) refLoss(vals, douts [][]float64) float64 {
	outs := c.Ref(vals)
	var l float64
	for k, d := range douts {
		for i, e := range d {
			l += e * outs[k][i]
		}
	}
	return l
}

// probes returns the indices of an input checked by finite differences:
// all of them up to limit, else limit random ones including the first and last.
func probes(r *rand.Rand, n, limit int) []int {
	if n <= limit {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := []int{0, n - 1}
	for len(idx) < limit {
		idx = append(idx, r.Intn(n))
	}
	return idx
}

// RunReference runs every case on b and checks the forward outputs against
// the float64 reference and every gradient against central differences of
// the float64 reference (h = 1e-5), at the probed elements.
func RunReference(t *testing.T, b tensor.Backend, opts ...Option) {
	o := parse(opts)
	for _, c := range o.cases() {
		t.Run(c.Name, func(t *testing.T) { referenceCase(t, c, b, o) })
	}
}

// RunAgainst runs every case on ref and b with the same inputs and douts
// and checks b's outputs and gradients against ref's.
func RunAgainst(t *testing.T, ref, b tensor.Backend, opts ...Option) {
	o := parse(opts)
	for _, c := range o.cases() {
		t.Run(c.Name, func(t *testing.T) { againstCase(t, c, ref, b, o) })
	}
}

// FiniteDiff checks every backward of b against central differences of b's
// own fp32 forward (h = 1e-2, a tolerance suited to fp32) at a few probed
// elements of each differentiable input.
func FiniteDiff(t *testing.T, b tensor.Backend, opts ...Option) {
	o := parse(opts)
	for _, c := range o.cases() {
		if c.Backward == nil {
			continue
		}
		t.Run(c.Name, func(t *testing.T) { finiteDiffCase(t, c, b, o) })
	}
}

// Names lists the case names (for documentation and -run filters).
func Names(small bool) string {
	var n []string
	for _, c := range Cases(small) {
		n = append(n, c.Name)
	}
	return strings.Join(n, " ")
}

// referenceCase checks one case; see RunReference.
func referenceCase(t reporter, c Case, b tensor.Backend, o options) {
	t.Helper()
	r := rand.New(rand.NewSource(seedOf(o.seed, c.Name)))
	vals := c.values(r)
	var douts [][]float64
	res, err := c.run(b, vals, func(s []tensor.Shape) [][]float64 {
		douts = randomDouts(r)(s)
		return douts
	})
	if err != nil {
		t.Fatalf("%s on %s: %v", c.Name, b.Name(), err)
	}
	want := c.Ref(vals)
	if len(want) != len(res.outs) {
		t.Fatalf("%d outputs, reference has %d", len(res.outs), len(want))
	}
	for k := range want {
		check(t, fmt.Sprintf("%s output %d %s on %s vs float64", c.Name, k, res.outShapes[k], b.Name()), res.outs[k], want[k], c.fwdTol())
	}
	if c.Backward == nil {
		return
	}
	limit := 160
	if o.small {
		limit = 64
	}
	for gi, ii := range c.gradInputs() {
		idx := probes(r, len(vals[ii]), limit)
		got, fd := make([]float64, len(idx)), make([]float64, len(idx))
		for pi, j := range idx {
			const h = 1e-5
			x0 := vals[ii][j]
			vals[ii][j] = x0 + h
			lp := c.refLoss(vals, douts)
			vals[ii][j] = x0 - h
			lm := c.refLoss(vals, douts)
			vals[ii][j] = x0
			fd[pi] = (lp - lm) / (2 * h)
			got[pi] = res.grads[gi][j]
		}
		check(t, fmt.Sprintf("%s d%s %s on %s vs float64 finite differences (probed %d of %d)", c.Name, c.Inputs[ii].Name, c.Inputs[ii].Shape, b.Name(), len(idx), len(vals[ii])), got, fd, gradTol)
	}
}

// againstCase checks one case; see RunAgainst.
func againstCase(t reporter, c Case, ref, b tensor.Backend, o options) {
	t.Helper()
	r := rand.New(rand.NewSource(seedOf(o.seed, c.Name)))
	vals := c.values(r)
	var douts [][]float64
	want, err := c.run(ref, vals, func(s []tensor.Shape) [][]float64 {
		douts = randomDouts(r)(s)
		return douts
	})
	if err != nil {
		t.Fatalf("%s on %s: %v", c.Name, ref.Name(), err)
	}
	got, err := c.run(b, vals, func([]tensor.Shape) [][]float64 { return douts })
	if err != nil {
		t.Fatalf("%s on %s: %v", c.Name, b.Name(), err)
	}
	for k := range want.outs {
		if !got.outShapes[k].Equal(want.outShapes[k]) {
			t.Fatalf("%s output %d: %s on %s, %s on %s", c.Name, k, got.outShapes[k], b.Name(), want.outShapes[k], ref.Name())
		}
		check(t, fmt.Sprintf("%s output %d %s, %s vs %s", c.Name, k, want.outShapes[k], b.Name(), ref.Name()), got.outs[k], want.outs[k], c.fwdTol())
	}
	for gi, ii := range c.gradInputs() {
		check(t, fmt.Sprintf("%s d%s %s, %s vs %s", c.Name, c.Inputs[ii].Name, c.Inputs[ii].Shape, b.Name(), ref.Name()), got.grads[gi], want.grads[gi], gradTol)
	}
}

// finiteDiffCase checks one case; see FiniteDiff.
func finiteDiffCase(t reporter, c Case, b tensor.Backend, o options) {
	t.Helper()
	limit := 24
	if o.small {
		limit = 8
	}
	r := rand.New(rand.NewSource(seedOf(o.seed, c.Name)))
	vals := c.values(r)
	var douts [][]float64
	res, err := c.run(b, vals, func(s []tensor.Shape) [][]float64 {
		douts = randomDouts(r)(s)
		return douts
	})
	if err != nil {
		t.Fatalf("%s on %s: %v", c.Name, b.Name(), err)
	}
	loss := func() float64 {
		out, err := c.run(b, vals, nil)
		if err != nil {
			t.Fatalf("%s forward on %s: %v", c.Name, b.Name(), err)
		}
		var l float64
		for k, d := range douts {
			for i, e := range d {
				l += e * out.outs[k][i]
			}
		}
		return l
	}
	for gi, ii := range c.gradInputs() {
		if c.Inputs[ii].DType != tensor.F32 {
			continue // a packed weight cannot be nudged by h in its own precision
		}
		idx := probes(r, len(vals[ii]), limit)
		got, fd := make([]float64, len(idx)), make([]float64, len(idx))
		for pi, j := range idx {
			const h = 1e-2
			x0 := vals[ii][j]
			vals[ii][j] = x0 + h
			lp := loss()
			vals[ii][j] = x0 - h
			lm := loss()
			vals[ii][j] = x0
			fd[pi] = (lp - lm) / (2 * h)
			got[pi] = res.grads[gi][j]
		}
		check(t, fmt.Sprintf("%s d%s %s on %s vs fp32 finite differences", c.Name, c.Inputs[ii].Name, c.Inputs[ii].Shape, b.Name()), got, fd, fdTol)
	}
}
