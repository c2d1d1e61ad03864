// Package optim holds the trainer's optimizer, learning-rate schedules and
// gradient clipping, host-side in float32 exactly as PyTorch computes them,
// so a step here gives the parameters torch gives (the fixtures' two golden
// AdamW steps check it).
package optim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// AdamWConfig is torch.optim.AdamW's hyper-parameters (its defaults are
// betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2).
type AdamWConfig struct {
	LR          float64 `json:"lr"`
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Eps         float64 `json:"eps"`
	WeightDecay float64 `json:"weight_decay"`
}

// DefaultAdamW returns torch.optim.AdamW's defaults with learning rate lr.
func DefaultAdamW(lr float64) AdamWConfig {
	return AdamWConfig{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}
}

// Validate checks the ranges torch.optim.AdamW checks.
func (c AdamWConfig) Validate() error {
	switch {
	case !(c.LR >= 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("optim: invalid learning rate %v", c.LR)
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("optim: invalid beta1 %v (0 ≤ β1 < 1)", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("optim: invalid beta2 %v (0 ≤ β2 < 1)", c.Beta2)
	case !(c.Eps >= 0):
		return fmt.Errorf("optim: invalid eps %v", c.Eps)
	case !(c.WeightDecay >= 0):
		return fmt.Errorf("optim: invalid weight decay %v", c.WeightDecay)
	}
	return nil
}

var (
	adamwCall = regexp.MustCompile(`^\s*(?:torch\.optim\.)?AdamW\s*\((.*)\)\s*$`)
	adamwArg  = regexp.MustCompile(`^\s*(\w+)\s*=\s*(.+?)\s*$`)
)

// ParseAdamW reads a Python constructor call such as
// "torch.optim.AdamW(lr=1e-4, betas=(0.9,0.999), weight_decay=1e-2, eps=1e-8)"
// (how the fixtures record the optimizer); arguments it omits keep torch's
// defaults.
func ParseAdamW(call string) (AdamWConfig, error) {
	m := adamwCall.FindStringSubmatch(call)
	if m == nil {
		return AdamWConfig{}, fmt.Errorf("optim: %q is not an AdamW(...) call", call)
	}
	c := DefaultAdamW(1e-3) // torch's default lr
	for _, arg := range splitArgs(m[1]) {
		if strings.TrimSpace(arg) == "" {
			continue
		}
		kv := adamwArg.FindStringSubmatch(arg)
		if kv == nil {
			return AdamWConfig{}, fmt.Errorf("optim: %q: argument %q is not name=value", call, arg)
		}
		var err error
		switch kv[1] {
		case "lr":
			c.LR, err = strconv.ParseFloat(kv[2], 64)
		case "eps":
			c.Eps, err = strconv.ParseFloat(kv[2], 64)
		case "weight_decay":
			c.WeightDecay, err = strconv.ParseFloat(kv[2], 64)
		case "betas":
			t := strings.Trim(kv[2], "() ")
			parts := strings.Split(t, ",")
			if len(parts) != 2 {
				return AdamWConfig{}, fmt.Errorf("optim: %q: betas %q is not a pair", call, kv[2])
			}
			if c.Beta1, err = strconv.ParseFloat(strings.TrimSpace(parts[0]), 64); err == nil {
				c.Beta2, err = strconv.ParseFloat(strings.TrimSpace(parts[1]), 64)
			}
		case "amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused":
			if v := strings.TrimSpace(kv[2]); v != "False" && v != "None" {
				return AdamWConfig{}, fmt.Errorf("optim: %q: %s=%s is not supported", call, kv[1], v)
			}
		default:
			return AdamWConfig{}, fmt.Errorf("optim: %q: unknown argument %q", call, kv[1])
		}
		if err != nil {
			return AdamWConfig{}, fmt.Errorf("optim: %q: %s: %v", call, kv[1], err)
		}
	}
	return c, c.Validate()
}

// splitArgs splits a Python argument list at the commas outside parentheses.
func splitArgs(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// AdamW is torch.optim.AdamW's single-tensor path (amsgrad off, maximize
// off) in float32. Its first and second moments (exp_avg, exp_avg_sq) are
// one float32 slice per parameter, zero until the first step.
type AdamW struct {
	Config AdamWConfig
	step   int         // steps taken (torch's state_steps, shared by all parameters here)
	m, v   [][]float32 // per parameter: exp_avg, exp_avg_sq
}

// NewAdamW returns an optimizer for parameters of the given sizes (number of
// elements each, in the order Step will receive them).
func NewAdamW(c AdamWConfig, sizes []int) *AdamW {
	o := &AdamW{Config: c, m: make([][]float32, len(sizes)), v: make([][]float32, len(sizes))}
	for i, n := range sizes {
		o.m[i] = make([]float32, n)
		o.v[i] = make([]float32, n)
	}
	return o
}

// Steps returns the number of steps taken (the bias corrections' t).
func (o *AdamW) Steps() int { return o.step }

// Step updates params in place from grads with learning rate lr (the
// schedule's value; Config.LR is only the base). For each element, as
// torch's _single_tensor_adamw does in float32:
//
//	param *= 1 − lr·wd
//	m = lerp(m, g, 1−β1)          (m + (1−β1)·(g − m))
//	v = β2·v + (1−β2)·g²
//	step_size = lr / (1 − β1ᵗ)
//	denom = √v / √(1 − β2ᵗ) + eps
//	param −= step_size · m / denom
//
// The scalars (1 − lr·wd, step_size, √(1 − β2ᵗ)) are computed in float64
// as Python floats and rounded to float32 where torch's tensor ops take
// them. A parameter with a nil gradient is skipped, as torch skips p.grad
// None.
func (o *AdamW) Step(params, grads [][]float32, lr float64) error {
	if len(params) != len(o.m) || len(grads) != len(o.m) {
		return fmt.Errorf("optim: AdamW step: %d parameters and %d gradients for %d states", len(params), len(grads), len(o.m))
	}
	for i := range params {
		if grads[i] != nil && (len(params[i]) != len(o.m[i]) || len(grads[i]) != len(o.m[i])) {
			return fmt.Errorf("optim: AdamW step: parameter %d has %d values and %d gradients, state %d", i, len(params[i]), len(grads[i]), len(o.m[i]))
		}
	}
	o.step++
	c := o.Config
	t := float64(o.step)
	bc1 := 1 - math.Pow(c.Beta1, t)
	bc2 := 1 - math.Pow(c.Beta2, t)
	decay := float32(1 - lr*c.WeightDecay)         // param.mul_(1 - lr * weight_decay)
	w1 := float32(1 - c.Beta1)                     // exp_avg.lerp_(grad, 1 - beta1)
	b2, w2 := float32(c.Beta2), float32(1-c.Beta2) // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
	stepSize := float32(lr / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	eps := float32(c.Eps)
	for i, p := range params {
		g := grads[i]
		if g == nil {
			continue
		}
		m, v := o.m[i], o.v[i]
		for j := range p {
			p[j] *= decay
			m[j] = lerp(m[j], g[j], w1)
			// explicit conversions round every operation as torch's kernels
			// do (Go may otherwise fuse a multiply-add)
			v[j] = float32(b2*v[j]) + float32(float32(w2*g[j])*g[j])
			denom := float32(float32(math.Sqrt(float64(v[j])))/bc2Sqrt) + eps
			p[j] += float32(-stepSize*m[j]) / denom // addcdiv_(exp_avg, denom, value=-step_size)
		}
	}
	return nil
}

// lerp is torch's CPU lerp kernel for float32: start + w·(end − start) when
// |w| < 0.5, else end − (end − start)·(1 − w), each rounded as float32.
func lerp(start, end, w float32) float32 {
	d := end - start
	if w < 0.5 && w > -0.5 {
		return start + float32(w*d)
	}
	return end - float32(d*(1-w))
}

// stateMagic begins a serialized optimizer state.
const stateMagic = "LSADAMW1"

// State serializes the optimizer: step count, then each parameter's size,
// exp_avg and exp_avg_sq (little-endian float32), so a resumed run continues
// bit for bit.
func (o *AdamW) State() []byte {
	n := len(stateMagic) + 8 + 8
	for _, m := range o.m {
		n += 8 + 8*len(m)
	}
	b := make([]byte, 0, n)
	b = append(b, stateMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(o.step))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(o.m)))
	for i, m := range o.m {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(m)))
		for _, x := range m {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		for _, x := range o.v[i] {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	}
	return b
}

// errState is wrapped by every Restore error.
var errState = errors.New("optim: corrupt AdamW state")

// Restore loads a State, refusing one made for other parameter sizes.
func (o *AdamW) Restore(b []byte) error {
	if len(b) < len(stateMagic)+16 || string(b[:len(stateMagic)]) != stateMagic {
		return fmt.Errorf("%w: missing header", errState)
	}
	b = b[len(stateMagic):]
	step := binary.LittleEndian.Uint64(b)
	count := binary.LittleEndian.Uint64(b[8:])
	b = b[16:]
	if count != uint64(len(o.m)) {
		return fmt.Errorf("%w: %d parameters, the optimizer has %d", errState, count, len(o.m))
	}
	for i := range o.m {
		if len(b) < 8 {
			return fmt.Errorf("%w: truncated at parameter %d", errState, i)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if n != uint64(len(o.m[i])) {
			return fmt.Errorf("%w: parameter %d has %d values, the optimizer's %d", errState, i, n, len(o.m[i]))
		}
		if uint64(len(b)) < 8*n {
			return fmt.Errorf("%w: truncated at parameter %d", errState, i)
		}
		for j := range o.m[i] {
			o.m[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
		b = b[4*n:]
		for j := range o.v[i] {
			o.v[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
		b = b[4*n:]
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last parameter", errState, len(b))
	}
	o.step = int(step)
	return nil
}
