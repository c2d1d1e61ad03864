package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"lorastudio/engine/lora"
	"lorastudio/engine/train/dataset"
	"lorastudio/engine/train/optim"
)

// Config is every setting of a training run (`lorastudio train`'s flags),
// JSON-tagged so app/studio stores it with the run. Default gives the
// tutorial's (ORIGIN.md: LoraConfig(r=8, lora_alpha=16,
// target_modules=["to_q","to_k","to_v","to_out.0"]), AdamW, 1024²).
type Config struct {
	// Model names the base model for the caller (a diffusers folder or a
	// single file; "" is the demo model). Run is given the opened source;
	// the name is recorded in the state and the LoRA's metadata.
	Model string `json:"model"`

	// Rank and Alpha give the adapters' size and scale (Alpha/Rank).
	Rank  int     `json:"rank"`
	Alpha float32 `json:"alpha"`
	// Targets is a preset ("attn", "attn-mlp") or a comma-separated list of
	// module-name suffixes (lora.TargetPreset).
	Targets string `json:"targets"`
	// Init is "kohya" (down kaiming-uniform, up zeros) or "gaussian" (peft).
	Init string `json:"init"`
	// Dropout is the LoRA dropout on the adapters' input (0 = off).
	Dropout float32 `json:"dropout"`

	// Data is the dataset settings (buckets, crops, flips, captions).
	Data dataset.Options `json:"data"`
	// Batch is the micro-batch size; GradAccum the micro-batches whose
	// gradients one optimizer step sums (effective batch Batch·GradAccum).
	Batch     int `json:"batch"`
	GradAccum int `json:"grad_accum"`

	// LR is the base learning rate; Scheduler constant|linear|cosine with
	// WarmupSteps of linear warm-up (diffusers' get_scheduler).
	LR          float64 `json:"lr"`
	Scheduler   string  `json:"scheduler"`
	WarmupSteps int     `json:"warmup_steps"`
	// MaxSteps is the number of optimizer steps; 0 means Epochs full epochs.
	MaxSteps int `json:"max_steps"`
	Epochs   int `json:"epochs"`
	// MaxGradNorm clips the gradients' total L2 norm (0 = no clipping).
	MaxGradNorm float64 `json:"max_grad_norm"`
	// WeightDecay, Beta1, Beta2 and Eps are AdamW's (torch's defaults).
	WeightDecay float64 `json:"weight_decay"`
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Eps         float64 `json:"eps"`

	// MinSNRGamma weights each sample's loss by min(SNR, γ)/SNR (Hang et
	// al. 2023, kohya's apply_snr_weight); 0 = off.
	MinSNRGamma float64 `json:"min_snr_gamma"`
	// NoiseOffset adds offset·randn(N, C, 1, 1) to the noise; 0 = off.
	NoiseOffset float64 `json:"noise_offset"`
	// Seed makes the run a pure function of its settings: initial weights,
	// data order, noise, timesteps and dropout all derive from it.
	Seed uint64 `json:"seed"`
	// GradientCheckpointing recomputes each UNet resnet and transformer
	// block in backward instead of keeping its activations.
	GradientCheckpointing bool `json:"gradient_checkpointing"`

	// SaveEvery writes a numbered LoRA file and a resumable state every N
	// steps (0 = only at the end and on stop).
	SaveEvery int `json:"save_every"`
	// SampleEvery generates SamplePrompts every N steps (0 = never); with no
	// prompts, the first two captions of the dataset are used.
	SampleEvery   int      `json:"sample_every"`
	SamplePrompts []string `json:"sample_prompts"`
	// SampleSteps, SampleGuidance, SampleSeed and SampleSize drive the
	// sample images (DPM-Solver++ steps, CFG scale, first seed — prompt i
	// uses SampleSeed+i — and the square side; 0 = Data.Resolution).
	SampleSteps    int     `json:"sample_steps"`
	SampleGuidance float64 `json:"sample_guidance"`
	SampleSeed     uint64  `json:"sample_seed"`
	SampleSize     int     `json:"sample_size"`

	// CacheDir holds the latent and text-embedding caches, shared between
	// runs (app/studio passes <data>/cache/train); "" is <runDir>/cache.
	CacheDir string `json:"cache_dir,omitempty"`

	// Output is the final LoRA file (kohya, diffusers) or folder (peft);
	// "" writes <runDir>/lora.safetensors (or <runDir>/lora for peft).
	Output string `json:"output"`
	// Format is kohya (default), peft or diffusers; SavePrecision fp16 or fp32.
	Format        string `json:"format"`
	SavePrecision string `json:"save_precision"`
	// Metadata is added to the kohya file's safetensors metadata (ss_*,
	// modelspec.* that only the caller knows: model name and hash, tag
	// frequency, dataset dirs, title). Run adds the ones it knows (steps,
	// epoch, rank, alpha, learning rate, resolution, seed, times).
	Metadata map[string]string `json:"metadata,omitempty"`
	// ModelHash is the base model's content hash when the caller knows it
	// (app/studio hashes every model it opens): a resume on other weights
	// at the same path is refused, and the latent and text caches are keyed
	// by the weights, not the path. "" falls back to path + UNet config.
	ModelHash string `json:"model_hash,omitempty"`
}

// Default returns the tutorial's settings: LoRA r 8, alpha 16 on the
// attention projections (attn preset), kohya init, AdamW lr 1e-4 with
// torch's betas/eps and weight decay 1e-2, constant schedule, 1024² buckets,
// batch 1, 10 epochs, gradient clipping at 1.0, gradient checkpointing on,
// a checkpoint and samples every 500 steps, kohya output in fp16.
func Default() Config {
	a := optim.DefaultAdamW(1e-4)
	return Config{
		Rank:                  8,
		Alpha:                 16,
		Targets:               "attn",
		Init:                  "kohya",
		Data:                  dataset.DefaultOptions(),
		Batch:                 1,
		GradAccum:             1,
		LR:                    a.LR,
		Scheduler:             "constant",
		Epochs:                10,
		MaxGradNorm:           1,
		WeightDecay:           a.WeightDecay,
		Beta1:                 a.Beta1,
		Beta2:                 a.Beta2,
		Eps:                   a.Eps,
		Seed:                  42,
		GradientCheckpointing: true,
		SaveEvery:             500,
		SampleEvery:           500,
		SampleSteps:           25,
		SampleGuidance:        5,
		SampleSeed:            1,
		Format:                "kohya",
		SavePrecision:         "fp16",
	}
}

// AdamW returns the optimizer settings of c.
func (c Config) AdamW() optim.AdamWConfig {
	return optim.AdamWConfig{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay}
}

// finite reports whether x is a finite number.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Validate reports the first setting that cannot work, naming it as the
// CLI's flag does.
func (c Config) Validate() error {
	switch {
	case c.Rank < 1:
		return fmt.Errorf("train: rank %d: want 1 or more", c.Rank)
	case !(c.Alpha > 0) || math.IsInf(float64(c.Alpha), 0):
		return fmt.Errorf("train: alpha %v: want a positive number", c.Alpha)
	case strings.TrimSpace(c.Targets) == "":
		return fmt.Errorf("train: targets: want a preset (attn, attn-mlp) or a list of module names")
	case c.Init != "kohya" && c.Init != "gaussian":
		return fmt.Errorf("train: init %q: want kohya or gaussian", c.Init)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("train: dropout %v: want a probability in [0, 1)", c.Dropout)
	case c.Batch < 1:
		return fmt.Errorf("train: batch %d: want 1 or more", c.Batch)
	case c.GradAccum < 1:
		return fmt.Errorf("train: grad-accum %d: want 1 or more", c.GradAccum)
	case !(c.LR > 0) || !finite(c.LR):
		return fmt.Errorf("train: lr %v: want a positive number", c.LR)
	case c.WarmupSteps < 0:
		return fmt.Errorf("train: warmup-steps %d: want 0 or more", c.WarmupSteps)
	case c.MaxSteps < 0:
		return fmt.Errorf("train: max-steps %d: want 0 or more", c.MaxSteps)
	case c.MaxSteps == 0 && c.Epochs < 1:
		return fmt.Errorf("train: neither max-steps nor epochs is set")
	case c.Epochs < 0:
		return fmt.Errorf("train: epochs %d: want 0 or more", c.Epochs)
	case !(c.MaxGradNorm >= 0) || !finite(c.MaxGradNorm):
		return fmt.Errorf("train: max-grad-norm %v: want 0 (off) or a positive number", c.MaxGradNorm)
	case !(c.MinSNRGamma >= 0) || !finite(c.MinSNRGamma):
		return fmt.Errorf("train: min-snr-gamma %v: want 0 (off) or a positive number", c.MinSNRGamma)
	case !(c.NoiseOffset >= 0) || !finite(c.NoiseOffset):
		return fmt.Errorf("train: noise-offset %v: want 0 (off) or a positive number", c.NoiseOffset)
	case c.SaveEvery < 0:
		return fmt.Errorf("train: save-every %d: want 0 or more", c.SaveEvery)
	case c.SampleEvery < 0:
		return fmt.Errorf("train: sample-every %d: want 0 or more", c.SampleEvery)
	case c.SampleEvery > 0 && c.SampleSteps < 1:
		return fmt.Errorf("train: sample-steps %d: want 1 or more", c.SampleSteps)
	case c.SampleEvery > 0 && (!(c.SampleGuidance >= 0) || !finite(c.SampleGuidance)):
		return fmt.Errorf("train: sample-guidance %v: want 0 or more", c.SampleGuidance)
	case c.SampleSize < 0 || c.SampleSize%8 != 0:
		return fmt.Errorf("train: sample-size %d: want 0 (the resolution) or a positive multiple of 8", c.SampleSize)
	}
	switch c.Scheduler {
	case "constant", "linear", "cosine":
	default:
		return fmt.Errorf("train: scheduler %q: want constant, linear or cosine", c.Scheduler)
	}
	switch c.Format {
	case "kohya", "peft", "diffusers":
	default:
		return fmt.Errorf("train: format %q: want kohya, peft or diffusers", c.Format)
	}
	switch c.SavePrecision {
	case "fp16", "fp32":
	default:
		return fmt.Errorf("train: save-precision %q: want fp16 or fp32", c.SavePrecision)
	}
	if err := c.AdamW().Validate(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := c.Data.Validate(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if _, err := c.targets(); err != nil {
		return err
	}
	return nil
}

// Hash identifies the settings that shape the trajectory of a run, so a
// resume can tell whether it continues the same run: all but the model name
// (checked by identity), the output, the sampling and checkpoint cadence and
// the metadata; with a constant schedule the length of the run (MaxSteps,
// Epochs) is left out too, so a finished run can be resumed to train longer.
func (c Config) Hash() string {
	b, _ := json.Marshal(c.hashed()) // a plain struct of numbers and strings: cannot fail
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hashed is c with the settings Hash leaves out cleared.
func (c Config) hashed() Config {
	c.Model, c.Output, c.Format, c.SavePrecision, c.Metadata, c.CacheDir, c.ModelHash = "", "", "", "", nil, "", ""
	c.SaveEvery, c.SampleEvery, c.SamplePrompts = 0, 0, nil
	c.SampleSteps, c.SampleGuidance, c.SampleSeed, c.SampleSize = 0, 0, 0, 0
	if c.Scheduler == "constant" {
		c.MaxSteps, c.Epochs = 0, 0
	}
	return c
}

// targets expands Targets (lora.TargetPreset).
func (c Config) targets() ([]string, error) {
	t, err := lora.TargetPreset(c.Targets)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return t, nil
}

// Network returns the LoRA network's shape of c.
func (c Config) Network() (lora.NetworkConfig, error) {
	t, err := c.targets()
	if err != nil {
		return lora.NetworkConfig{}, err
	}
	return lora.NetworkConfig{Rank: c.Rank, Alpha: c.Alpha, Targets: t, Init: c.Init, Dropout: c.Dropout}, nil
}
