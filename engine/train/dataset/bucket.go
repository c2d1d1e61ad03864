package dataset

import (
	"math"
	"sort"
)

// Buckets returns the bucket sizes of o sorted by (W, H), as kohya's
// make_bucket_resolutions builds them: the largest square of area ≤
// Resolution² in BucketStep steps, and for every width w from MinSide to
// MaxSide in BucketStep steps the tallest height h ≤ MaxSide (in steps) with
// w·h ≤ Resolution², kept when h ≥ MinSide, together with its transpose.
// With NoBuckets it is the single Resolution×Resolution square. o is assumed
// valid (Options.Validate).
func Buckets(o Options) []Size {
	if o.NoBuckets {
		return []Size{{o.Resolution, o.Resolution}}
	}
	area := o.Resolution * o.Resolution
	step := o.BucketStep
	set := map[Size]bool{}
	side := int(math.Sqrt(float64(area))) / step * step
	set[Size{side, side}] = true
	for w := o.MinSide; w <= o.MaxSide; w += step {
		h := min(o.MaxSide, area/w/step*step)
		if h >= o.MinSide {
			set[Size{w, h}] = true
			set[Size{h, w}] = true
		}
	}
	out := make([]Size, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].W != out[j].W {
			return out[i].W < out[j].W
		}
		return out[i].H < out[j].H
	})
	return out
}

// BucketFor returns the bucket of a w×h image as kohya's select_bucket picks
// it: the bucket of exactly that size if there is one, else the one whose
// aspect ratio W/H is nearest to w/h (the first of equals in Buckets' order).
func BucketFor(o Options, w, h int) Size {
	return bucketIn(Buckets(o), w, h)
}

// bucketIn is BucketFor over a precomputed bucket list.
func bucketIn(buckets []Size, w, h int) Size {
	best, bestErr := buckets[0], math.Inf(1)
	ar := float64(w) / float64(h)
	for _, b := range buckets {
		if b.W == w && b.H == h {
			return b
		}
		if e := math.Abs(float64(b.W)/float64(b.H) - ar); e < bestErr {
			best, bestErr = b, e
		}
	}
	return best
}

// CoverSize returns the size a w×h image is resized to before it is cropped
// to bucket: scaled, keeping its aspect ratio, until it covers the bucket
// with one side equal to the bucket's (kohya's select_bucket: the side whose
// ratio is the tighter fit is matched, the other rounded half up). Both
// sides are at least the bucket's.
func CoverSize(w, h int, bucket Size) Size {
	// w/h > W/H ⇔ w·H > W·h: the image is wider than the bucket, so its
	// height is matched and its width overhangs.
	if w*bucket.H > bucket.W*h {
		return Size{max(bucket.W, roundDiv(w*bucket.H, h)), bucket.H}
	}
	return Size{bucket.W, max(bucket.H, roundDiv(h*bucket.W, w))}
}

// roundDiv returns a/b rounded half up, for a ≥ 0 and b > 0 (Python's
// int(x + 0.5) that kohya uses).
func roundDiv(a, b int) int { return (2*a + b) / (2 * b) }

// centerOffset is torchvision's CenterCrop offset, int(round(excess / 2.0))
// with Python's round half to even, which diffusers' training scripts use.
func centerOffset(excess int) int {
	q := excess / 2
	if excess%2 == 1 && q%2 == 1 {
		q++ // x.5 rounds to the even neighbour
	}
	return q
}
