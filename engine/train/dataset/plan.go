package dataset

import (
	"fmt"
	"sort"
)

// Entry is one sample of an epoch: which image, and how it is cut from it.
// The crop is taken on the image resized to cover the bucket (ResizedW ×
// ResizedH), at (CropLeft, CropTop) in the unflipped resized image; Flip
// mirrors the crop afterwards.
type Entry struct {
	Image    int  // index into the images given to Plan
	Repeat   int  // which of the image's repeats this is (0-based)
	Flip     bool // mirrored horizontally
	CropTop  int  // rows dropped above the crop, in the resized image
	CropLeft int  // columns dropped left of the crop, in the resized (unflipped) image
	OrigW    int  // the image file's width
	OrigH    int  // the image file's height
	ResizedW int  // the width it is resized to before cropping (CoverSize)
	ResizedH int  // the height it is resized to before cropping
}

// Batch is one optimizer batch: entries of a single bucket.
type Batch struct {
	Bucket  Size
	Entries []Entry
}

// Plan is the order of one epoch as batches of at most batch entries, a pure
// function of (imgs, o, batch, seed, epoch) and of the image files' sizes.
// Every image appears Repeats times; each entry gets its bucket (BucketFor),
// its crop (centre, or random in RandomCrop) and its flip (in Flip, with
// probability 0.5), each drawn from (seed, epoch, image, repeat). Entries are
// shuffled within their bucket, cut into batches — the last partial batch of
// a bucket kept, so a batch never mixes buckets — and the batches shuffled,
// as kohya's BucketManager does. Images whose header cannot be read, or that
// are visibly truncated, are skipped (Inspect names them); the error is for
// bad settings or no usable image at all.
func Plan(imgs []Image, o Options, batch int, seed uint64, epoch int) ([]Batch, error) {
	return PlanSizes(imgs, ProbeSizes(imgs), o, batch, seed, epoch)
}

// ProbeSizes returns every image's size (ProbeSize), a zero Size for one
// that cannot be read: read once, it lets a trainer plan many epochs with
// PlanSizes without touching the files again.
func ProbeSizes(imgs []Image) []Size {
	sizes := make([]Size, len(imgs))
	for i, im := range imgs {
		if s, err := ProbeSize(im.Path); err == nil {
			sizes[i] = s
		}
	}
	return sizes
}

// PlanSizes is Plan with the images' sizes given (sizes[i] is imgs[i]'s; a
// zero size skips the image), reading no file.
func PlanSizes(imgs []Image, sizes []Size, o Options, batch int, seed uint64, epoch int) ([]Batch, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	switch {
	case batch < 1:
		return nil, fmt.Errorf("dataset: batch size %d: want at least 1", batch)
	case epoch < 0:
		return nil, fmt.Errorf("dataset: epoch %d: want 0 or more", epoch)
	case len(sizes) != len(imgs):
		return nil, fmt.Errorf("dataset: %d sizes for %d images", len(sizes), len(imgs))
	}
	buckets := Buckets(o)
	groups := map[Size][]Entry{}
	for i, im := range imgs {
		if im.Repeats < 0 {
			return nil, fmt.Errorf("dataset: %s: repeat count %d is negative", im.Path, im.Repeats)
		}
		s := sizes[i]
		if s.W <= 0 || s.H <= 0 {
			continue
		}
		b := bucketIn(buckets, s.W, s.H)
		for r := range im.repeats() {
			groups[b] = append(groups[b], entryFor(o, seed, epoch, i, r, s, b))
		}
	}
	if len(groups) == 0 {
		return nil, errNoImages
	}
	keys := make([]Size, 0, len(groups))
	for b := range groups {
		keys = append(keys, b)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].W < keys[j].W || keys[i].W == keys[j].W && keys[i].H < keys[j].H
	})
	var out []Batch
	for _, b := range keys {
		es := groups[b]
		newStream(seed, purposeOrder, uint64(epoch), uint64(b.W), uint64(b.H)).shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		for lo := 0; lo < len(es); lo += batch {
			out = append(out, Batch{Bucket: b, Entries: es[lo:min(lo+batch, len(es)):min(lo+batch, len(es))]})
		}
	}
	newStream(seed, purposeOrder, uint64(epoch)).shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

// entryFor draws repeat r of image i (size s, bucket b) in epoch.
func entryFor(o Options, seed uint64, epoch, i, r int, s, b Size) Entry {
	c := CoverSize(s.W, s.H, b)
	e := Entry{Image: i, Repeat: r, OrigW: s.W, OrigH: s.H, ResizedW: c.W, ResizedH: c.H}
	where := []uint64{seed, 0, uint64(epoch), uint64(i), uint64(r)}
	draw := func(purpose uint64) uint64 {
		where[1] = purpose
		return hashOf(where...)
	}
	if o.RandomCrop {
		e.CropLeft = intIn(draw(purposeCropX), c.W-b.W)
		e.CropTop = intIn(draw(purposeCropY), c.H-b.H)
	} else {
		e.CropLeft, e.CropTop = centerOffset(c.W-b.W), centerOffset(c.H-b.H)
	}
	e.Flip = o.Flip && unit(draw(purposeFlip)) < 0.5
	return e
}

// StepsPerEpoch returns the number of batches in an epoch of samples spread
// over buckets as counts (bucket → samples): each bucket's samples rounded
// up to whole batches.
func StepsPerEpoch(counts map[Size]int, batch int) int {
	n := 0
	for _, c := range counts {
		n += (c + batch - 1) / batch
	}
	return n
}
