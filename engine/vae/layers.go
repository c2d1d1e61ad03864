package vae

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"lorastudio/engine/tensor"
)

// Weights gives a VAE parameter by its diffusers name ("decoder.conv_in.weight"):
// the values as float32, the shape, and whether the stored dtype is a packed
// half type (then weights of matmuls and convolutions stay packed on the device).
type Weights interface {
	// Names lists every parameter name the source holds (for the strict check).
	Names() []string
	// Float32 returns the named parameter's values and shape.
	Float32(name string) (data []float32, shape []int, half bool, err error)
}

// scope hands out parameters under a name prefix and records which ones were
// read, so that Load can report unused keys.
type scope struct {
	b      tensor.Backend
	w      Weights
	prefix string
	used   map[string]bool
	owned  *[]*tensor.Tensor // every tensor loaded, for Free
}

// sub returns the scope of a child module: s.sub("decoder").
func (s *scope) sub(name string) *scope {
	c := *s
	if c.prefix == "" {
		c.prefix = name
	} else {
		c.prefix += "." + name
	}
	return &c
}

// index returns the scope of a child in a list: s.sub("resnets").index(1).
func (s *scope) index(i int) *scope { return s.sub(strconv.Itoa(i)) }

// tensor loads the parameter name under the scope, checking its shape; a
// packed half weight is kept packed when packed is true.
func (s *scope) tensor(name string, shape []int, packed bool) (*tensor.Tensor, error) {
	key := name
	if s.prefix != "" {
		key = s.prefix + "." + name
	}
	data, got, half, err := s.w.Float32(key)
	if err != nil {
		return nil, fmt.Errorf("vae: key %s: %w", key, err)
	}
	if !slices.Equal(got, shape) {
		return nil, fmt.Errorf("vae: key %s has shape %v, want %v", key, got, shape)
	}
	dt := tensor.F32
	if half && packed {
		dt = tensor.F16
	}
	t, err := s.b.Upload(data, tensor.Shape(shape), dt)
	if err != nil {
		return nil, fmt.Errorf("vae: key %s: %w", key, err)
	}
	s.used[key] = true
	*s.owned = append(*s.owned, t)
	return t, nil
}

// unused returns the source's names that no parameter read, sorted.
func (s *scope) unused() []string {
	var out []string
	for _, n := range s.w.Names() {
		if !s.used[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// conv2d is torch.nn.Conv2d: weight (Cout, Cin, k, k), bias (Cout).
type conv2d struct {
	weight, bias *tensor.Tensor
	p            tensor.Conv2DParams
}

func newConv2d(s *scope, cin, cout, k int, p tensor.Conv2DParams) (*conv2d, error) {
	w, err := s.tensor("weight", []int{cout, cin, k, k}, true)
	if err != nil {
		return nil, err
	}
	b, err := s.tensor("bias", []int{cout}, false)
	if err != nil {
		return nil, err
	}
	return &conv2d{weight: w, bias: b, p: p}, nil
}

func (c *conv2d) forward(b tensor.Backend, x *tensor.Tensor) (*tensor.Tensor, error) {
	return b.Conv2D(x, c.weight, c.bias, c.p)
}

// groupNorm is torch.nn.GroupNorm with affine weight and bias (C).
type groupNorm struct {
	weight, bias *tensor.Tensor
	groups       int
	eps          float32
}

func newGroupNorm(s *scope, groups, c int, eps float32) (*groupNorm, error) {
	w, err := s.tensor("weight", []int{c}, false)
	if err != nil {
		return nil, err
	}
	b, err := s.tensor("bias", []int{c}, false)
	if err != nil {
		return nil, err
	}
	return &groupNorm{weight: w, bias: b, groups: groups, eps: eps}, nil
}

func (g *groupNorm) forward(b tensor.Backend, x *tensor.Tensor) (*tensor.Tensor, error) {
	return b.GroupNorm(x, g.weight, g.bias, g.groups, g.eps)
}

// linear is torch.nn.Linear: weight (out, in), bias (out).
type linear struct {
	weight, bias *tensor.Tensor
}

func newLinear(s *scope, in, out int) (*linear, error) {
	w, err := s.tensor("weight", []int{out, in}, true)
	if err != nil {
		return nil, err
	}
	b, err := s.tensor("bias", []int{out}, false)
	if err != nil {
		return nil, err
	}
	return &linear{weight: w, bias: b}, nil
}

func (l *linear) forward(b tensor.Backend, x *tensor.Tensor) (*tensor.Tensor, error) {
	return tensor.Linear(b, x, l.weight, l.bias)
}

// consume applies f to t and frees t whatever f returns: the step of a
// forward pass whose input dies there.
func consume(t *tensor.Tensor, f func(*tensor.Tensor) (*tensor.Tensor, error)) (*tensor.Tensor, error) {
	out, err := f(t)
	t.Free()
	return out, err
}

// listKeys formats up to 8 keys for an error message.
func listKeys(keys []string) string {
	if len(keys) > 8 {
		return strings.Join(keys[:8], ", ") + fmt.Sprintf(" and %d more", len(keys)-8)
	}
	return strings.Join(keys, ", ")
}
