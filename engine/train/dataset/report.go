package dataset

import (
	"fmt"
	"sort"
	"strings"

	"lorastudio/engine/tokenizer"
)

// Report is the dataset part of the pre-flight check, read from the image
// headers (no pixel decoded) and the captions.
type Report struct {
	Images  int // usable images (corrupt ones excluded)
	Repeats int // the usable images' repeat counts, summed
	Samples int // samples per epoch: images × their repeats
	// Uncaptioned lists the usable images with an empty caption.
	Uncaptioned []string
	// MaxTokens is the caption length the text encoders see (75 for SDXL:
	// 77 positions less the start and end tokens); LongCaptions lists the
	// captions over it, which are truncated.
	MaxTokens    int
	LongCaptions []LongCaption
	// Small lists the images smaller than their bucket (upscaled).
	Small []SmallImage
	// Buckets is the histogram, sorted by bucket size (W, then H).
	Buckets []BucketCount
	// Batch and StepsPerEpoch: batches per epoch at this batch size (each
	// bucket's samples rounded up to whole batches).
	Batch         int
	StepsPerEpoch int
	// Corrupt lists the images skipped because their header cannot be read
	// or the file is visibly truncated.
	Corrupt []CorruptImage
}

// LongCaption is a caption longer than the text encoders read.
type LongCaption struct {
	Path   string
	Tokens int // tokens without the start and end tokens
}

// SmallImage is an image upscaled to cover its bucket.
type SmallImage struct {
	Path   string
	Size   Size
	Bucket Size
}

// BucketCount is one bar of the bucket histogram.
type BucketCount struct {
	Bucket  Size
	Images  int
	Samples int // images × repeats
}

// CorruptImage is an image the run skips, with the reason.
type CorruptImage struct {
	Path   string
	Reason string
}

// Inspect builds the dataset report of imgs for o at batch size batch. tok
// counts caption tokens (the model's first tokenizer; nil uses CLIP's
// embedded vocabulary, which SDXL's tokenizers share).
func Inspect(imgs []Image, o Options, batch int, tok *tokenizer.Tokenizer) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if batch < 1 {
		return nil, fmt.Errorf("dataset: batch size %d: want at least 1", batch)
	}
	if tok == nil {
		var err error
		if tok, err = tokenizer.Embedded(tokenizer.DefaultConfig()); err != nil {
			return nil, fmt.Errorf("dataset: embedded tokenizer: %w", err)
		}
	}
	r := &Report{MaxTokens: tok.MaxLength() - 2, Batch: batch}
	buckets := Buckets(o)
	hist := map[Size]*BucketCount{}
	counts := map[Size]int{}
	for _, im := range imgs {
		if im.Repeats < 0 {
			return nil, fmt.Errorf("dataset: %s: repeat count %d is negative", im.Path, im.Repeats)
		}
		s, err := ProbeSize(im.Path)
		if err != nil {
			r.Corrupt = append(r.Corrupt, CorruptImage{Path: im.Path, Reason: err.Error()})
			continue
		}
		r.Images++
		r.Repeats += im.repeats()
		b := bucketIn(buckets, s.W, s.H)
		if c := CoverSize(s.W, s.H, b); c.W > s.W || c.H > s.H {
			r.Small = append(r.Small, SmallImage{Path: im.Path, Size: s, Bucket: b})
		}
		if hist[b] == nil {
			hist[b] = &BucketCount{Bucket: b}
		}
		hist[b].Images++
		hist[b].Samples += im.repeats()
		counts[b] += im.repeats()
		caption := strings.TrimSpace(im.Caption)
		if caption == "" {
			r.Uncaptioned = append(r.Uncaptioned, im.Path)
			continue
		}
		if n := len(tok.Encode(caption)) - 2; n > r.MaxTokens {
			r.LongCaptions = append(r.LongCaptions, LongCaption{Path: im.Path, Tokens: n})
		}
	}
	r.Samples = r.Repeats
	for _, bc := range hist {
		r.Buckets = append(r.Buckets, *bc)
	}
	sort.Slice(r.Buckets, func(i, j int) bool {
		a, b := r.Buckets[i].Bucket, r.Buckets[j].Bucket
		return a.W < b.W || a.W == b.W && a.H < b.H
	})
	r.StepsPerEpoch = StepsPerEpoch(counts, batch)
	return r, nil
}
