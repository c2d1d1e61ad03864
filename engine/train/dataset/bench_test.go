package dataset

import "testing"

// BenchmarkLoadPixels cuts a 1600x900 PNG into its 1344x768 SDXL bucket
// (decode, Catmull-Rom resize, crop, flip, conversion to floats).
func BenchmarkLoadPixels(b *testing.B) {
	dir := b.TempDir()
	path := writePNG(b, dir, "wide.png", pattern(1600, 900, 1))
	o := DefaultOptions()
	bucket := BucketFor(o, 1600, 900)
	c := CoverSize(1600, 900, bucket)
	e := Entry{OrigW: 1600, OrigH: 900, ResizedW: c.W, ResizedH: c.H, CropLeft: centerOffset(c.W - bucket.W), Flip: true}
	b.ResetTimer()
	for b.Loop() {
		if _, err := LoadPixels(path, e, bucket); err != nil {
			b.Fatal(err)
		}
	}
}
