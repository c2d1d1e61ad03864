package optim

import (
	"fmt"
	"math"
)

// Schedule is a learning-rate schedule as diffusers' get_scheduler builds
// it (a LambdaLR over the optimizer's base rate): Warmup steps rising
// linearly from 0, then
//
//	constant: Base
//	linear:   Base · (Total − step)/(Total − Warmup), down to 0 at Total
//	cosine:   Base · ½(1 + cos(π · progress)), progress = (step − Warmup)/(Total − Warmup)
//
// (diffusers' constant_with_warmup, linear and cosine with num_cycles 0.5).
type Schedule struct {
	Kind          string // constant | linear | cosine
	Warmup, Total int
	Base          float64
}

// Validate checks the kind and the step counts.
func (s Schedule) Validate() error {
	switch s.Kind {
	case "constant", "linear", "cosine":
	default:
		return fmt.Errorf("optim: unknown learning-rate schedule %q (constant, linear or cosine)", s.Kind)
	}
	if s.Warmup < 0 || s.Total < 0 {
		return fmt.Errorf("optim: schedule with %d warm-up steps of %d", s.Warmup, s.Total)
	}
	if s.Kind != "constant" && s.Total <= 0 {
		return fmt.Errorf("optim: a %s schedule needs the total number of steps", s.Kind)
	}
	return nil
}

// LR returns the learning rate of optimizer step step (0-based: the rate the
// step-th call to optimizer.step() uses, LambdaLR's last_epoch = step).
func (s Schedule) LR(step int) float64 {
	return s.Base * s.factor(step)
}

// factor is the LambdaLR multiplier lr_lambda(step).
func (s Schedule) factor(step int) float64 {
	if step < s.Warmup {
		return float64(step) / float64(max(1, s.Warmup))
	}
	switch s.Kind {
	case "linear":
		return math.Max(0, float64(s.Total-step)/float64(max(1, s.Total-s.Warmup)))
	case "cosine":
		progress := float64(step-s.Warmup) / float64(max(1, s.Total-s.Warmup))
		return math.Max(0, 0.5*(1+math.Cos(math.Pi*2*0.5*progress)))
	}
	return 1
}
