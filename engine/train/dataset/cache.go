package dataset

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"lorastudio/engine/safetensors"
)

// Cache is the on-disk cache of VAE latent distributions and text
// embeddings under Dir (app/studio passes <data>/cache/train). Entries are
// named by a hash of everything that determines them, so runs share them and
// a change of image, model, bucket, crop or flip simply misses. Files are
// written atomically and verified when read: a truncated or damaged file is
// reported as ErrCorrupt, never trusted.
type Cache struct {
	Dir string
}

// ErrNotCached is returned for an entry the cache does not hold.
var ErrNotCached = errors.New("dataset: not cached")

// ErrCorrupt is wrapped by the error for a cache file that fails its checks.
var ErrCorrupt = errors.New("dataset: corrupt cache file")

// Cache file formats, in each file's "format" metadata. The version is part
// of every key, so changing how pixels or embeddings are made (resize filter,
// encoder code) orphans the old entries instead of reusing them.
const (
	latentFormat = "lorastudio.train.latents/1"
	textFormat   = "lorastudio.train.text/1"
)

// LatentKey names one cached latent distribution: the image file's content
// (sha256 of its bytes), the model (a hash the caller gives) and how the
// sample was cut (bucket, resized size, crop offset, flip).
type LatentKey struct {
	ImageHash string
	ModelHash string
	Bucket    Size
	ResizedW  int
	ResizedH  int
	CropTop   int
	CropLeft  int
	Flip      bool
}

// KeyFor returns the latent key of entry e of an image with content hash
// imageHash, cut into bucket, under the model modelHash.
func KeyFor(imageHash, modelHash string, e Entry, bucket Size) LatentKey {
	return LatentKey{ImageHash: imageHash, ModelHash: modelHash, Bucket: bucket,
		ResizedW: e.ResizedW, ResizedH: e.ResizedH, CropTop: e.CropTop, CropLeft: e.CropLeft, Flip: e.Flip}
}

// String is the key's canonical text, stored in the file and hashed for its
// name.
func (k LatentKey) String() string {
	return fmt.Sprintf("%s\x00image=%s\x00model=%s\x00bucket=%dx%d\x00resized=%dx%d\x00crop=%d,%d\x00flip=%t",
		latentFormat, k.ImageHash, k.ModelHash, k.Bucket.W, k.Bucket.H, k.ResizedW, k.ResizedH, k.CropTop, k.CropLeft, k.Flip)
}

// textKey is the canonical text of a text-embedding entry.
func textKey(modelHash, text string) string {
	return fmt.Sprintf("%s\x00model=%s\x00text=%s", textFormat, modelHash, strconv.Quote(text))
}

// LatentPath returns the file that holds k.
func (c *Cache) LatentPath(k LatentKey) string { return c.path("latents", k.String()) }

// TextPath returns the file that holds the embeddings of text under the
// model modelHash.
func (c *Cache) TextPath(modelHash, text string) string {
	return c.path("text", textKey(modelHash, text))
}

// path is Dir/kind/xx/<sha256(key)>.safetensors (two-character fan-out so no
// folder grows past a few thousand files).
func (c *Cache) path(kind, key string) string {
	sum := sha256.Sum256([]byte(key))
	name := hex.EncodeToString(sum[:])
	return filepath.Join(c.Dir, kind, name[:2], name+".safetensors")
}

// Latents is a cached latent distribution of one sample: diffusers'
// DiagonalGaussianDistribution, unscaled. Mean and Std are (C, h, w).
type Latents struct {
	Shape [3]int // (C, h, w)
	Mean  []float32
	Std   []float32
}

// Sample returns (Mean + Std·noise)·scale, (C, h, w): latent_dist.sample()
// times the VAE's scaling_factor, as the tutorial draws a fresh latent every
// step. noise has Mean's length (the trainer draws it from (seed, step)).
func (l *Latents) Sample(noise []float32, scale float32) ([]float32, error) {
	if len(noise) != len(l.Mean) {
		return nil, fmt.Errorf("dataset: latent sample: %d noise values for %d latents", len(noise), len(l.Mean))
	}
	out := make([]float32, len(l.Mean))
	for i := range out {
		out[i] = (l.Mean[i] + l.Std[i]*noise[i]) * scale
	}
	return out, nil
}

// TextEmbeds is one caption's cached SDXL conditioning.
type TextEmbeds struct {
	Tokens int       // sequence length (77)
	Dim    int       // text_encoder + text_encoder_2 hidden sizes (2048 for SDXL)
	Embeds []float32 // prompt_embeds (Tokens, Dim)
	Pooled []float32 // pooled_prompt_embeds (projection_dim)
}

// Latents reads k's entry: ErrNotCached when there is none, an error
// wrapping ErrCorrupt (naming the file) when it fails its checks.
func (c *Cache) Latents(k LatentKey) (*Latents, error) {
	path := c.LatentPath(k)
	ts, err := readEntry(path, latentFormat, k.String(), []string{"mean", "std"})
	if err != nil {
		return nil, err
	}
	mean, std := ts[0], ts[1]
	if len(mean.shape) != 3 || !slices.Equal(mean.shape, std.shape) {
		return nil, corrupt(path, fmt.Sprintf("mean %v and std %v: want two equal (C, h, w) shapes", mean.shape, std.shape))
	}
	return &Latents{Shape: [3]int{mean.shape[0], mean.shape[1], mean.shape[2]}, Mean: mean.values, Std: std.values}, nil
}

// PutLatents writes l as k's entry, atomically.
func (c *Cache) PutLatents(k LatentKey, l *Latents) error {
	n := l.Shape[0] * l.Shape[1] * l.Shape[2]
	if n <= 0 || len(l.Mean) != n || len(l.Std) != n {
		return fmt.Errorf("dataset: latents %v with %d means and %d stds", l.Shape, len(l.Mean), len(l.Std))
	}
	shape := l.Shape[:]
	return writeEntry(c.LatentPath(k), latentFormat, k.String(), []entryTensor{{"mean", shape, l.Mean}, {"std", shape, l.Std}})
}

// Text reads the embeddings of text under modelHash: ErrNotCached when there
// are none, an error wrapping ErrCorrupt when the file fails its checks.
func (c *Cache) Text(modelHash, text string) (*TextEmbeds, error) {
	path := c.TextPath(modelHash, text)
	ts, err := readEntry(path, textFormat, textKey(modelHash, text), []string{"prompt_embeds", "pooled_prompt_embeds"})
	if err != nil {
		return nil, err
	}
	emb, pooled := ts[0], ts[1]
	if len(emb.shape) != 2 || len(pooled.shape) != 1 {
		return nil, corrupt(path, fmt.Sprintf("prompt_embeds %v, pooled %v: want (tokens, dim) and (dim)", emb.shape, pooled.shape))
	}
	return &TextEmbeds{Tokens: emb.shape[0], Dim: emb.shape[1], Embeds: emb.values, Pooled: pooled.values}, nil
}

// PutText writes t as the embeddings of text under modelHash, atomically.
func (c *Cache) PutText(modelHash, text string, t *TextEmbeds) error {
	if t.Tokens <= 0 || t.Dim <= 0 || len(t.Embeds) != t.Tokens*t.Dim || len(t.Pooled) == 0 {
		return fmt.Errorf("dataset: text embeds (%d, %d) with %d values and %d pooled", t.Tokens, t.Dim, len(t.Embeds), len(t.Pooled))
	}
	return writeEntry(c.TextPath(modelHash, text), textFormat, textKey(modelHash, text),
		[]entryTensor{{"prompt_embeds", []int{t.Tokens, t.Dim}, t.Embeds}, {"pooled_prompt_embeds", []int{len(t.Pooled)}, t.Pooled}})
}

// entryTensor is one F32 tensor of a cache file.
type entryTensor struct {
	name   string
	shape  []int
	values []float32
}

// writeEntry writes tensors to path (creating its folder) with the format,
// the canonical key and a sha256 of the tensors' bytes in the metadata.
func writeEntry(path, format, key string, tensors []entryTensor) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("dataset: cache: %w", err)
	}
	h := sha256.New()
	st := make([]safetensors.Tensor, len(tensors))
	for i, t := range tensors {
		data := make([]byte, 4*len(t.values))
		for j, v := range t.values {
			binary.LittleEndian.PutUint32(data[4*j:], math.Float32bits(v))
		}
		h.Write(data)
		st[i] = safetensors.Tensor{Name: t.name, DType: safetensors.F32, Shape: t.shape, Data: data}
	}
	meta := map[string]string{"format": format, "key": key, "sha256": hex.EncodeToString(h.Sum(nil))}
	if err := safetensors.Write(path, st, meta); err != nil {
		return fmt.Errorf("dataset: cache: %w", err)
	}
	return nil
}

// readTensor is one tensor read back from a cache file.
type readTensor struct {
	shape  []int
	values []float32
}

// readEntry reads the named F32 tensors of path after checking the file's
// format, its key (a file under the right name but for another entry is
// refused) and the checksum of its tensors' bytes.
func readEntry(path, format, key string, names []string) ([]readTensor, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotCached
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, corrupt(path, err.Error())
	}
	defer f.Close()
	meta := f.Metadata()
	if meta["format"] != format {
		return nil, corrupt(path, fmt.Sprintf("format %q, want %q", meta["format"], format))
	}
	if meta["key"] != key {
		return nil, corrupt(path, "holds another entry")
	}
	if got := f.Names(); len(got) != len(names) {
		return nil, corrupt(path, fmt.Sprintf("%d tensors, want %d", len(got), len(names)))
	}
	h := sha256.New()
	out := make([]readTensor, len(names))
	for i, name := range names {
		info, ok := f.Tensor(name)
		if !ok {
			return nil, corrupt(path, "no tensor "+name)
		}
		if info.DType != safetensors.F32 {
			return nil, corrupt(path, fmt.Sprintf("%s is %s, want F32", name, info.DType))
		}
		raw, err := f.Bytes(name)
		if err != nil {
			return nil, corrupt(path, err.Error())
		}
		h.Write(raw)
		vals := make([]float32, len(raw)/4)
		for j := range vals {
			vals[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		out[i] = readTensor{shape: append([]int(nil), info.Shape...), values: vals}
	}
	if hex.EncodeToString(h.Sum(nil)) != meta["sha256"] {
		return nil, corrupt(path, "checksum mismatch")
	}
	return out, nil
}

// corrupt wraps ErrCorrupt with the file and the reason.
func corrupt(path, why string) error {
	return fmt.Errorf("%w %s: %s", ErrCorrupt, path, why)
}

// HashFile returns the hex sha256 of the file's bytes: the content hash
// latents are keyed by, so a renamed image keeps its cache and an edited one
// misses.
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("image %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashBytes is HashFile on bytes already read.
func hashBytes(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
