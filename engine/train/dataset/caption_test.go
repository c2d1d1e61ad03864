package dataset

import (
	"slices"
	"strings"
	"testing"
)

func TestCaptionTrimsAndKeepsWhenPlain(t *testing.T) {
	o := DefaultOptions()
	if got := Caption("  a cat, on a mat \n", o, 1, 2, 3); got != "a cat, on a mat" {
		t.Errorf("got %q", got)
	}
}

func TestCaptionShuffleKeepsFirstTags(t *testing.T) {
	o := DefaultOptions()
	o.ShuffleTags, o.KeepTags = true, 2
	c := "mychar, smiling, red hat, outdoors,, blue sky , grass, tree, cloud"
	tags := Tags(c)
	if len(tags) != 8 {
		t.Fatalf("Tags: %q", tags)
	}
	orders := map[string]bool{}
	for step := range 20 {
		got := Caption(c, o, 9, step, 0)
		if got != Caption(c, o, 9, step, 0) {
			t.Fatal("Caption is not a function of (seed, step, index)")
		}
		gt := strings.Split(got, ", ")
		if !slices.Equal(gt[:2], tags[:2]) {
			t.Fatalf("kept tags moved: %q", got)
		}
		a, b := slices.Clone(gt), slices.Clone(tags)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("tags changed: %q", got)
		}
		orders[got] = true
	}
	if len(orders) < 10 {
		t.Errorf("only %d distinct orders in 20 steps", len(orders))
	}
	if Caption(c, o, 9, 3, 0) == Caption(c, o, 9, 3, 1) && Caption(c, o, 9, 4, 0) == Caption(c, o, 9, 4, 1) {
		t.Error("index does not change the draw")
	}
}

func TestCaptionDropoutRate(t *testing.T) {
	o := DefaultOptions()
	o.CaptionDropout = 0.25
	dropped := 0
	for step := range 4000 {
		switch Caption(" a dog ", o, 3, step, step%4) {
		case "":
			dropped++
		case "a dog":
		default:
			t.Fatal("caption altered")
		}
	}
	// Binomial(4000, 0.25): σ ≈ 27; allow ±5σ.
	if dropped < 865 || dropped > 1135 {
		t.Errorf("dropped %d of 4000 at rate 0.25", dropped)
	}
	if !TextCacheable(o) {
		t.Error("dropout alone must keep text cacheable")
	}
	texts := CaptionTexts([]Image{{Caption: "b "}, {Caption: "a"}, {Caption: " b"}}, o)
	if !slices.Equal(texts, []string{"", "a", "b"}) {
		t.Errorf("CaptionTexts = %q", texts)
	}
	o.ShuffleTags = true
	if TextCacheable(o) {
		t.Error("shuffled captions reported cacheable")
	}
}
