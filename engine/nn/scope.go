// Package nn holds the neural-network layers the SDXL models are built from
// (Linear, LayerNorm, GroupNorm, Conv2d, Embedding, Attention, MLP,
// FeedForward, and diffusers' ResnetBlock2D, BasicTransformerBlock and
// Transformer2DModel), written once against tensor.Backend.
//
// Layers are plain structs named like the checkpoint and loaded through an
// explicit prefix Scope over a weight Source, with no reflection:
//
//	l := nn.NewLoader(b, src)
//	q, err := nn.LoadLinear(l.Root().Sub("encoder").Sub("layers").Index(3).Sub("self_attn").Sub("q_proj"), 768, 768, true)
//
// Loading is strict: a missing key or a shape mismatch is an error naming the
// key, and after loading Loader.Unused lists the keys nothing read.
// Weights of matmuls and convolutions stay packed (F16/BF16) on the device
// when stored so; biases, norms and everything else are F32. All math is fp32.
//
// Training: ForwardTrain runs the forward and keeps in the layer what its
// Backward needs (views of the inputs, never copies); Backward returns the
// input gradient and, when the layer is Trainable, adds the parameter
// gradients into the layer's Grad fields. FreeCache releases the kept
// tensors. Free releases the parameters. Nothing is freed implicitly.
package nn

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"lorastudio/engine/safetensors"
	"lorastudio/engine/tensor"
)

// Source is where weights come from: a safetensors file, one component of an
// SDXL model source, or host memory. Names are full parameter names.
type Source interface {
	// Names lists every stored parameter name.
	Names() []string
	// Lookup returns a parameter's shape and stored dtype (F32, F16 or
	// BF16; any other stored type reports F32 and converts), false when absent.
	Lookup(name string) (shape []int, dt tensor.DType, ok bool)
	// Float32 returns a parameter's values converted to float32 (a new slice).
	Float32(name string) ([]float32, error)
}

// Float16Source is a Source that can also give a parameter as fp16 bit
// patterns without a float32 copy (Embedding uses it for F16 tables).
type Float16Source interface {
	Float16Bits(name string) ([]uint16, error)
}

// FileSource returns a Source over a safetensors file (names as stored); it
// is also a Float16Source.
func FileSource(f *safetensors.File) Source { return fileSource{f} }

type fileSource struct{ f *safetensors.File }

// Names lists the file's tensors.
func (s fileSource) Names() []string { return s.f.Names() }

// Lookup returns a tensor's shape and stored dtype.
func (s fileSource) Lookup(name string) ([]int, tensor.DType, bool) {
	info, ok := s.f.Tensor(name)
	if !ok {
		return nil, 0, false
	}
	return info.Shape, StoredDType(string(info.DType)), true
}

// Float32 returns a tensor converted to float32.
func (s fileSource) Float32(name string) ([]float32, error) { return s.f.Float32(name) }

// Float16Bits returns a tensor as fp16 bit patterns.
func (s fileSource) Float16Bits(name string) ([]uint16, error) { return s.f.Float16Bits(name) }

// StoredDType maps a safetensors dtype name ("F16", "BF16", "F32", ...) to the
// dtype a weight keeps on the device: F16 and BF16 as themselves, anything
// else as F32.
func StoredDType(name string) tensor.DType {
	switch name {
	case "F16":
		return tensor.F16
	case "BF16":
		return tensor.BF16
	}
	return tensor.F32
}

// HostTensor is one parameter held in host memory by a MapSource.
type HostTensor struct {
	Shape []int
	DType tensor.DType // the dtype a packed weight is uploaded as (F32, F16, BF16)
	Data  []float32
}

// MapSource is a Source over host memory (tests, converted or generated weights).
type MapSource map[string]HostTensor

// Names lists the parameters, sorted.
func (m MapSource) Names() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Lookup returns the parameter's shape and dtype.
func (m MapSource) Lookup(name string) ([]int, tensor.DType, bool) {
	t, ok := m[name]
	return t.Shape, t.DType, ok
}

// Float32 returns a copy of the parameter's values.
func (m MapSource) Float32(name string) ([]float32, error) {
	t, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("nn: no parameter %q", name)
	}
	return slices.Clone(t.Data), nil
}

// Loader uploads parameters from a Source to a backend and records which
// names were read.
type Loader struct {
	b    tensor.Backend
	src  Source
	used map[string]bool
}

// NewLoader returns a Loader reading src onto backend b.
func NewLoader(b tensor.Backend, src Source) *Loader {
	return &Loader{b: b, src: src, used: map[string]bool{}}
}

// Root returns the scope with an empty prefix.
func (l *Loader) Root() Scope { return Scope{l: l} }

// Backend returns the backend parameters are uploaded to.
func (l *Loader) Backend() tensor.Backend { return l.b }

// Unused returns, sorted, the source's names that no layer has read, except
// those listed in ignore.
func (l *Loader) Unused(ignore ...string) []string {
	var out []string
	for _, n := range l.src.Names() {
		if !l.used[n] && !slices.Contains(ignore, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// CheckUnused returns an error naming every unused key (see Unused), or nil.
func (l *Loader) CheckUnused(ignore ...string) error {
	u := l.Unused(ignore...)
	if len(u) == 0 {
		return nil
	}
	const show = 10
	msg := fmt.Sprintf("nn: %d unused key(s): %q", len(u), u[:min(len(u), show)])
	if len(u) > show {
		msg += fmt.Sprintf(" and %d more", len(u)-show)
	}
	return errors.New(msg)
}

// Scope is a name prefix inside a Loader, like "text_model.encoder.layers.3.".
type Scope struct {
	l      *Loader
	prefix string
}

// Sub returns the scope of the child module name ("down_blocks", "to_out.0").
func (s Scope) Sub(name string) Scope { return Scope{l: s.l, prefix: s.prefix + name + "."} }

// Index returns the scope of the i-th child of a list module ("layers" → "layers.3").
func (s Scope) Index(i int) Scope { return s.Sub(strconv.Itoa(i)) }

// Name returns the full parameter name of leaf in this scope.
func (s Scope) Name(leaf string) string { return s.prefix + leaf }

// Prefix returns the scope's prefix ("" at the root, else ending in ".").
func (s Scope) Prefix() string { return s.prefix }

// Backend returns the backend parameters are uploaded to.
func (s Scope) Backend() tensor.Backend { return s.l.b }

// Has reports whether the source holds the parameter leaf in this scope.
func (s Scope) Has(leaf string) bool {
	_, _, ok := s.l.src.Lookup(s.Name(leaf))
	return ok
}

// lookup checks that leaf exists with the given shape and marks it used.
func (s Scope) lookup(leaf string, shape tensor.Shape) (string, tensor.DType, error) {
	name := s.Name(leaf)
	got, dt, ok := s.l.src.Lookup(name)
	if !ok {
		return name, 0, fmt.Errorf("nn: missing parameter %s (want shape %s)", name, shape)
	}
	if !tensor.Shape(got).Equal(shape) {
		return name, 0, fmt.Errorf("nn: parameter %s has shape %s, want %s", name, tensor.Shape(got), shape)
	}
	s.l.used[name] = true
	return name, dt, nil
}

// Host returns the parameter leaf as float32 in host memory, after checking
// its shape.
func (s Scope) Host(leaf string, shape tensor.Shape) ([]float32, error) {
	name, _, err := s.lookup(leaf, shape)
	if err != nil {
		return nil, err
	}
	v, err := s.l.src.Float32(name)
	if err != nil {
		return nil, fmt.Errorf("nn: parameter %s: %w", name, err)
	}
	if len(v) != shape.Numel() {
		return nil, fmt.Errorf("nn: parameter %s: source gave %d values for shape %s", name, len(v), shape)
	}
	return v, nil
}

// Param uploads the parameter leaf, which must have the given shape. With
// packed, a weight stored as F16 or BF16 stays so on the device (for
// MatMul's b and Conv2D's w); otherwise the tensor is F32.
func (s Scope) Param(leaf string, shape tensor.Shape, packed bool) (*tensor.Tensor, error) {
	name, dt, err := s.lookup(leaf, shape)
	if err != nil {
		return nil, err
	}
	v, err := s.l.src.Float32(name)
	if err != nil {
		return nil, fmt.Errorf("nn: parameter %s: %w", name, err)
	}
	if len(v) != shape.Numel() {
		return nil, fmt.Errorf("nn: parameter %s: source gave %d values for shape %s", name, len(v), shape)
	}
	if !packed || (dt != tensor.F16 && dt != tensor.BF16) {
		dt = tensor.F32
	}
	t, err := s.l.b.Upload(v, shape, dt)
	if err != nil {
		return nil, fmt.Errorf("nn: upload %s: %w", name, err)
	}
	return t, nil
}

// keep returns a view of t that stays valid after the caller frees t (nil for nil).
func keep(t *tensor.Tensor) (*tensor.Tensor, error) {
	if t == nil {
		return nil, nil
	}
	return t.Reshape(t.Shape()...)
}

// release frees every non-nil tensor pointed to and sets it to nil.
func release(ps ...**tensor.Tensor) {
	for _, p := range ps {
		if *p != nil {
			(*p).Free()
			*p = nil
		}
	}
}

// accumulateParams adds a layer's weight and bias gradients into their
// accumulators (taking ownership of dw and db) and returns dx; on an error it
// frees what it still owns, dx included.
func accumulateParams(dx *tensor.Tensor, wAcc **tensor.Tensor, dw *tensor.Tensor, bAcc **tensor.Tensor, db *tensor.Tensor) (*tensor.Tensor, error) {
	if err := tensor.Accumulate(wAcc, dw); err != nil {
		tensor.FreeAll(dx, db)
		return nil, err
	}
	if err := tensor.Accumulate(bAcc, db); err != nil {
		tensor.FreeAll(dx)
		return nil, err
	}
	return dx, nil
}
