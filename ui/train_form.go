package ui

import (
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// trainField is one setting of `lorastudio train` in the Train screen's
// form: its widget, a one-line hint, and how it reads from and writes into
// a TrainConfig.
type trainField struct {
	flag     string // the CLI flag it mirrors (without --), the field's key
	label    string
	hint     string
	advanced bool
	obj      fyne.CanvasObject
	load     func(c *studio.TrainConfig) // shows c's value
	store    func(c *studio.TrainConfig) error
}

// trainForm is every training setting as widgets; changed is called on any edit.
type trainForm struct {
	fields  []*trainField
	byFlag  map[string]*trainField
	changed func()
	loading bool // load is filling the widgets: edits are not the user's
}

// newTrainForm builds the widgets of every setting; changed runs after each
// edit the user makes.
func newTrainForm(changed func()) *trainForm {
	f := &trainForm{byFlag: map[string]*trainField{}, changed: changed}
	onEdit := func() {
		if !f.loading && f.changed != nil {
			f.changed()
		}
	}
	intField := func(flag, label, hint string, adv bool, get func(*studio.TrainConfig) *int) {
		e := widget.NewEntry()
		e.OnChanged = func(string) { onEdit() }
		f.add(&trainField{flag: flag, label: label, hint: hint, advanced: adv, obj: e,
			load: func(c *studio.TrainConfig) { e.SetText(strconv.Itoa(*get(c))) },
			store: func(c *studio.TrainConfig) error {
				v, err := strconv.Atoi(strings.TrimSpace(e.Text))
				if err != nil {
					return fmt.Errorf("%s: %q is not a whole number", label, e.Text)
				}
				*get(c) = v
				return nil
			}})
	}
	uintField := func(flag, label, hint string, adv bool, get func(*studio.TrainConfig) *uint64) {
		e := widget.NewEntry()
		e.OnChanged = func(string) { onEdit() }
		f.add(&trainField{flag: flag, label: label, hint: hint, advanced: adv, obj: e,
			load: func(c *studio.TrainConfig) { e.SetText(strconv.FormatUint(*get(c), 10)) },
			store: func(c *studio.TrainConfig) error {
				v, err := strconv.ParseUint(strings.TrimSpace(e.Text), 10, 64)
				if err != nil {
					return fmt.Errorf("%s: %q is not a whole number of 0 or more", label, e.Text)
				}
				*get(c) = v
				return nil
			}})
	}
	floatField := func(flag, label, hint string, adv bool, get func(*studio.TrainConfig) *float64) {
		e := widget.NewEntry()
		e.OnChanged = func(string) { onEdit() }
		f.add(&trainField{flag: flag, label: label, hint: hint, advanced: adv, obj: e,
			load: func(c *studio.TrainConfig) { e.SetText(strconv.FormatFloat(*get(c), 'g', -1, 64)) },
			store: func(c *studio.TrainConfig) error {
				v, err := strconv.ParseFloat(strings.TrimSpace(e.Text), 64)
				if err != nil {
					return fmt.Errorf("%s: %q is not a number", label, e.Text)
				}
				*get(c) = v
				return nil
			}})
	}
	float32Field := func(flag, label, hint string, adv bool, get func(*studio.TrainConfig) *float32) {
		e := widget.NewEntry()
		e.OnChanged = func(string) { onEdit() }
		f.add(&trainField{flag: flag, label: label, hint: hint, advanced: adv, obj: e,
			load: func(c *studio.TrainConfig) { e.SetText(strconv.FormatFloat(float64(*get(c)), 'g', -1, 32)) },
			store: func(c *studio.TrainConfig) error {
				v, err := strconv.ParseFloat(strings.TrimSpace(e.Text), 32)
				if err != nil {
					return fmt.Errorf("%s: %q is not a number", label, e.Text)
				}
				*get(c) = float32(v)
				return nil
			}})
	}
	boolField := func(flag, label, hint string, adv bool, get func(*studio.TrainConfig) *bool) {
		ch := widget.NewCheck("", func(bool) { onEdit() })
		f.add(&trainField{flag: flag, label: label, hint: hint, advanced: adv, obj: ch,
			load:  func(c *studio.TrainConfig) { ch.SetChecked(*get(c)) },
			store: func(c *studio.TrainConfig) error { *get(c) = ch.Checked; return nil }})
	}
	choiceField := func(flag, label, hint string, adv bool, options []string, get func(*studio.TrainConfig) *string) {
		s := widget.NewSelect(options, func(string) { onEdit() })
		f.add(&trainField{flag: flag, label: label, hint: hint, advanced: adv, obj: s,
			load:  func(c *studio.TrainConfig) { s.SetSelected(*get(c)) },
			store: func(c *studio.TrainConfig) error { *get(c) = s.Selected; return nil }})
	}

	// The common settings, in the order a first run needs them.
	intField("resolution", "Resolution", "side of the training square; buckets keep the area ≤ resolution² (SDXL: 1024)", false,
		func(c *studio.TrainConfig) *int { return &c.Data.Resolution })
	intField("max-steps", "Steps", "optimizer steps to make; 0 trains for Epochs full epochs", false,
		func(c *studio.TrainConfig) *int { return &c.MaxSteps })
	intField("epochs", "Epochs", "passes over the dataset (with repeats) when Steps is 0", false,
		func(c *studio.TrainConfig) *int { return &c.Epochs })
	intField("rank", "Rank", "LoRA rank r: the adapters' width; larger learns more and weighs more", false,
		func(c *studio.TrainConfig) *int { return &c.Rank })
	float32Field("alpha", "Alpha", "scales the LoRA by alpha / rank (the tutorial: 16 at rank 8)", false,
		func(c *studio.TrainConfig) *float32 { return &c.Alpha })
	tgt := widget.NewSelectEntry([]string{"attn", "attn-mlp"})
	tgt.OnChanged = func(string) { onEdit() }
	f.add(&trainField{flag: "targets", label: "Targets", hint: "attn (to_q,k,v,out), attn-mlp (+ proj and feed-forward), or a comma-separated list",
		obj:   tgt,
		load:  func(c *studio.TrainConfig) { tgt.SetText(c.Targets) },
		store: func(c *studio.TrainConfig) error { c.Targets = strings.TrimSpace(tgt.Text); return nil }})
	floatField("lr", "Learning rate", "AdamW's base learning rate (1e-4 is the tutorial's)", false,
		func(c *studio.TrainConfig) *float64 { return &c.LR })
	intField("batch", "Batch", "images a micro-batch; more needs more memory", false,
		func(c *studio.TrainConfig) *int { return &c.Batch })
	intField("save-every", "Save every", "write a numbered LoRA and a resumable state every N steps (0: at the end and on Stop)", false,
		func(c *studio.TrainConfig) *int { return &c.SaveEvery })
	intField("sample-every", "Sample every", "draw the sample prompts every N steps (0: never)", false,
		func(c *studio.TrainConfig) *int { return &c.SampleEvery })
	prompts := widget.NewMultiLineEntry()
	prompts.SetMinRowsVisible(2)
	prompts.SetPlaceHolder("one prompt a line; empty: two captions of the dataset")
	prompts.OnChanged = func(string) { onEdit() }
	f.add(&trainField{flag: "sample-prompt", label: "Sample prompts", hint: "what the samples draw, one prompt a line",
		obj:  prompts,
		load: func(c *studio.TrainConfig) { prompts.SetText(strings.Join(c.SamplePrompts, "\n")) },
		store: func(c *studio.TrainConfig) error {
			c.SamplePrompts = nil
			for _, l := range strings.Split(prompts.Text, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					c.SamplePrompts = append(c.SamplePrompts, l)
				}
			}
			return nil
		}})

	// Advanced: the rest of `lorastudio train`'s settings.
	choiceField("scheduler", "LR schedule", "constant, linear decay or cosine, after the warm-up", true,
		[]string{"constant", "linear", "cosine"}, func(c *studio.TrainConfig) *string { return &c.Scheduler })
	intField("warmup-steps", "Warm-up steps", "steps of linear warm-up from 0 to the learning rate", true,
		func(c *studio.TrainConfig) *int { return &c.WarmupSteps })
	intField("grad-accum", "Gradient accumulation", "micro-batches summed into one optimizer step (effective batch = batch × this)", true,
		func(c *studio.TrainConfig) *int { return &c.GradAccum })
	floatField("max-grad-norm", "Max gradient norm", "clip the gradients' total norm (0: off)", true,
		func(c *studio.TrainConfig) *float64 { return &c.MaxGradNorm })
	floatField("weight-decay", "Weight decay", "AdamW's decoupled weight decay (torch: 0.01)", true,
		func(c *studio.TrainConfig) *float64 { return &c.WeightDecay })
	floatField("beta1", "Adam β1", "first-moment decay (0.9)", true, func(c *studio.TrainConfig) *float64 { return &c.Beta1 })
	floatField("beta2", "Adam β2", "second-moment decay (0.999)", true, func(c *studio.TrainConfig) *float64 { return &c.Beta2 })
	floatField("eps", "Adam ε", "added to the denominator (1e-8)", true, func(c *studio.TrainConfig) *float64 { return &c.Eps })
	choiceField("init", "LoRA init", "kohya: down kaiming-uniform, up zeros; gaussian: peft's", true,
		[]string{"kohya", "gaussian"}, func(c *studio.TrainConfig) *string { return &c.Init })
	float32Field("dropout", "LoRA dropout", "dropout on the adapters' input while training (0: off)", true,
		func(c *studio.TrainConfig) *float32 { return &c.Dropout })
	floatField("min-snr-gamma", "Min-SNR γ", "weight each timestep's loss by min(SNR, γ)/SNR (5 is common; 0: off)", true,
		func(c *studio.TrainConfig) *float64 { return &c.MinSNRGamma })
	floatField("noise-offset", "Noise offset", "adds offset·randn per channel to the noise, for darker/brighter images (0: off)", true,
		func(c *studio.TrainConfig) *float64 { return &c.NoiseOffset })
	uintField("seed", "Seed", "makes the run repeatable: weights, data order, noise and timesteps", true,
		func(c *studio.TrainConfig) *uint64 { return &c.Seed })
	boolField("gradient-checkpointing", "Gradient checkpointing", "recompute blocks in backward: far less memory, about a third slower", true,
		func(c *studio.TrainConfig) *bool { return &c.GradientCheckpointing })
	boolField("no-buckets", "No buckets", "train every image as one square instead of aspect-ratio buckets", true,
		func(c *studio.TrainConfig) *bool { return &c.Data.NoBuckets })
	intField("bucket-step", "Bucket step", "granularity of bucket sides in pixels (64)", true,
		func(c *studio.TrainConfig) *int { return &c.Data.BucketStep })
	intField("min-side", "Smallest bucket side", "no bucket side below this (256)", true,
		func(c *studio.TrainConfig) *int { return &c.Data.MinSide })
	intField("max-side", "Largest bucket side", "no bucket side above this (2048)", true,
		func(c *studio.TrainConfig) *int { return &c.Data.MaxSide })
	boolField("random-crop", "Random crop", "crop at a random offset instead of the centre", true,
		func(c *studio.TrainConfig) *bool { return &c.Data.RandomCrop })
	boolField("flip", "Flip", "mirror half the samples (not for text or asymmetric subjects)", true,
		func(c *studio.TrainConfig) *bool { return &c.Data.Flip })
	floatField("caption-dropout", "Caption dropout", "probability a sample trains with an empty caption", true,
		func(c *studio.TrainConfig) *float64 { return &c.Data.CaptionDropout })
	boolField("shuffle-tags", "Shuffle tags", "shuffle a caption's comma-separated tags each step", true,
		func(c *studio.TrainConfig) *bool { return &c.Data.ShuffleTags })
	intField("keep-tags", "Keep first tags", "tags at the start that shuffling leaves in place", true,
		func(c *studio.TrainConfig) *int { return &c.Data.KeepTags })
	intField("sample-steps", "Sample steps", "sampler steps of each sample image", true,
		func(c *studio.TrainConfig) *int { return &c.SampleSteps })
	floatField("sample-guidance", "Sample CFG", "classifier-free guidance of the samples", true,
		func(c *studio.TrainConfig) *float64 { return &c.SampleGuidance })
	uintField("sample-seed", "Sample seed", "seed of the first prompt; prompt i uses seed + i", true,
		func(c *studio.TrainConfig) *uint64 { return &c.SampleSeed })
	intField("sample-size", "Sample size", "side of the sample images (0: the resolution)", true,
		func(c *studio.TrainConfig) *int { return &c.SampleSize })
	choiceField("format", "Output format", "kohya (ComfyUI, A1111, Civitai), peft (a folder) or diffusers", true,
		[]string{"kohya", "peft", "diffusers"}, func(c *studio.TrainConfig) *string { return &c.Format })
	choiceField("save-precision", "Save precision", "precision of the LoRA files (fp16 halves their size)", true,
		[]string{"fp16", "fp32"}, func(c *studio.TrainConfig) *string { return &c.SavePrecision })
	return f
}

// add appends a field.
func (f *trainForm) add(t *trainField) {
	f.fields = append(f.fields, t)
	f.byFlag[t.flag] = t
}

// load shows every setting of c without calling changed.
func (f *trainForm) load(c studio.TrainConfig) {
	f.loading = true
	defer func() { f.loading = false }()
	for _, t := range f.fields {
		t.load(&c)
	}
}

// config reads the form over base (settings the form does not show keep
// base's values); the first field that cannot be read is the error.
func (f *trainForm) config(base studio.TrainConfig) (studio.TrainConfig, error) {
	c := base
	c.SamplePrompts = append([]string(nil), base.SamplePrompts...)
	for _, t := range f.fields {
		if err := t.store(&c); err != nil {
			return base, err
		}
	}
	return c, nil
}

// formItems returns the form items of the common (advanced false) or the
// advanced settings, each with its hint under it.
func (f *trainForm) formItems(advanced bool) []*widget.FormItem {
	var out []*widget.FormItem
	for _, t := range f.fields {
		if t.advanced == advanced {
			it := widget.NewFormItem(t.label, t.obj)
			it.HintText = t.hint
			out = append(out, it)
		}
	}
	return out
}

// entry returns the entry of a text field, for tests and focus.
func (f *trainForm) entry(flag string) *widget.Entry {
	if t, ok := f.byFlag[flag]; ok {
		if e, ok := t.obj.(*widget.Entry); ok {
			return e
		}
	}
	return nil
}
