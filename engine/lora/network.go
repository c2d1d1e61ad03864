package lora

import (
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"lorastudio/engine/nn"
	"lorastudio/engine/rng"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
)

// This file is the trainable LoRA: one Adapter on each targeted Linear of the
// UNet, y = W x + b + scale · Up · Down · dropout(x), scale = alpha/rank, as
// kohya's LoRAModule and peft's lora.Linear compute it.

// Init names: how NetworkConfig.Init draws the down factor (the up factor
// always starts at zero, so a fresh network leaves the model unchanged).
const (
	// InitKohya draws down as torch.nn.Linear.reset_parameters does
	// (kaiming_uniform_ with a = √5: U(−1/√in, 1/√in)), as sd-scripts does.
	InitKohya = "kohya"
	// InitGaussian draws down from N(0, σ = 1/rank), as peft's
	// init_lora_weights="gaussian" does (nn.init.normal_(std=1/r)).
	InitGaussian = "gaussian"
)

// Target presets (TargetPreset's names).
const (
	// PresetAttn targets the four projections of every attention (attn1 and
	// attn2 of every transformer block): the tutorial's and diffusers'
	// train_text_to_image_lora_sdxl.py's set.
	PresetAttn = "attn"
	// PresetAttnMLP adds each Transformer2DModel's proj_in and proj_out and
	// each transformer block's feed-forward: sd-scripts' default LoRA set
	// for the UNet (its Transformer2DModel targets, linear layers only).
	PresetAttnMLP = "attn-mlp"
)

var (
	attnTargets    = []string{"to_q", "to_k", "to_v", "to_out.0"}
	attnMLPTargets = []string{"to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"}
)

// targetName is what an explicit target may look like: dotted module-name
// parts (to_out.0, ff.net.0.proj).
var targetName = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`)

// TargetPreset returns the module-name suffixes a preset names: "attn" (the
// default, to_q, to_k, to_v, to_out.0), "attn-mlp" (those and proj_in,
// proj_out, ff.net.0.proj, ff.net.2) or, for anything else, the
// comma-separated explicit list it is (each entry dotted name parts, no
// duplicates). The empty string is "attn".
func TargetPreset(name string) ([]string, error) {
	switch strings.TrimSpace(name) {
	case "", PresetAttn:
		return slices.Clone(attnTargets), nil
	case PresetAttnMLP:
		return slices.Clone(attnMLPTargets), nil
	}
	var out []string
	for _, p := range strings.Split(name, ",") {
		p = strings.TrimSpace(p)
		if !targetName.MatchString(p) {
			return nil, fmt.Errorf("lora: targets %q: %q is neither a preset (%s, %s) nor a module name such as to_q or ff.net.0.proj", name, p, PresetAttn, PresetAttnMLP)
		}
		if slices.Contains(out, p) {
			return nil, fmt.Errorf("lora: targets %q: %q is listed twice", name, p)
		}
		out = append(out, p)
	}
	return out, nil
}

// NetworkConfig is the shape of a trainable LoRA.
type NetworkConfig struct {
	// Rank is the factors' inner size r (the tutorial's 8).
	Rank int `json:"rank"`
	// Alpha sets the scale: alpha/rank (the tutorial's 16).
	Alpha float32 `json:"alpha"`
	// Targets are module-name suffixes within the UNet ("to_q", "to_out.0",
	// "ff.net.2" ...); TargetPreset expands the presets.
	Targets []string `json:"targets"`
	// Init is InitKohya (the default when empty) or InitGaussian.
	Init string `json:"init"`
	// Dropout is the probability of zeroing an element of the adapter's
	// input while training (peft's lora_dropout); 0 is off.
	Dropout float32 `json:"dropout"`
}

// DefaultNetworkConfig returns the tutorial's LoRA: rank 8, alpha 16 on the
// attention projections, kohya init, no dropout.
func DefaultNetworkConfig() NetworkConfig {
	return NetworkConfig{Rank: 8, Alpha: 16, Targets: slices.Clone(attnTargets), Init: InitKohya}
}

// Scale returns alpha/rank, the factor the update is multiplied by.
func (c NetworkConfig) Scale() float32 { return c.Alpha / float32(c.Rank) }

// Validate reports the first setting out of range.
func (c NetworkConfig) Validate() error {
	switch {
	case c.Rank <= 0:
		return fmt.Errorf("lora: rank %d, want a positive rank", c.Rank)
	case !(c.Alpha > 0) || math.IsInf(float64(c.Alpha), 0):
		return fmt.Errorf("lora: alpha %g, want a positive alpha", c.Alpha)
	case len(c.Targets) == 0:
		return fmt.Errorf("lora: no target modules")
	case c.Init != "" && c.Init != InitKohya && c.Init != InitGaussian:
		return fmt.Errorf("lora: init %q, want %q or %q", c.Init, InitKohya, InitGaussian)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("lora: dropout %g, want 0 ≤ dropout < 1", c.Dropout)
	}
	for _, t := range c.Targets {
		if !targetName.MatchString(t) {
			return fmt.Errorf("lora: target %q is not a module name", t)
		}
	}
	return nil
}

// Network is a trainable LoRA attached to a model's Linears.
type Network struct {
	// Config is the network's shape.
	Config NetworkConfig
	// Adapters holds one adapter per targeted Linear, sorted by Module.
	Adapters []*Adapter

	be      tensor.Backend
	linears map[string]*nn.Linear // the model's, to detach from

	training    bool
	dropoutSeed uint64
	dropoutStep int
}

// Adapter is the LoRA side path of one Linear: A(x) = Scale · Up · Down ·
// dropout(x). It implements nn.Adapter.
type Adapter struct {
	// Module is the Linear's diffusers name
	// ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q").
	Module string
	// In, Out are the Linear's sizes; Rank the factors' inner size.
	In, Out, Rank int
	// Scale is alpha/rank.
	Scale float32
	// Down (Rank, In) and Up (Out, Rank) are the factors, F32.
	Down, Up *tensor.Tensor
	// DownGrad (Rank, In) and UpGrad (Out, Rank) accumulate the factors'
	// gradients over Backward calls (F32); nil until a Backward, and again
	// after Network.ZeroGrad.
	DownGrad, UpGrad *tensor.Tensor

	net  *Network
	salt uint64 // the module name's hash: keys its dropout masks

	// kept by a training Forward for Backward: a view of the input x
	// (..., In) and the scaled hidden hs = Scale · Down · dropout(x)
	// (..., Rank); with dropout, the mask's key (the mask is drawn again
	// rather than kept).
	x, hs   *tensor.Tensor
	dropKey uint64
	dropped bool
}

var _ nn.Adapter = (*Adapter)(nil)

// NewNetwork attaches an Adapter to every Linear of linears (a model's
// diffusers module name → layer, as unet.Model.Linears gives them) whose
// name ends in "." + one of cfg.Targets. Down is drawn by cfg.Init from a
// generator keyed by (seed, module name), so a module's initial weights do
// not depend on which other modules are targeted; Up starts at zero. A target
// that matches no Linear, or a Linear that already has an adapter, is an
// error.
func NewNetwork(be tensor.Backend, linears map[string]*nn.Linear, cfg NetworkConfig, seed uint64) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Init == "" {
		cfg.Init = InitKohya
	}
	cfg.Targets = slices.Clone(cfg.Targets)
	names := make([]string, 0, len(linears))
	for name := range linears {
		names = append(names, name)
	}
	slices.Sort(names)
	var modules []string
	for _, target := range cfg.Targets {
		n := 0
		for _, name := range names {
			if strings.HasSuffix(name, "."+target) {
				n++
				if !slices.Contains(modules, name) {
					modules = append(modules, name)
				}
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("lora: target %q matches no linear layer of the model (%d linear layers)", target, len(names))
		}
	}
	slices.Sort(modules)
	n := &Network{Config: cfg, be: be, linears: linears}
	for _, m := range modules {
		l := linears[m]
		if l.Adapter != nil {
			n.Free()
			return nil, fmt.Errorf("lora: %s already has an adapter attached", m)
		}
		a, err := n.newAdapter(m, l.In, l.Out, seed)
		if err != nil {
			n.Free()
			return nil, err
		}
		n.Adapters = append(n.Adapters, a)
		l.Adapter = a
	}
	return n, nil
}

// newAdapter makes module's adapter with freshly drawn factors.
func (n *Network) newAdapter(module string, in, out int, seed uint64) (*Adapter, error) {
	h := fnv.New64a()
	h.Write([]byte(module))
	a := &Adapter{Module: module, In: in, Out: out, Rank: n.Config.Rank, Scale: n.Config.Scale(), net: n, salt: h.Sum64()}
	down := initDown(n.Config.Init, a.Rank, in, mix(seed, a.salt))
	var err error
	if a.Down, err = n.be.Upload(down, tensor.Shape{a.Rank, in}, tensor.F32); err != nil {
		return nil, fmt.Errorf("lora: %s: %w", module, err)
	}
	if a.Up, err = n.be.Zeros(tensor.Shape{out, a.Rank}, tensor.F32); err != nil {
		a.Down.Free()
		return nil, fmt.Errorf("lora: %s: %w", module, err)
	}
	return a, nil
}

// KaimingUniformBound returns the bound of torch.nn.init.kaiming_uniform_
// with negative slope a on a weight of fan_in inputs: gain / √fan_in · √3,
// gain = √(2 / (1 + a²)) (calculate_gain("leaky_relu", a)). With a = √5, as
// torch.nn.Linear.reset_parameters and kohya's lora_down use, it is
// 1/√fan_in.
func KaimingUniformBound(a float64, fanIn int) float64 {
	gain := math.Sqrt(2 / (1 + a*a))
	std := gain / math.Sqrt(float64(fanIn))
	return math.Sqrt(3) * std
}

// initDown draws a (rank, in) down factor by init from a generator seeded
// with key (its low 32 bits, as torch's generator takes them).
func initDown(init string, rank, in int, key uint64) []float32 {
	g := rng.New(key & math.MaxUint32)
	switch init {
	case InitGaussian:
		v := g.Randn(rank * in)
		std := 1 / float32(rank)
		for i := range v {
			v[i] *= std
		}
		return v
	default:
		bound := KaimingUniformBound(math.Sqrt(5), in)
		v := g.Rand(rank * in) // U[0, 1)
		for i, u := range v {
			v[i] = float32((2*float64(u) - 1) * bound) // U[−bound, bound)
		}
		return v
	}
}

// mix hashes a and b into one well-spread 64-bit key (splitmix64's
// finalizer over a combination that is not symmetric).
func mix(a, b uint64) uint64 {
	return splitmix(a ^ splitmix(b+0x9e3779b97f4a7c15))
}

// splitmix is splitmix64's output function: a bijection that spreads every
// input bit over the output.
func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Param is one trainable tensor and its accumulated gradient.
type Param struct {
	// Name is the module followed by ".lora_down" or ".lora_up".
	Name string
	// Value is the parameter (F32); Grad its gradient, nil before a Backward.
	Value, Grad *tensor.Tensor
}

// Params returns every parameter in a fixed order: for each adapter (sorted
// by module), down then up. The tensors are the network's: take them again
// after SetParams, Backward or ZeroGrad, which replace them.
func (n *Network) Params() []Param {
	ps := make([]Param, 0, 2*len(n.Adapters))
	for _, a := range n.Adapters {
		ps = append(ps,
			Param{Name: a.Module + ".lora_down", Value: a.Down, Grad: a.DownGrad},
			Param{Name: a.Module + ".lora_up", Value: a.Up, Grad: a.UpGrad})
	}
	return ps
}

// NumParams returns the number of trainable values.
func (n *Network) NumParams() int {
	s := 0
	for _, a := range n.Adapters {
		s += a.Rank * (a.In + a.Out)
	}
	return s
}

// ZeroGrad frees the accumulated gradients (the next Backward starts them
// afresh).
func (n *Network) ZeroGrad() {
	for _, a := range n.Adapters {
		release(&a.DownGrad, &a.UpGrad)
	}
}

// SetParams replaces every parameter by values, given in the order of
// Params; sizes must match. Nothing changes on an error.
func (n *Network) SetParams(values [][]float32) error {
	if len(values) != 2*len(n.Adapters) {
		return fmt.Errorf("lora: SetParams got %d tensors, the network has %d", len(values), 2*len(n.Adapters))
	}
	fresh := make([]*tensor.Tensor, 0, len(values))
	fail := func(err error) error {
		tensor.FreeAll(fresh...)
		return err
	}
	for i, a := range n.Adapters {
		for j, shape := range []tensor.Shape{{a.Rank, a.In}, {a.Out, a.Rank}} {
			v := values[2*i+j]
			if len(v) != shape.Numel() {
				return fail(fmt.Errorf("lora: SetParams: %s.%s has %d values, want %d %s", a.Module, [2]string{"lora_down", "lora_up"}[j], len(v), shape.Numel(), shape))
			}
			t, err := n.be.Upload(v, shape, tensor.F32)
			if err != nil {
				return fail(fmt.Errorf("lora: SetParams: %s: %w", a.Module, err))
			}
			fresh = append(fresh, t)
		}
	}
	for i, a := range n.Adapters {
		tensor.FreeAll(a.Down, a.Up)
		a.Down, a.Up = fresh[2*i], fresh[2*i+1]
	}
	return nil
}

// Values downloads every parameter in the order of Params.
func (n *Network) Values() ([][]float32, error) {
	out := make([][]float32, 0, 2*len(n.Adapters))
	for _, p := range n.Params() {
		v, err := n.be.Download(p.Value)
		if err != nil {
			return nil, fmt.Errorf("lora: %s: %w", p.Name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Grads downloads every gradient in the order of Params; a parameter no
// Backward reached gets zeros.
func (n *Network) Grads() ([][]float32, error) {
	out := make([][]float32, 0, 2*len(n.Adapters))
	for _, p := range n.Params() {
		if p.Grad == nil {
			out = append(out, make([]float32, p.Value.Numel()))
			continue
		}
		v, err := n.be.Download(p.Grad)
		if err != nil {
			return nil, fmt.Errorf("lora: %s gradient: %w", p.Name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// SetDropoutSeed makes the dropout masks of the coming forward passes those
// of (seed, step): a mask is a pure function of (seed, step, module, element
// index), so a checkpointed block run again in the backward, or a resumed
// run, draws exactly the same mask.
func (n *Network) SetDropoutSeed(seed uint64, step int) {
	n.dropoutSeed, n.dropoutStep = seed, step
}

// Train switches dropout on (training) or off (sampling, export). It is the
// network's mode, not a forward's: with gradient checkpointing the model runs
// a block first without keeping anything and later again for the backward,
// and both runs must drop the same elements.
func (n *Network) Train(on bool) { n.training = on }

// Export returns the network's weights as a canonical LoRA (component
// "unet", alpha on every layer) for the writers.
func (n *Network) Export() (*LoRA, error) {
	l := &LoRA{Layers: map[string]*Layer{}}
	for _, a := range n.Adapters {
		down, err := n.be.Download(a.Down)
		if err != nil {
			return nil, fmt.Errorf("lora: export %s: %w", a.Module, err)
		}
		up, err := n.be.Download(a.Up)
		if err != nil {
			return nil, fmt.Errorf("lora: export %s: %w", a.Module, err)
		}
		layer := &Layer{
			Component: sdxl.UNet, Module: a.Module, Source: a.Module,
			Down: down, Up: up, Rank: a.Rank, In: a.In, Out: a.Out,
			TargetShape: []int{a.Out, a.In},
			Alpha:       n.Config.Alpha, HasAlpha: true,
		}
		l.Layers[layer.Key()] = layer
	}
	return l, nil
}

// Load sets the network's weights from l, which must hold exactly the
// network's modules (UNet) with the same sizes and scale; the error names
// what differs. Nothing changes on an error.
func (n *Network) Load(l *LoRA) error {
	where := l.Path
	if where == "" {
		where = "the LoRA"
	}
	values := make([][]float32, 0, 2*len(n.Adapters))
	seen := map[string]bool{}
	for _, a := range n.Adapters {
		key := LayerKey(sdxl.UNet, a.Module)
		layer := l.Layers[key]
		if layer == nil {
			return fmt.Errorf("lora: %s has no layer for %s, which the network trains", where, key)
		}
		seen[key] = true
		if err := layer.check(); err != nil {
			return err
		}
		if layer.Rank != a.Rank || layer.In != a.In || layer.Out != a.Out {
			return fmt.Errorf("lora: %s: layer %s is rank %d, %d → %d; the network's is rank %d, %d → %d", where, key, layer.Rank, layer.In, layer.Out, a.Rank, a.In, a.Out)
		}
		if s := layer.Scale(); math.Abs(float64(s-a.Scale)) > 1e-6*math.Abs(float64(a.Scale)) {
			return fmt.Errorf("lora: %s: layer %s has scale %g (alpha %g, rank %d); the network's is %g (alpha %g)", where, key, s, layer.Alpha, layer.Rank, a.Scale, n.Config.Alpha)
		}
		values = append(values, layer.Down, layer.Up)
	}
	var extra []string
	for _, k := range l.Keys() {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("lora: %s has %d layers the network does not train: %s", where, len(extra), strings.Join(extra, ", "))
	}
	return n.SetParams(values)
}

// Detach removes the adapters from the model's Linears (the network keeps
// its weights; Attach puts them back).
func (n *Network) Detach() {
	for _, a := range n.Adapters {
		a.FreeCache()
		if l := n.linears[a.Module]; l != nil && l.Adapter == a {
			l.Adapter = nil
		}
	}
}

// Attach puts the adapters back on the model's Linears after Detach; a
// Linear that meanwhile got another adapter is an error.
func (n *Network) Attach() error {
	for _, a := range n.Adapters {
		l := n.linears[a.Module]
		if l == nil {
			return fmt.Errorf("lora: the model has no linear %s any more", a.Module)
		}
		if l.Adapter != nil && l.Adapter != a {
			return fmt.Errorf("lora: %s has another adapter attached", a.Module)
		}
	}
	for _, a := range n.Adapters {
		n.linears[a.Module].Adapter = a
	}
	return nil
}

// Free detaches the network and releases its weights, gradients and caches.
func (n *Network) Free() {
	n.Detach()
	for _, a := range n.Adapters {
		release(&a.Down, &a.Up, &a.DownGrad, &a.UpGrad)
	}
}

// Forward returns A(x) = Scale · (dropout(x)·Downᵀ)·Upᵀ (..., Out) for x
// (..., In); with train it keeps a view of x and the scaled hidden
// (..., Rank) for Backward — the only activations the backward needs.
func (a *Adapter) Forward(x *tensor.Tensor, train bool) (*tensor.Tensor, error) {
	if x.Rank() == 0 || x.Dim(-1) != a.In {
		return nil, fmt.Errorf("lora: %s (%d → %d): input is %s", a.Module, a.In, a.Out, x.Shape())
	}
	be := x.Backend()
	key, drop := a.dropoutKey()
	xin := x
	if drop {
		mask, err := a.mask(key, x.Shape())
		if err != nil {
			return nil, err
		}
		xin, err = be.Binary(tensor.Mul, x, mask) // (..., In)
		mask.Free()
		if err != nil {
			return nil, fmt.Errorf("lora: %s dropout: %w", a.Module, err)
		}
	}
	h, err := tensor.Linear(be, xin, a.Down, nil) // (..., Rank)
	if xin != x {
		xin.Free()
	}
	if err != nil {
		return nil, fmt.Errorf("lora: %s: %w", a.Module, err)
	}
	hs, err := be.Scale(h, a.Scale) // (..., Rank): scaling the narrow side is cheapest
	h.Free()
	if err != nil {
		return nil, fmt.Errorf("lora: %s: %w", a.Module, err)
	}
	y, err := tensor.Linear(be, hs, a.Up, nil) // (..., Out)
	if err != nil {
		hs.Free()
		return nil, fmt.Errorf("lora: %s: %w", a.Module, err)
	}
	if !train {
		hs.Free()
		return y, nil
	}
	a.FreeCache()
	if a.x, err = x.Reshape(x.Shape()...); err != nil { // a view, no copy
		tensor.FreeAll(hs, y)
		return nil, fmt.Errorf("lora: %s: %w", a.Module, err)
	}
	a.hs, a.dropKey, a.dropped = hs, key, drop
	return y, nil
}

// Backward returns dx (..., In) for dout (..., Out) and adds the factors'
// gradients into DownGrad and UpGrad:
//
//	dUp   = doutᵀ · hs            (Out, Rank)
//	dh    = Scale · dout · Up     (..., Rank)
//	dDown = dhᵀ · dropout(x)      (Rank, In)
//	dx    = mask ⊙ (dh · Down)    (..., In)
func (a *Adapter) Backward(dout *tensor.Tensor) (*tensor.Tensor, error) {
	if a.x == nil || a.hs == nil {
		return nil, fmt.Errorf("lora: %s: backward without a training forward", a.Module)
	}
	be := dout.Backend()
	wrap := func(err error) error { return fmt.Errorf("lora: %s backward: %w", a.Module, err) }
	dhs, dup, _, err := tensor.LinearBackward(be, dout, a.hs, a.Up, tensor.GradX|tensor.GradW) // (..., Rank), (Out, Rank)
	if err != nil {
		return nil, wrap(err)
	}
	if err := tensor.Accumulate(&a.UpGrad, dup); err != nil {
		dhs.Free()
		return nil, wrap(err)
	}
	dh, err := be.Scale(dhs, a.Scale) // (..., Rank)
	dhs.Free()
	if err != nil {
		return nil, wrap(err)
	}
	defer dh.Free()
	var mask *tensor.Tensor
	xin := a.x
	if a.dropped {
		if mask, err = a.mask(a.dropKey, a.x.Shape()); err != nil {
			return nil, wrap(err)
		}
		defer mask.Free()
		if xin, err = be.Binary(tensor.Mul, a.x, mask); err != nil { // (..., In)
			return nil, wrap(err)
		}
		defer xin.Free()
	}
	dx, ddown, _, err := tensor.LinearBackward(be, dh, xin, a.Down, tensor.GradX|tensor.GradW) // (..., In), (Rank, In)
	if err != nil {
		return nil, wrap(err)
	}
	if err := tensor.Accumulate(&a.DownGrad, ddown); err != nil {
		dx.Free()
		return nil, wrap(err)
	}
	if mask != nil {
		m, err := be.Binary(tensor.Mul, dx, mask) // (..., In)
		dx.Free()
		if err != nil {
			return nil, wrap(err)
		}
		dx = m
	}
	return dx, nil
}

// FreeCache releases what a training Forward kept.
func (a *Adapter) FreeCache() {
	release(&a.x, &a.hs)
	a.dropped = false
}

// dropoutKey returns the key of this forward's dropout mask and whether
// dropout is on (the network training with a non-zero probability).
func (a *Adapter) dropoutKey() (uint64, bool) {
	n := a.net
	if n == nil || !n.training || n.Config.Dropout == 0 {
		return 0, false
	}
	return mix(mix(n.dropoutSeed, uint64(n.dropoutStep)), a.salt), true
}

// mask uploads the dropout mask of key for a tensor of shape: 0 where an
// element is dropped, 1/(1−p) elsewhere (torch's inverted dropout).
func (a *Adapter) mask(key uint64, shape tensor.Shape) (*tensor.Tensor, error) {
	m := DropoutMask(key, shape.Numel(), a.net.Config.Dropout)
	t, err := a.net.be.Upload(m, shape, tensor.F32)
	if err != nil {
		return nil, fmt.Errorf("lora: %s dropout mask: %w", a.Module, err)
	}
	return t, nil
}

// DropoutMask returns n mask values for probability p: element i is 0 when
// the uniform drawn from hash(key, i) is below p, else 1/(1−p). It is
// counter-based — any element can be drawn alone — so the mask is the same
// however the work is split.
func DropoutMask(key uint64, n int, p float32) []float32 {
	m := make([]float32, n)
	keep := float32(1 / (1 - float64(p)))
	fill := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			u := float64(splitmix(key+uint64(i)*0x9e3779b97f4a7c15)>>11) * 0x1p-53 // U[0, 1)
			if u >= float64(p) {
				m[i] = keep
			}
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || n < 1<<16 {
		fill(0, n)
		return m
	}
	var wg sync.WaitGroup
	for k := range workers {
		lo, hi := k*n/workers, (k+1)*n/workers
		wg.Go(func() { fill(lo, hi) })
	}
	wg.Wait()
	return m
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
