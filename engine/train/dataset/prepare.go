package dataset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"lorastudio/engine/clip"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/pipeline"
	"lorastudio/engine/tensor"
	"lorastudio/engine/tokenizer"
	"lorastudio/engine/vae"
)

// Stage names what Prepare is doing.
type Stage string

// The stages of Prepare, in order.
const (
	StageHash    Stage = "hashing images"
	StageLatents Stage = "encoding latents"
	StageText    Stage = "encoding captions"
)

// Progress reports Prepare's advance within a stage: Done of Total items,
// Path the image (or "" for captions) just finished.
type Progress struct {
	Stage       Stage
	Done, Total int
	Path        string
}

// PrepareOptions configure Prepare.
type PrepareOptions struct {
	// ModelHash identifies the model's weights (the caller hashes them);
	// every cache key includes it.
	ModelHash string
	// Tok1 and Tok2 are the model's tokenizers; nil opens them as the
	// pipeline does (pipeline.OpenTokenizers).
	Tok1, Tok2 *tokenizer.Tokenizer
	// MaxTensorBytes is the largest activation the backend takes in one
	// tensor (a GL storage-buffer binding); larger images are encoded in
	// tiles. 0 means 1 GiB.
	MaxTensorBytes int64
	// Progress, when set, is called after each item.
	Progress func(Progress)
}

// PrepareStats count what Prepare found and did.
type PrepareStats struct {
	LatentsCached, LatentsEncoded int
	TextsCached, TextsEncoded     int
	// Rebuilt counts cache files that failed their checks and were encoded
	// again.
	Rebuilt int
	// VAELoaded and TextEncodersLoaded say whether the encoders were needed.
	VAELoaded, TextEncodersLoaded bool
}

// Prepared is a dataset whose every planned sample has its latents (and,
// when TextCacheable, every caption its embeddings) in the cache.
type Prepared struct {
	Cache     *Cache
	ModelHash string
	// ImageHashes[i] is the content hash of image i ("" for an image no plan
	// uses).
	ImageHashes []string
	// Texts says whether caption embeddings were cached (TextCacheable).
	Texts bool
	Stats PrepareStats
}

// Latents returns the cached latent distribution of entry e cut into bucket.
func (p *Prepared) Latents(e Entry, bucket Size) (*Latents, error) {
	if e.Image < 0 || e.Image >= len(p.ImageHashes) || p.ImageHashes[e.Image] == "" {
		return nil, fmt.Errorf("dataset: image %d was not prepared", e.Image)
	}
	return p.Cache.Latents(KeyFor(p.ImageHashes[e.Image], p.ModelHash, e, bucket))
}

// Text returns the cached embeddings of a caption (as Caption returned it).
func (p *Prepared) Text(text string) (*TextEmbeds, error) {
	if !p.Texts {
		return nil, errors.New("dataset: caption embeddings are not cached for shuffled captions")
	}
	return p.Cache.Text(p.ModelHash, text)
}

// cut is one way an image is cut into a bucket.
type cut struct {
	e      Entry
	bucket Size
}

// Prepare fills cache with everything the epochs of plans (Plan's output for
// imgs and o, one slice per epoch) will read: the latent distribution of
// every distinct sample (image content, bucket, crop, flip) and, when
// TextCacheable(o), the embeddings of every caption text. Entries already
// cached and intact are kept; damaged ones are encoded again. The VAE is
// loaded only if a latent is missing and the text encoders only if a caption
// is, on be from src, and both are freed before Prepare returns, so training
// keeps only the UNet on the device. Cancelling ctx stops between items;
// what was written stays valid.
func Prepare(ctx context.Context, be tensor.Backend, src *sdxl.Source, cache *Cache, imgs []Image, o Options, plans [][]Batch, opts PrepareOptions) (*Prepared, error) {
	switch {
	case cache == nil || cache.Dir == "":
		return nil, errors.New("dataset: prepare: no cache directory")
	case opts.ModelHash == "":
		return nil, errors.New("dataset: prepare: no model hash")
	case be == nil || src == nil:
		return nil, errors.New("dataset: prepare: no backend or model")
	case len(plans) == 0:
		return nil, errors.New("dataset: prepare: no epoch plans")
	}
	p := &Prepared{Cache: cache, ModelHash: opts.ModelHash, ImageHashes: make([]string, len(imgs)), Texts: TextCacheable(o)}
	progress := func(s Stage, done, total int, path string) {
		if opts.Progress != nil {
			opts.Progress(Progress{Stage: s, Done: done, Total: total, Path: path})
		}
	}

	// Every distinct cut of every image, in a fixed order.
	cuts := map[int][]cut{}
	seen := map[cut]bool{}
	for _, plan := range plans {
		for _, b := range plan {
			for _, e := range b.Entries {
				if e.Image < 0 || e.Image >= len(imgs) {
					return nil, fmt.Errorf("dataset: prepare: plan names image %d of %d", e.Image, len(imgs))
				}
				c := cut{e: e, bucket: b.Bucket}
				c.e.Repeat = 0 // repeats of the same cut share a cache entry
				if !seen[c] {
					seen[c] = true
					cuts[e.Image] = append(cuts[e.Image], c)
				}
			}
		}
	}
	used := make([]int, 0, len(cuts))
	for i := range cuts {
		used = append(used, i)
	}
	slices.Sort(used)

	for n, i := range used {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := HashFile(imgs[i].Path)
		if err != nil {
			return nil, err
		}
		p.ImageHashes[i] = h
		progress(StageHash, n+1, len(used), imgs[i].Path)
	}

	missing := map[int][]cut{}
	nMissing := 0
	for _, i := range used {
		for _, c := range cuts[i] {
			_, err := cache.Latents(KeyFor(p.ImageHashes[i], p.ModelHash, c.e, c.bucket))
			switch {
			case err == nil:
				p.Stats.LatentsCached++
				continue
			case errors.Is(err, ErrCorrupt):
				p.Stats.Rebuilt++
			case !errors.Is(err, ErrNotCached):
				return nil, err
			}
			missing[i] = append(missing[i], c)
			nMissing++
		}
	}
	if nMissing > 0 {
		if err := p.encodeLatents(ctx, be, src, cache, imgs, used, missing, nMissing, opts, progress); err != nil {
			return nil, err
		}
	}

	if p.Texts {
		var texts []string
		set := map[string]bool{}
		for _, i := range used {
			set[strings.TrimSpace(imgs[i].Caption)] = true
		}
		if o.CaptionDropout > 0 {
			set[""] = true
		}
		for t := range set {
			texts = append(texts, t)
		}
		slices.Sort(texts)
		var todo []string
		for _, t := range texts {
			_, err := cache.Text(p.ModelHash, t)
			switch {
			case err == nil:
				p.Stats.TextsCached++
				continue
			case errors.Is(err, ErrCorrupt):
				p.Stats.Rebuilt++
			case !errors.Is(err, ErrNotCached):
				return nil, err
			}
			todo = append(todo, t)
		}
		if len(todo) > 0 {
			if err := p.encodeTexts(ctx, be, src, cache, todo, opts, progress); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// encodeLatents loads the VAE, encodes the missing cuts image by image
// (each file read once, checked against the hash its keys carry) and frees
// the VAE.
func (p *Prepared) encodeLatents(ctx context.Context, be tensor.Backend, src *sdxl.Source, cache *Cache, imgs []Image, used []int, missing map[int][]cut, total int, opts PrepareOptions, progress func(Stage, int, int, string)) error {
	m, err := vae.FromSource(be, src)
	if err != nil {
		return fmt.Errorf("dataset: prepare: %w", err)
	}
	defer m.Free()
	p.Stats.VAELoaded = true
	limit := opts.MaxTensorBytes
	if limit <= 0 {
		limit = 1 << 30
	}
	done := 0
	for _, i := range used {
		if len(missing[i]) == 0 {
			continue
		}
		path := imgs[i].Path
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("image %s: %w", path, err)
		}
		if hashBytes(data) != p.ImageHashes[i] {
			return fmt.Errorf("image %s: changed while the dataset was being prepared", path)
		}
		for _, c := range missing[i] {
			if err := ctx.Err(); err != nil {
				return err
			}
			px, err := decodePixels(data, path, c.e, c.bucket)
			if err != nil {
				return err
			}
			l, err := encodeOne(m, px, c.bucket, limit)
			if err != nil {
				return fmt.Errorf("image %s: %w", path, err)
			}
			if err := cache.PutLatents(KeyFor(p.ImageHashes[i], p.ModelHash, c.e, c.bucket), l); err != nil {
				return err
			}
			p.Stats.LatentsEncoded++
			done++
			progress(StageLatents, done, total, path)
		}
	}
	return nil
}

// encodeOne runs the VAE encoder on pixels (3, H, W) and returns the latent
// distribution (C, H/8, W/8), in tiles when one pass would exceed limit.
func encodeOne(m *vae.AutoencoderKL, px []float32, bucket Size, limit int64) (*Latents, error) {
	b := m.Backend()
	x, err := b.Upload(px, tensor.Shape{1, 3, bucket.H, bucket.W}, tensor.F32) // (1, 3, H, W)
	if err != nil {
		return nil, err
	}
	defer x.Free()
	var d *vae.Distribution
	if vae.LargestActivation(m.Config(), max(bucket.W, bucket.H)) <= limit {
		d, err = m.Encode(x)
	} else {
		var t vae.Tiling
		if t, err = vae.TilingWithin(m.Config(), limit); err == nil {
			d, err = m.EncodeTiled(x, t)
		}
	}
	if err != nil {
		return nil, err
	}
	return &Latents{Shape: [3]int{d.Shape[1], d.Shape[2], d.Shape[3]}, Mean: d.Mean, Std: d.Std}, nil // (C, h, w)
}

// encodeTexts loads both text encoders, encodes texts as the pipeline
// encodes a prompt (clip.EncodePrompt) and frees the encoders.
func (p *Prepared) encodeTexts(ctx context.Context, be tensor.Backend, src *sdxl.Source, cache *Cache, texts []string, opts PrepareOptions, progress func(Stage, int, int, string)) error {
	tok1, tok2 := opts.Tok1, opts.Tok2
	if tok1 == nil || tok2 == nil {
		var err error
		if tok1, tok2, err = pipeline.OpenTokenizers(src, ""); err != nil {
			return fmt.Errorf("dataset: prepare: %w", err)
		}
	}
	cfg := src.Config()
	te1, err := clip.Load(be, src.Weights(sdxl.TextEncoder), clip.Config(cfg.TextEncoder))
	if err != nil {
		return fmt.Errorf("dataset: prepare: %s: text_encoder: %w", src.Path(), err)
	}
	defer te1.Free()
	te2, err := clip.Load(be, src.Weights(sdxl.TextEncoder2), clip.Config(cfg.TextEncoder2))
	if err != nil {
		return fmt.Errorf("dataset: prepare: %s: text_encoder_2: %w", src.Path(), err)
	}
	defer te2.Free()
	p.Stats.TextEncodersLoaded = true
	for n, text := range texts {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := encodeText(be, te1, te2, tok1, tok2, text)
		if err != nil {
			return fmt.Errorf("dataset: prepare: caption %q: %w", text, err)
		}
		if err := cache.PutText(p.ModelHash, text, t); err != nil {
			return err
		}
		p.Stats.TextsEncoded++
		progress(StageText, n+1, len(texts), "")
	}
	return nil
}

// encodeText returns one prompt's embeddings on the host.
func encodeText(be tensor.Backend, te1, te2 *clip.TextModel, tok1, tok2 *tokenizer.Tokenizer, text string) (*TextEmbeds, error) {
	pe, err := clip.EncodePrompt(te1, te2, tok1, tok2, text)
	if err != nil {
		return nil, err
	}
	defer pe.Free()
	emb, err := be.Download(pe.Embeds) // (1, tokens, dim)
	if err != nil {
		return nil, err
	}
	pooled, err := be.Download(pe.Pooled) // (1, projection_dim)
	if err != nil {
		return nil, err
	}
	s := pe.Embeds.Shape()
	return &TextEmbeds{Tokens: s[1], Dim: s[2], Embeds: emb, Pooled: pooled}, nil
}
