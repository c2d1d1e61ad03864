package train

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"lorastudio/engine/sdxl/pipeline"
)

// samplePrompts returns the prompts of the sample images: the configured
// ones, else the first two distinct captions of the dataset.
func (r *runner) samplePrompts() []string {
	if len(r.cfg.SamplePrompts) > 0 {
		return r.cfg.SamplePrompts
	}
	var out []string
	for _, im := range r.imgs {
		c := strings.TrimSpace(im.Caption)
		if c != "" && (len(out) == 0 || out[0] != c) {
			out = append(out, c)
		}
		if len(out) == 2 {
			break
		}
	}
	return out
}

// sample generates every sample prompt through the UNet with the live
// LoRA (dropout off), prompt i with seed SampleSeed+i, writes each PNG in
// runDir/samples and reports it. The VAE and text encoders are loaded for
// the occasion and freed afterwards.
func (r *runner) sample() error {
	prompts := r.samplePrompts()
	if len(prompts) == 0 {
		return nil
	}
	r.sampledAt = r.step
	r.model.FreeCache()
	r.net.Train(false)
	defer r.net.Train(true)
	p, err := pipeline.WithUNet(r.be, r.src, r.model)
	if err != nil {
		return fmt.Errorf("train: samples at step %d: %w", r.step, err)
	}
	defer p.Release()
	size := r.cfg.SampleSize
	if size == 0 {
		size = r.cfg.Data.Resolution
	}
	steps := r.cfg.SampleSteps
	if steps < 1 {
		// Validate checks SampleSteps only when SampleEvery schedules
		// samples; a Sample now request on a run without them takes the
		// default.
		steps = Default().SampleSteps
	}
	for i, prompt := range prompts {
		req := pipeline.Request{Prompt: prompt, Steps: steps, Guidance: r.cfg.SampleGuidance,
			Sampler: "dpmpp_2m", Width: size, Height: size, Seed: r.cfg.SampleSeed + uint64(i)}
		img, err := p.Generate(r.ctx, req, nil)
		if err != nil {
			return fmt.Errorf("train: sample %d at step %d: %w", i+1, r.step, err)
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return fmt.Errorf("train: sample %d at step %d: %w", i+1, r.step, err)
		}
		path := filepath.Join(r.dir, samplesDir, fmt.Sprintf("step-%06d-%d.png", r.step, i+1))
		if err := writeAtomic(path, buf.Bytes()); err != nil {
			return fmt.Errorf("train: sample at step %d: %w", r.step, err)
		}
		r.samples = append(r.samples, path)
		r.emit(Event{Kind: Sample, Step: r.step, Total: r.total, Epoch: r.epochOf(r.step - 1), Path: path, Prompt: prompt})
	}
	return nil
}

// writeAtomic writes data at path through a synced temporary file and a
// rename, so path never holds a partial file.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(name, 0o644)
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
