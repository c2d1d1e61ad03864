package dataset

import (
	"slices"
	"testing"
)

func TestBucketsSDXL(t *testing.T) {
	o := DefaultOptions()
	bs := Buckets(o)
	area := o.Resolution * o.Resolution
	for _, want := range []Size{{1024, 1024}, {896, 1152}, {1152, 896}, {832, 1216}, {1216, 832}, {768, 1344}, {1344, 768}, {640, 1536}, {1536, 640}} {
		if !slices.Contains(bs, want) {
			t.Errorf("bucket %v missing from %v", want, bs)
		}
	}
	for i, b := range bs {
		if b.W*b.H > area || b.W%o.BucketStep != 0 || b.H%o.BucketStep != 0 ||
			min(b.W, b.H) < o.MinSide || max(b.W, b.H) > o.MaxSide {
			t.Errorf("bucket %v breaks the rules", b)
		}
		if i > 0 && (bs[i-1].W > b.W || bs[i-1].W == b.W && bs[i-1].H >= b.H) {
			t.Errorf("buckets not sorted at %d: %v then %v", i, bs[i-1], b)
		}
	}
	// Every width in range has its tallest fitting height, and nothing taller.
	for w := o.MinSide; w <= o.MaxSide; w += o.BucketStep {
		h := o.MaxSide
		for w*h > area {
			h -= o.BucketStep
		}
		if h < o.MinSide {
			continue
		}
		if !slices.Contains(bs, Size{w, h}) || !slices.Contains(bs, Size{h, w}) {
			t.Errorf("width %d: bucket %dx%d (or its transpose) missing", w, w, h)
		}
	}
	nb := o
	nb.NoBuckets = true
	if got := Buckets(nb); !slices.Equal(got, []Size{{1024, 1024}}) {
		t.Errorf("NoBuckets: %v", got)
	}
	if got := BucketFor(nb, 1600, 900); got != (Size{1024, 1024}) {
		t.Errorf("NoBuckets BucketFor: %v", got)
	}
}

func TestBucketForNearestAspect(t *testing.T) {
	o := DefaultOptions()
	for _, c := range []struct {
		w, h int
		want Size
	}{
		{1024, 1024, Size{1024, 1024}},
		{512, 512, Size{1024, 1024}},
		{832, 1216, Size{832, 1216}}, // an exact bucket is its own
		{1600, 900, Size{1344, 768}}, // 16:9 → 1.75, the nearest ratio
		{900, 1600, Size{768, 1344}},
		{3000, 2000, Size{1216, 832}}, // 1.5 → 1.4615 beats 1.6 (1280x800 is no bucket)
		{5000, 100, Size{2048, 256}},  // extreme: the widest bucket (256·2048 fits the area)
	} {
		if got := BucketFor(o, c.w, c.h); got != c.want {
			t.Errorf("BucketFor(%dx%d) = %v, want %v", c.w, c.h, got, c.want)
		}
	}
	// The choice is the nearest ratio among all buckets, checked by brute force.
	for _, s := range []Size{{1000, 700}, {700, 1000}, {1920, 1080}, {333, 999}, {4000, 3000}} {
		got := BucketFor(o, s.W, s.H)
		ar := float64(s.W) / float64(s.H)
		for _, b := range Buckets(o) {
			if d, g := abs(float64(b.W)/float64(b.H)-ar), abs(float64(got.W)/float64(got.H)-ar); d < g {
				t.Errorf("BucketFor(%v) = %v but %v is nearer in aspect", s, got, b)
			}
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestCoverSizeCoversWithOneSideExact(t *testing.T) {
	for _, c := range []struct{ w, h int }{{1600, 900}, {900, 1600}, {100, 100}, {1024, 1023}, {333, 777}, {5000, 100}} {
		for _, b := range Buckets(DefaultOptions()) {
			r := CoverSize(c.w, c.h, b)
			if r.W < b.W || r.H < b.H || (r.W != b.W && r.H != b.H) {
				t.Fatalf("CoverSize(%dx%d, %v) = %v", c.w, c.h, b, r)
			}
		}
	}
	// 1600x900 into 1344x768: height matched, width 1600·768/900 = 1365.33 → 1365.
	if got := CoverSize(1600, 900, Size{1344, 768}); got != (Size{1365, 768}) {
		t.Errorf("CoverSize = %v", got)
	}
}

func TestCenterOffsetRoundsHalfToEven(t *testing.T) {
	// Python: int(round(x / 2.0)) for x = 0..7 → 0 0 1 2 2 2 3 4.
	want := []int{0, 0, 1, 2, 2, 2, 3, 4}
	for x, w := range want {
		if got := centerOffset(x); got != w {
			t.Errorf("centerOffset(%d) = %d, want %d", x, got, w)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Options){
		func(o *Options) { o.BucketStep = 12 },
		func(o *Options) { o.Resolution = 1000 },
		func(o *Options) { o.MinSide = 0 },
		func(o *Options) { o.MaxSide = 128 },
		func(o *Options) { o.CaptionDropout = 1.5 },
		func(o *Options) { o.KeepTags = -1 },
	}
	for i, f := range bad {
		o := DefaultOptions()
		f(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("case %d: %+v accepted", i, o)
		}
	}
}
