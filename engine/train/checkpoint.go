package train

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"lorastudio/engine/lora"
	"lorastudio/engine/safetensors"
)

// checkpoint writes the numbered LoRA file of the current step, then its
// state (each atomically), and only then forgets older states. On an error
// (a full disk) the previous checkpoint stays whole and the error says so.
func (r *runner) checkpoint() error {
	loraName := r.loraFileName(r.step)
	loraPath := filepath.Join(r.dir, checkpointDir, loraName)
	prev := "no earlier checkpoint exists"
	if r.lastState != "" {
		prev = "the previous checkpoint " + r.lastLoRA + " (state " + r.lastState + ") is kept"
	}
	if err := r.writeLoRA(loraPath, false); err != nil {
		return fmt.Errorf("train: checkpoint at step %d: %w; %s", r.step, err, prev)
	}
	s := &state{
		Step: r.step, Micro: r.step * r.cfg.GradAccum,
		Config: r.cfg, Hash: r.cfg.Hash(), Identity: r.id,
		LoRA: filepath.Join(checkpointDir, loraName), Loss: r.loss, Smooth: r.smooth, StartedAt: r.startedAt,
		names: r.names, params: r.params, optim: r.opt.State(),
	}
	s.Epoch, s.Position = s.Micro/max(1, r.perEpoch), s.Micro%max(1, r.perEpoch)
	path := statePath(r.dir, r.step)
	if err := s.write(path); err != nil {
		return fmt.Errorf("train: checkpoint at step %d: %w; %s", r.step, err, prev)
	}
	r.lastState, r.lastLoRA = path, loraPath
	pruneStates(r.dir)
	r.emit(Event{Kind: Checkpoint, Step: r.step, Total: r.total, Epoch: r.epochOf(max(r.step-1, 0)), Loss: r.loss, SmoothLoss: r.smooth, Path: loraPath})
	return nil
}

// loraFileName is the numbered LoRA file (or peft folder) of step.
func (r *runner) loraFileName(step int) string {
	if r.cfg.Format == "peft" {
		return fmt.Sprintf("lora-%06d", step)
	}
	return fmt.Sprintf("lora-%06d.safetensors", step)
}

// writeLoRA writes the network's current weights at path in the run's
// format and precision; final marks the run's output (its metadata says
// the training finished).
func (r *runner) writeLoRA(path string, final bool) error {
	l, err := r.net.Export()
	if err != nil {
		return err
	}
	dt := safetensors.F16
	if r.cfg.SavePrecision == "fp32" {
		dt = safetensors.F32
	}
	switch r.cfg.Format {
	case "peft":
		return lora.WritePEFT(path, l, dt)
	case "diffusers":
		return lora.WriteDiffusers(path, l, dt)
	}
	return lora.WriteKohya(path, l, r.src.Config(), dt, r.metadata(final))
}

// metadata is the kohya file's safetensors metadata: what sd-scripts writes
// and A1111, ComfyUI and Civitai read (ss_*, modelspec.*), then the
// caller's entries (model name and hash, tag frequency, title), which win.
func (r *runner) metadata(final bool) map[string]string {
	cfg := r.cfg
	images := 0
	for _, im := range r.imgs {
		images += max(im.Repeats, 1)
	}
	res := cfg.Data.Resolution
	m := map[string]string{
		"ss_base_model_version":          "sdxl_base_v1-0",
		"ss_network_module":              "networks.lora",
		"ss_network_dim":                 strconv.Itoa(cfg.Rank),
		"ss_network_alpha":               strconv.FormatFloat(float64(cfg.Alpha), 'g', -1, 32),
		"ss_num_train_images":            strconv.Itoa(images),
		"ss_steps":                       strconv.Itoa(r.step),
		"ss_max_train_steps":             strconv.Itoa(r.total),
		"ss_epoch":                       strconv.Itoa(r.epochOf(max(r.step-1, 0)) + 1),
		"ss_learning_rate":               strconv.FormatFloat(cfg.LR, 'g', -1, 64),
		"ss_unet_lr":                     strconv.FormatFloat(cfg.LR, 'g', -1, 64),
		"ss_lr_scheduler":                cfg.Scheduler,
		"ss_lr_warmup_steps":             strconv.Itoa(cfg.WarmupSteps),
		"ss_optimizer":                   "torch.optim.adamw.AdamW",
		"ss_batch_size_per_device":       strconv.Itoa(cfg.Batch),
		"ss_gradient_accumulation_steps": strconv.Itoa(cfg.GradAccum),
		"ss_max_grad_norm":               strconv.FormatFloat(cfg.MaxGradNorm, 'g', -1, 64),
		"ss_min_snr_gamma":               strconv.FormatFloat(cfg.MinSNRGamma, 'g', -1, 64),
		"ss_noise_offset":                strconv.FormatFloat(cfg.NoiseOffset, 'g', -1, 64),
		"ss_gradient_checkpointing":      strconv.FormatBool(cfg.GradientCheckpointing),
		"ss_resolution":                  fmt.Sprintf("(%d, %d)", res, res),
		"ss_enable_bucket":               strconv.FormatBool(!cfg.Data.NoBuckets),
		"ss_seed":                        strconv.FormatUint(cfg.Seed, 10),
		"ss_network_dropout":             strconv.FormatFloat(float64(cfg.Dropout), 'g', -1, 32),
		"ss_training_started_at":         unixString(r.startedAt),
		"modelspec.sai_model_spec":       "1.0.0",
		"modelspec.architecture":         "stable-diffusion-xl-v1-base/lora",
		"modelspec.implementation":       "https://github.com/Stability-AI/generative-models",
		"modelspec.resolution":           fmt.Sprintf("%dx%d", res, res),
		"modelspec.prediction_type":      r.obj.prediction,
		"modelspec.date":                 time.Now().UTC().Format("2006-01-02T15:04:05"),
		"modelspec.title":                "lorastudio",
	}
	if final {
		m["ss_training_finished_at"] = strconv.FormatInt(time.Now().Unix(), 10)
	}
	if cfg.Model != "" {
		m["ss_sd_model_name"] = filepath.Base(cfg.Model)
	}
	for k, v := range cfg.Metadata {
		m[k] = v
	}
	return m
}

// unixString converts an RFC 3339 time to kohya's Unix-seconds string.
func unixString(rfc string) string {
	t, err := time.Parse(time.RFC3339, rfc)
	if err != nil {
		return ""
	}
	return strconv.FormatInt(t.Unix(), 10)
}
