package dataset

import (
	"slices"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	o := smallOptions() // 128² buckets
	long := strings.Repeat("word ", 80)
	imgs := []Image{
		{Path: writePNG(t, dir, "big_wide.png", pattern(400, 200, 1)), Caption: "a, b", Repeats: 3},
		{Path: writePNG(t, dir, "small_sq.png", pattern(40, 40, 2)), Caption: long},
		{Path: writeJPEG(t, dir, "sq.jpg", pattern(256, 256, 3)), Caption: "  "},
		{Path: writePNG(t, dir, "cut.png", pattern(300, 300, 4))},
		{Path: writePNG(t, dir, "sq2.png", pattern(300, 300, 5)), Caption: "c", Repeats: 2},
	}
	truncate(t, imgs[3].Path, 100)
	const batch = 2
	r, err := Inspect(imgs, o, batch, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Images != 4 || r.Repeats != 7 || r.Samples != 7 {
		t.Errorf("images %d repeats %d samples %d", r.Images, r.Repeats, r.Samples)
	}
	if len(r.Corrupt) != 1 || r.Corrupt[0].Path != imgs[3].Path || !strings.Contains(r.Corrupt[0].Reason, "cut.png") {
		t.Errorf("corrupt %+v", r.Corrupt)
	}
	if !slices.Equal(r.Uncaptioned, []string{imgs[2].Path}) {
		t.Errorf("uncaptioned %q", r.Uncaptioned)
	}
	// "word " ×80 is 80 tokens; the text encoders read 75.
	if r.MaxTokens != 75 || len(r.LongCaptions) != 1 || r.LongCaptions[0] != (LongCaption{imgs[1].Path, 80}) {
		t.Errorf("long captions %+v (max %d)", r.LongCaptions, r.MaxTokens)
	}
	sq := BucketFor(o, 1, 1)
	if len(r.Small) != 1 || r.Small[0] != (SmallImage{imgs[1].Path, Size{40, 40}, sq}) {
		t.Errorf("small %+v", r.Small)
	}
	wide := BucketFor(o, 400, 200)
	want := []BucketCount{{sq, 3, 4}, {wide, 1, 3}}
	if wide.W < sq.W {
		want[0], want[1] = want[1], want[0]
	}
	if !slices.Equal(r.Buckets, want) {
		t.Errorf("buckets %+v, want %+v", r.Buckets, want)
	}
	// 4 square samples → 2 batches, 3 wide → 2 (one partial); and Plan agrees.
	if r.StepsPerEpoch != 4 {
		t.Errorf("steps per epoch %d", r.StepsPerEpoch)
	}
	p, err := Plan(imgs, o, batch, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != r.StepsPerEpoch {
		t.Errorf("plan has %d batches, report says %d", len(p), r.StepsPerEpoch)
	}
}
