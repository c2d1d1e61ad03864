package dataset

import (
	"errors"
	"fmt"
)

// Image is one training image as app/studio's dataset reader gives it (both
// dataset layouts, kohya N_name repeat folders).
type Image struct {
	Path    string
	Caption string // the caption text ("" when the image has none)
	Repeats int    // how often the image appears in one epoch; 0 means 1
}

// repeats returns the image's repeat count (0 meaning 1).
func (im Image) repeats() int {
	if im.Repeats == 0 {
		return 1
	}
	return im.Repeats
}

// Size is a width and height in pixels.
type Size struct{ W, H int }

// String formats the size as WxH.
func (s Size) String() string { return fmt.Sprintf("%dx%d", s.W, s.H) }

// Options are the data settings of a training run.
type Options struct {
	// Resolution bounds the bucket area by Resolution² (and is the square's
	// side with NoBuckets). SDXL trains at 1024.
	Resolution int `json:"resolution"`
	// BucketStep is the granularity of bucket sides in pixels (kohya's
	// bucket_reso_steps, 64); a multiple of 8 so latents have whole sizes.
	BucketStep int `json:"bucket_step"`
	// MinSide and MaxSide bound the sides of a bucket (kohya's
	// min_bucket_reso / max_bucket_reso, 256 and 2048 for SDXL).
	MinSide int `json:"min_side"`
	MaxSide int `json:"max_side"`
	// NoBuckets trains every image as one Resolution×Resolution square.
	NoBuckets bool `json:"no_buckets"`
	// RandomCrop crops at a random offset instead of the centre.
	RandomCrop bool `json:"random_crop"`
	// Flip mirrors a sample horizontally with probability 0.5.
	Flip bool `json:"flip"`
	// CaptionDropout is the probability that a sample's caption is replaced
	// by "" (kohya's caption_dropout_rate).
	CaptionDropout float64 `json:"caption_dropout"`
	// ShuffleTags shuffles a caption's comma-separated tags, keeping the
	// first KeepTags in place (kohya's shuffle_caption and keep_tokens).
	ShuffleTags bool `json:"shuffle_tags"`
	KeepTags    int  `json:"keep_tags"`
}

// DefaultOptions are SDXL's: 1024² buckets in 64-pixel steps with sides from
// 256 to 2048, centre crops, no flip, captions as written.
func DefaultOptions() Options {
	return Options{Resolution: 1024, BucketStep: 64, MinSide: 256, MaxSide: 2048}
}

// Validate reports the first setting that cannot work.
func (o Options) Validate() error {
	switch {
	case o.BucketStep <= 0 || o.BucketStep%8 != 0:
		return fmt.Errorf("dataset: bucket step %d: want a positive multiple of 8", o.BucketStep)
	case o.Resolution <= 0 || o.Resolution%o.BucketStep != 0:
		return fmt.Errorf("dataset: resolution %d: want a positive multiple of the bucket step %d", o.Resolution, o.BucketStep)
	case o.CaptionDropout < 0 || o.CaptionDropout > 1 || o.CaptionDropout != o.CaptionDropout:
		return fmt.Errorf("dataset: caption dropout %v: want a probability in [0, 1]", o.CaptionDropout)
	case o.KeepTags < 0:
		return fmt.Errorf("dataset: keep tags %d: want 0 or more", o.KeepTags)
	}
	if o.NoBuckets {
		return nil
	}
	switch {
	case o.MinSide <= 0 || o.MinSide%o.BucketStep != 0:
		return fmt.Errorf("dataset: min bucket side %d: want a positive multiple of the bucket step %d", o.MinSide, o.BucketStep)
	case o.MaxSide < o.MinSide || o.MaxSide%o.BucketStep != 0:
		return fmt.Errorf("dataset: max bucket side %d: want a multiple of the bucket step %d, at least the min side %d", o.MaxSide, o.BucketStep, o.MinSide)
	case o.Resolution < o.MinSide || o.Resolution > o.MaxSide:
		return fmt.Errorf("dataset: resolution %d outside the bucket sides %d..%d", o.Resolution, o.MinSide, o.MaxSide)
	}
	return nil
}

// errNoImages is returned when nothing is left to train on.
var errNoImages = errors.New("dataset: no usable images")
