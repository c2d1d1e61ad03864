package dataset

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
)

// firstEntry plans imgs with o from epoch on and returns the first entry
// keep accepts, with its bucket.
func firstEntry(t *testing.T, imgs []Image, o Options, seed uint64, epoch int, keep func(Entry) bool) (Entry, Size) {
	t.Helper()
	for ep := epoch; ep < epoch+64; ep++ {
		p, err := Plan(imgs, o, 1, seed, ep)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p {
			for _, e := range b.Entries {
				if keep(e) {
					return e, b.Bucket
				}
			}
		}
	}
	t.Fatal("no entry of the wanted kind in 64 epochs")
	return Entry{}, Size{}
}

func TestTimeIDsMatchDiffusersFormula(t *testing.T) {
	dir := t.TempDir()
	// 250x100 goes to the 192x80 bucket with its height matched: 8 columns
	// overhang, so the crop's left edge moves when the sample is mirrored.
	const W, H = 250, 100
	path := writePNG(t, dir, "wide.png", pattern(W, H, 3))
	o := smallOptions()
	o.Flip, o.RandomCrop = true, true
	imgs := []Image{{Path: path, Repeats: 4}}
	e, bucket := firstEntry(t, imgs, o, 5, 0, func(e Entry) bool {
		return e.Flip && e.ResizedW-e.CropLeft-192 != e.CropLeft
	})

	// Independently: the bucket is the nearest aspect ratio; the image is
	// scaled by max(bw/w, bh/h) and rounded; diffusers' crop_top_left is the
	// crop's corner in the (flipped) resized image.
	best := math.Inf(1)
	var wantBucket Size
	for _, b := range Buckets(o) {
		if d := math.Abs(float64(b.W)/float64(b.H) - float64(W)/H); d < best {
			best, wantBucket = d, b
		}
	}
	if bucket != wantBucket {
		t.Fatalf("bucket %v, want %v", bucket, wantBucket)
	}
	scale := math.Max(float64(bucket.W)/W, float64(bucket.H)/H)
	rw, rh := int(math.Floor(W*scale+0.5)), int(math.Floor(H*scale+0.5))
	if rw != e.ResizedW || rh != e.ResizedH {
		t.Fatalf("resized %dx%d, want %dx%d", e.ResizedW, e.ResizedH, rw, rh)
	}
	want := [6]float32{H, W, float32(e.CropTop), float32(rw - e.CropLeft - bucket.W), float32(bucket.H), float32(bucket.W)}
	if got := TimeIDs(e, bucket); got != want {
		t.Fatalf("TimeIDs = %v, want %v", got, want)
	}

	// And the pixels are what diffusers crops at those ids: the resized
	// image mirrored, then cut at (crop_top, crop_left).
	full, err := LoadPixels(path, Entry{OrigW: W, OrigH: H, ResizedW: rw, ResizedH: rh}, Size{rw, rh})
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadPixels(path, e, bucket)
	if err != nil {
		t.Fatal(err)
	}
	top, left := int(want[2]), int(want[3])
	var maxDiff float64
	for c := range 3 {
		for y := range bucket.H {
			for x := range bucket.W {
				mx := rw - 1 - (left + x) // mirrored column of the full image
				ref := full[(c*rh+top+y)*rw+mx]
				maxDiff = math.Max(maxDiff, math.Abs(float64(got[(c*bucket.H+y)*bucket.W+x]-ref)))
			}
		}
	}
	if maxDiff > 1e-6 {
		t.Errorf("flipped crop differs from mirror-then-crop by %g", maxDiff)
	}
}

func TestLoadPixelsExactSizeIsIdentity(t *testing.T) {
	dir := t.TempDir()
	img := pattern(64, 48, 9)
	path := writePNG(t, dir, "exact.png", img)
	for _, flip := range []bool{false, true} {
		e := Entry{OrigW: 64, OrigH: 48, ResizedW: 64, ResizedH: 48, Flip: flip}
		px, err := LoadPixels(path, e, Size{64, 48})
		if err != nil {
			t.Fatal(err)
		}
		for y := range 48 {
			for x := range 64 {
				sx := x
				if flip {
					sx = 63 - x
				}
				c := img.NRGBAAt(sx, y)
				for ch, v := range []uint8{c.R, c.G, c.B} {
					want := float32(v)/255*2 - 1
					if got := px[(ch*48+y)*64+x]; math.Abs(float64(got-want)) > 1e-6 {
						t.Fatalf("flip %v (%d,%d) ch %d: %v, want %v", flip, x, y, ch, got, want)
					}
				}
			}
		}
	}
}

func TestLoadPixelsDownscaleIsAntialiased(t *testing.T) {
	// A one-pixel checkerboard shrunk 4× must come out near mid-grey; a
	// resampler without antialiasing would alias it to stripes or solids.
	img := image.NewGray(image.Rect(0, 0, 256, 256))
	for y := range 256 {
		for x := range 256 {
			if (x+y)%2 == 0 {
				img.SetGray(x, y, color.Gray{255})
			}
		}
	}
	path := writePNG(t, t.TempDir(), "checker.png", img)
	px, err := LoadPixels(path, Entry{OrigW: 256, OrigH: 256, ResizedW: 64, ResizedH: 64}, Size{64, 64})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range px {
		if math.Abs(float64(v)) > 0.05 {
			t.Fatalf("value %d is %v, want about 0 (mid-grey)", i, v)
		}
	}
}

func TestLoadPixelsDropsAlphaKeepingColour(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			img.SetNRGBA(x, y, color.NRGBA{200, 10, 50, uint8(x * 16)}) // alpha 0 at x = 0
		}
	}
	path := writePNG(t, t.TempDir(), "alpha.png", img)
	px, err := LoadPixels(path, Entry{OrigW: 16, OrigH: 16, ResizedW: 16, ResizedH: 16}, Size{16, 16})
	if err != nil {
		t.Fatal(err)
	}
	for ch, v := range []uint8{200, 10, 50} {
		want := float32(v)/255*2 - 1
		if got := px[ch*256]; math.Abs(float64(got-want)) > 1e-6 {
			t.Errorf("transparent pixel ch %d: %v, want %v", ch, got, want)
		}
	}
}

func TestLoadPixelsJPEGAndBadFiles(t *testing.T) {
	dir := t.TempDir()
	jp := writeJPEG(t, dir, "photo.jpg", pattern(96, 64, 4))
	o := smallOptions()
	e, b := firstEntry(t, []Image{{Path: jp}}, o, 1, 0, func(Entry) bool { return true })
	px, err := LoadPixels(jp, e, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(px) != 3*b.W*b.H {
		t.Fatalf("%d values for %v", len(px), b)
	}
	for _, v := range px {
		if v < -1 || v > 1 {
			t.Fatalf("value %v outside [-1, 1]", v)
		}
	}

	cut := writeJPEG(t, dir, "cut.jpg", pattern(96, 64, 5))
	truncate(t, cut, 600)
	if _, err := LoadPixels(cut, e, b); err == nil || !strings.Contains(err.Error(), cut) {
		t.Errorf("truncated JPEG: %v", err)
	}
	junk := dir + "/junk.webp"
	writeFile(t, junk, []byte("RIFF0000WEBPjunk"))
	if _, err := LoadPixels(junk, e, b); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("junk: %v", err)
	}
	if _, err := ProbeSize(junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("probe junk: %v", err)
	}
	// A file that no longer has the planned size is refused, not stretched.
	other := writePNG(t, dir, "other.png", pattern(50, 50, 6))
	if _, err := LoadPixels(other, e, b); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("changed file: %v", err)
	}
}

func TestLoadPixelsWebPEqualsPNG(t *testing.T) {
	// testdata/pattern.webp is pattern.png saved as lossless WebP.
	e := Entry{OrigW: 40, OrigH: 24, ResizedW: 48, ResizedH: 29, CropTop: 2, CropLeft: 5, Flip: true}
	bucket := Size{32, 24}
	a, err := LoadPixels("testdata/pattern.png", e, bucket)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadPixels("testdata/pattern.webp", e, bucket)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("value %d: PNG %v, WebP %v", i, a[i], b[i])
		}
	}
	s, err := ProbeSize("testdata/pattern.webp")
	if err != nil || s != (Size{40, 24}) {
		t.Errorf("ProbeSize = %v, %v", s, err)
	}
}
