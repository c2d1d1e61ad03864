package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"lorastudio/engine/clip"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/train/dataset"
)

// feeder gives each micro-batch its encoded inputs on the host: the
// latent distributions from the cache (filled by dataset.Prepare before
// training, so the VAE never sits beside the UNet) and the text embeddings
// from the cache, or, when tags are shuffled (every step's text is new),
// from text encoders kept loaded for the run.
type feeder struct {
	prep  *dataset.Prepared
	imgs  []dataset.Image
	opts  dataset.Options
	seed  uint64
	scale float32 // the VAE's scaling_factor
	live  *clip.Encoders
}

// batchInputs is one micro-batch's host inputs.
type batchInputs struct {
	shape       [4]int    // (B, C, h, w)
	mean, std   []float32 // (B, C, h, w) the latent distribution, unscaled
	scale       float32   // latents = sample · scale (the VAE's scaling_factor)
	hidden      []float32 // (B, L, D) prompt_embeds
	hiddenShape tensor.Shape
	pooled      []float32 // (B, P) pooled_prompt_embeds
	pooledShape tensor.Shape
	timeIDs     []float32 // (B, 6)
}

// modelKey is the model's identity for the cache keys.
func modelKey(id identity) string {
	s := sha256.Sum256([]byte(id.Model))
	return hex.EncodeToString(s[:16])
}

// cacheDir is where the run keeps its latent and text caches.
func (c Config) cacheDir(runDir string) string {
	if c.CacheDir != "" {
		return c.CacheDir
	}
	return runDir + "/cache"
}

// newFeeder fills the caches for every epoch plan the run will use
// (dataset.Prepare: the VAE and, when the text is cacheable, the text
// encoders are loaded for it and freed after) and returns the feeder.
func newFeeder(ctx context.Context, be tensor.Backend, src *sdxl.Source, imgs []dataset.Image, cfg Config, runDir string, id identity,
	plans [][]dataset.Batch, progress func(string)) (*feeder, error) {
	f := &feeder{imgs: imgs, opts: cfg.Data, seed: cfg.Seed, scale: float32(src.Config().VAE.ScalingFactor)}
	opts := dataset.PrepareOptions{ModelHash: modelKey(id), MaxTensorBytes: be.MaxTensorBytes(), Progress: func(p dataset.Progress) {
		if p.Done == p.Total || p.Done%10 == 0 {
			progress(fmt.Sprintf("%s: %d of %d", p.Stage, p.Done, p.Total))
		}
	}}
	var err error
	if f.prep, err = dataset.Prepare(ctx, be, src, &dataset.Cache{Dir: cfg.cacheDir(runDir)}, imgs, cfg.Data, plans, opts); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if !f.prep.Texts {
		if f.live, err = openEncoders(be, src); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *feeder) free() {
	if f.live != nil {
		f.live.Free()
		f.live = nil
	}
}

// batch assembles micro-batch k (batch b of its epoch's plan).
func (f *feeder) batch(b dataset.Batch, k int) (*batchInputs, error) {
	in := &batchInputs{scale: f.scale}
	var tokens, dim, pdim int
	for i, e := range b.Entries {
		l, err := f.prep.Latents(e, b.Bucket)
		if err != nil {
			return nil, fmt.Errorf("latents of %s (%s): %w", f.imgs[e.Image].Path, b.Bucket, err)
		}
		if i == 0 {
			in.shape = [4]int{len(b.Entries), l.Shape[0], l.Shape[1], l.Shape[2]}
		} else if l.Shape != [3]int{in.shape[1], in.shape[2], in.shape[3]} {
			return nil, fmt.Errorf("latents of %s are %v, the batch's %v", f.imgs[e.Image].Path, l.Shape, in.shape[1:])
		}
		in.mean = append(in.mean, l.Mean...)
		in.std = append(in.std, l.Std...)

		text := dataset.Caption(f.imgs[e.Image].Caption, f.opts, f.seed, k, i)
		emb, pooled, err := f.text(text)
		if err != nil {
			return nil, fmt.Errorf("caption of %s: %w", f.imgs[e.Image].Path, err)
		}
		if i == 0 {
			tokens, dim, pdim = emb.Tokens, emb.Dim, len(pooled)
		} else if emb.Tokens != tokens || emb.Dim != dim || len(pooled) != pdim {
			return nil, fmt.Errorf("caption of %s: embeddings (%d, %d)+%d, the batch's (%d, %d)+%d", f.imgs[e.Image].Path, emb.Tokens, emb.Dim, len(pooled), tokens, dim, pdim)
		}
		in.hidden = append(in.hidden, emb.Embeds...)
		in.pooled = append(in.pooled, pooled...)
		ids := dataset.TimeIDs(e, b.Bucket)
		in.timeIDs = append(in.timeIDs, ids[:]...)
	}
	n := len(b.Entries)
	in.hiddenShape = tensor.Shape{n, tokens, dim}
	in.pooledShape = tensor.Shape{n, pdim}
	return in, nil
}

// text returns the embeddings of a caption from the cache or the live
// encoders.
func (f *feeder) text(text string) (*dataset.TextEmbeds, []float32, error) {
	if f.live == nil {
		t, err := f.prep.Text(text)
		if err != nil {
			return nil, nil, err
		}
		return t, t.Pooled, nil
	}
	t, err := encodeText(f.live, text)
	if err != nil {
		return nil, nil, err
	}
	return t, t.Pooled, nil
}

// encodeText runs both text encoders on text and downloads the result.
func encodeText(e *clip.Encoders, text string) (*dataset.TextEmbeds, error) {
	p, err := clip.EncodePrompt(e.TE1, e.TE2, e.Tok1, e.Tok2, text)
	if err != nil {
		return nil, err
	}
	defer p.Free()
	be := p.Embeds.Backend()
	emb, err := be.Download(p.Embeds) // (1, L, D)
	if err != nil {
		return nil, err
	}
	pooled, err := be.Download(p.Pooled) // (1, P)
	if err != nil {
		return nil, err
	}
	return &dataset.TextEmbeds{Tokens: p.Embeds.Dim(1), Dim: p.Embeds.Dim(2), Embeds: emb, Pooled: pooled}, nil
}
