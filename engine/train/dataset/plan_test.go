package dataset

import (
	"fmt"
	"reflect"
	"testing"
)

// planImages returns n images of varied sizes and repeats (no files: sizes
// are given to PlanSizes).
func planImages(n int) ([]Image, []Size) {
	shapes := []Size{{1600, 900}, {900, 1600}, {1024, 1024}, {3000, 2000}, {700, 1000}}
	imgs := make([]Image, n)
	sizes := make([]Size, n)
	for i := range n {
		imgs[i] = Image{Path: fmt.Sprintf("img%d.png", i), Caption: "x", Repeats: 1 + i%3}
		sizes[i] = shapes[i%len(shapes)]
	}
	return imgs, sizes
}

func TestPlanCoversEveryRepeatInPureBuckets(t *testing.T) {
	imgs, sizes := planImages(23)
	o := DefaultOptions()
	o.Flip, o.RandomCrop = true, true
	const batch = 4
	plan, err := PlanSizes(imgs, sizes, o, batch, 7, 2)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[2]int]int{}
	counts := map[Size]int{}
	partial := map[Size]int{}
	flips := 0
	for _, b := range plan {
		if len(b.Entries) == 0 || len(b.Entries) > batch {
			t.Fatalf("batch of %d", len(b.Entries))
		}
		if len(b.Entries) < batch {
			partial[b.Bucket]++
		}
		for _, e := range b.Entries {
			if got := BucketFor(o, sizes[e.Image].W, sizes[e.Image].H); got != b.Bucket {
				t.Fatalf("entry of image %d (bucket %v) in a %v batch", e.Image, got, b.Bucket)
			}
			if e.OrigW != sizes[e.Image].W || e.OrigH != sizes[e.Image].H {
				t.Fatalf("entry %+v: wrong original size", e)
			}
			if r := CoverSize(e.OrigW, e.OrigH, b.Bucket); r.W != e.ResizedW || r.H != e.ResizedH {
				t.Fatalf("entry %+v: resized %v", e, r)
			}
			if e.CropLeft < 0 || e.CropTop < 0 || e.CropLeft+b.Bucket.W > e.ResizedW || e.CropTop+b.Bucket.H > e.ResizedH {
				t.Fatalf("entry %+v: crop outside the resized image", e)
			}
			seen[[2]int{e.Image, e.Repeat}]++
			counts[b.Bucket]++
			if e.Flip {
				flips++
			}
		}
	}
	total := 0
	for i, im := range imgs {
		for r := range im.Repeats {
			if seen[[2]int{i, r}] != 1 {
				t.Errorf("image %d repeat %d appears %d times", i, r, seen[[2]int{i, r}])
			}
		}
		total += im.Repeats
	}
	if len(seen) != total {
		t.Errorf("%d distinct samples, want %d", len(seen), total)
	}
	for b, n := range partial {
		if n > 1 {
			t.Errorf("bucket %v has %d partial batches", b, n)
		}
	}
	if got := StepsPerEpoch(counts, batch); got != len(plan) {
		t.Errorf("StepsPerEpoch = %d, plan has %d batches", got, len(plan))
	}
	if flips == 0 || flips == total {
		t.Errorf("%d of %d samples flipped", flips, total)
	}
}

func TestPlanIsPureAndVariesByEpochAndSeed(t *testing.T) {
	imgs, sizes := planImages(40)
	o := DefaultOptions()
	o.Flip, o.RandomCrop = true, true
	at := func(seed uint64, epoch int) []Batch {
		p, err := PlanSizes(imgs, sizes, o, 3, seed, epoch)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	resumed := at(11, 3) // a resumed run asks for epoch 3 first
	for e := range 3 {
		at(11, e)
	}
	if !reflect.DeepEqual(resumed, at(11, 3)) {
		t.Fatal("epoch 3 differs after planning epochs 0..2")
	}
	if reflect.DeepEqual(at(11, 3), at(11, 4)) {
		t.Error("epochs 3 and 4 have the same plan")
	}
	if reflect.DeepEqual(at(11, 3), at(12, 3)) {
		t.Error("seeds 11 and 12 have the same plan")
	}
}

func TestPlanFlipIsFair(t *testing.T) {
	imgs := make([]Image, 2000)
	sizes := make([]Size, len(imgs))
	for i := range imgs {
		imgs[i], sizes[i] = Image{Path: "a.png"}, Size{1024, 1024}
	}
	o := DefaultOptions()
	o.Flip = true
	p, err := PlanSizes(imgs, sizes, o, 8, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	flips := 0
	for _, b := range p {
		for _, e := range b.Entries {
			if e.Flip {
				flips++
			}
		}
	}
	// Binomial(2000, 0.5): ±5σ is ±112.
	if flips < 888 || flips > 1112 {
		t.Errorf("%d of 2000 flipped", flips)
	}
	o.Flip = false
	p, _ = PlanSizes(imgs, sizes, o, 8, 1, 0)
	for _, b := range p {
		for _, e := range b.Entries {
			if e.Flip {
				t.Fatal("flipped with Flip off")
			}
		}
	}
}

func TestPlanCentreCrop(t *testing.T) {
	imgs := []Image{{Path: "wide.png"}}
	p, err := PlanSizes(imgs, []Size{{1600, 900}}, DefaultOptions(), 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 1600x900 → bucket 1344x768, resized 1365x768: 21 columns to drop,
	// torchvision's round(10.5) = 10 on the left.
	e := p[0].Entries[0]
	if p[0].Bucket != (Size{1344, 768}) || e.ResizedW != 1365 || e.ResizedH != 768 || e.CropLeft != 10 || e.CropTop != 0 {
		t.Errorf("got bucket %v entry %+v", p[0].Bucket, e)
	}
}

func TestPlanErrors(t *testing.T) {
	imgs, sizes := planImages(3)
	o := DefaultOptions()
	if _, err := PlanSizes(imgs, sizes, o, 0, 1, 0); err == nil {
		t.Error("batch 0 accepted")
	}
	if _, err := PlanSizes(imgs, make([]Size, 3), o, 1, 1, 0); err != errNoImages {
		t.Errorf("no usable image: %v", err)
	}
	imgs[1].Repeats = -2
	if _, err := PlanSizes(imgs, sizes, o, 1, 1, 0); err == nil {
		t.Error("negative repeats accepted")
	}
}

func TestPlanReadsFilesAndSkipsCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := writePNG(t, dir, "good.png", pattern(200, 100, 1))
	cut := writePNG(t, dir, "cut.png", pattern(120, 90, 2))
	truncate(t, cut, 200)
	junk := dir + "/junk.png"
	writeFile(t, junk, []byte("not an image at all"))
	imgs := []Image{{Path: cut}, {Path: good, Repeats: 2}, {Path: junk}}
	p, err := Plan(imgs, smallOptions(), 4, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || len(p[0].Entries) != 2 {
		t.Fatalf("plan %+v", p)
	}
	for _, e := range p[0].Entries {
		if e.Image != 1 || e.OrigW != 200 || e.OrigH != 100 {
			t.Errorf("entry %+v", e)
		}
	}
}
