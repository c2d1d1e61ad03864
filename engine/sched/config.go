package sched

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// Config is a diffusers scheduler configuration (scheduler_config.json). One
// struct serves every scheduler here: each reads the fields it knows, as
// diffusers' from_config does. Pointer fields are optional: nil means the
// scheduler class's own default (which differs between classes).
type Config struct {
	NumTrainTimesteps int       `json:"num_train_timesteps"`
	BetaStart         float64   `json:"beta_start"`
	BetaEnd           float64   `json:"beta_end"`
	BetaSchedule      string    `json:"beta_schedule"`    // linear, scaled_linear, squaredcos_cap_v2
	TrainedBetas      []float64 `json:"trained_betas"`    // overrides the schedule when set
	PredictionType    string    `json:"prediction_type"`  // epsilon, v_prediction, sample
	TimestepSpacing   string    `json:"timestep_spacing"` // leading, trailing, linspace
	StepsOffset       int       `json:"steps_offset"`
	UseKarrasSigmas   bool      `json:"use_karras_sigmas"`
	InterpolationType string    `json:"interpolation_type"` // Euler: linear
	TimestepType      string    `json:"timestep_type"`      // Euler: discrete
	SigmaMin          *float64  `json:"sigma_min"`          // Karras range override
	SigmaMax          *float64  `json:"sigma_max"`          // Karras range override
	RescaleZeroSNR    bool      `json:"rescale_betas_zero_snr"`

	// DDPM
	VarianceType     string   `json:"variance_type"` // fixed_small (DDPM default)
	ClipSample       *bool    `json:"clip_sample"`   // DDPM default true
	ClipSampleRange  *float64 `json:"clip_sample_range"`
	Thresholding     bool     `json:"thresholding"`
	ClassName        string   `json:"_class_name"`
	DiffusersVersion string   `json:"_diffusers_version"`

	// DPM-Solver multistep
	SolverOrder      *int     `json:"solver_order"`       // default 2
	AlgorithmType    string   `json:"algorithm_type"`     // default dpmsolver++
	SolverType       string   `json:"solver_type"`        // default midpoint
	LowerOrderFinal  *bool    `json:"lower_order_final"`  // default true
	EulerAtFinal     bool     `json:"euler_at_final"`     // default false
	UseLuLambdas     bool     `json:"use_lu_lambdas"`     // unsupported when true
	FinalSigmasType  string   `json:"final_sigmas_type"`  // default zero
	LambdaMinClipped *float64 `json:"lambda_min_clipped"` // default -Inf (nil)
}

// SDXLConfig returns the scheduler configuration that ships with
// stabilityai/stable-diffusion-xl-base-1.0 (scheduler/scheduler_config.json:
// EulerDiscreteScheduler, scaled_linear 0.00085..0.012 over 1000 steps,
// leading spacing with steps_offset 1, epsilon prediction, no clipping).
func SDXLConfig() Config {
	noClip := false
	return Config{
		ClipSample:        &noClip,
		NumTrainTimesteps: 1000,
		BetaStart:         0.00085,
		BetaEnd:           0.012,
		BetaSchedule:      "scaled_linear",
		PredictionType:    "epsilon",
		TimestepSpacing:   "leading",
		StepsOffset:       1,
		InterpolationType: "linear",
		TimestepType:      "discrete",
	}
}

// ParseConfig decodes a scheduler_config.json document. Python's json module
// writes the non-standard tokens Infinity, -Infinity and NaN (diffusers saves
// lambda_min_clipped = -inf that way); they are read as JSON null, which
// every field here treats as "the default".
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(nonFiniteToNull(data), &c); err != nil {
		return Config{}, err
	}
	return c.withDefaults(), nil
}

// withDefaults fills the fields left empty with diffusers' SchedulerMixin
// defaults (those every class shares).
func (c Config) withDefaults() Config {
	if c.NumTrainTimesteps == 0 {
		c.NumTrainTimesteps = 1000
	}
	if c.BetaSchedule == "" {
		c.BetaSchedule = "linear"
	}
	if c.BetaStart == 0 && c.BetaEnd == 0 && c.TrainedBetas == nil {
		c.BetaStart, c.BetaEnd = 0.0001, 0.02
	}
	if c.PredictionType == "" {
		c.PredictionType = "epsilon"
	}
	if c.TimestepSpacing == "" {
		c.TimestepSpacing = "linspace"
	}
	return c
}

// LoadConfig reads and parses a scheduler_config.json file; errors name it.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("sched: %v", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("sched: %s: %v", path, err)
	}
	return c, nil
}

// validateCommon checks the fields every scheduler here reads.
func (c Config) validateCommon() error {
	if c.NumTrainTimesteps < 2 {
		return fmt.Errorf("num_train_timesteps %d: need at least 2", c.NumTrainTimesteps)
	}
	switch c.PredictionType {
	case "epsilon", "v_prediction", "sample":
	default:
		return fmt.Errorf("prediction_type %q: want epsilon, v_prediction or sample", c.PredictionType)
	}
	switch c.TimestepSpacing {
	case "leading", "trailing", "linspace":
	default:
		return fmt.Errorf("timestep_spacing %q: want leading, trailing or linspace", c.TimestepSpacing)
	}
	if c.RescaleZeroSNR {
		return fmt.Errorf("rescale_betas_zero_snr is not supported")
	}
	if c.TrainedBetas != nil && len(c.TrainedBetas) != c.NumTrainTimesteps {
		return fmt.Errorf("trained_betas has %d values, num_train_timesteps is %d", len(c.TrainedBetas), c.NumTrainTimesteps)
	}
	return nil
}

// nonFiniteToNull replaces the bare tokens NaN, Infinity and -Infinity
// outside JSON strings by null.
func nonFiniteToNull(data []byte) []byte {
	if !bytes.Contains(data, []byte("Infinity")) && !bytes.Contains(data, []byte("NaN")) {
		return data
	}
	out := make([]byte, 0, len(data))
	inString, escaped := false, false
	for i := 0; i < len(data); i++ {
		b := data[i]
		if inString {
			out = append(out, b)
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
			continue
		}
		if b == '"' {
			inString = true
			out = append(out, b)
			continue
		}
		matched := false
		for _, tok := range []string{"-Infinity", "Infinity", "NaN"} {
			if bytes.HasPrefix(data[i:], []byte(tok)) {
				out = append(out, "null"...)
				i += len(tok) - 1
				matched = true
				break
			}
		}
		if !matched {
			out = append(out, b)
		}
	}
	return out
}

// f32 rounds to float32, the precision of torch's float32 tensors.
func f32(x float64) float32 { return float32(x) }

// sqrt32 is torch's float32 sqrt (correctly rounded; the float64 square root
// of a float32 rounds to the correctly rounded float32 result).
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// log32 is a float32 natural logarithm (float64 evaluation, rounded).
func log32(x float32) float32 { return float32(math.Log(float64(x))) }

// exp32 is a float32 exponential (float64 evaluation, rounded).
func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }
