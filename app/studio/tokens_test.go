package studio

import (
	"strings"
	"testing"

	"lorastudio/engine/tokenizer"
)

// TestCountTokens checks the counter against the tokenizer the pipeline uses and that the
// cut falls where EncodePadded(text, 77) stops: the text before CutAt is read whole, the
// word at CutAt is not.
func TestCountTokens(t *testing.T) {
	tok, err := tokenizer.Embedded(tokenizer.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c, err := CountTokens("")
	if err != nil || c.Tokens != 0 || c.Over() || c.CutAt != -1 || c.String() != "0/75" {
		t.Fatalf("empty = %+v %v", c, err)
	}
	short := "a photo of a cat, masterpiece"
	c, _ = CountTokens(short)
	if want := len(tok.Encode(short)) - 2; c.Tokens != want || c.Over() || c.CutAt != -1 {
		t.Errorf("short = %+v, want %d tokens", c, want)
	}
	var words []string
	for i := 0; i < 60; i++ {
		words = append(words, "red", "cat,")
	}
	for _, long := range []string{strings.Join(words, " "), "  " + strings.Join(words, "\n ") + "  "} {
		c, err = CountTokens(long)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(tok.Encode(long)) - 2; c.Tokens != want || !c.Over() {
			t.Fatalf("long = %+v, want %d tokens", c, want)
		}
		read := tok.EncodePadded(long, 77)[1:76] // what CLIP sees, without start and end
		before := tok.Encode(long[:c.CutAt])
		before = before[1 : len(before)-1]
		if len(before) > PromptTokenLimit {
			t.Fatalf("the text before the cut has %d tokens, more than CLIP reads", len(before))
		}
		for i, id := range before {
			if read[i] != id {
				t.Fatalf("token %d before the cut differs from what CLIP reads", i)
			}
		}
		// The next word does not fit whole.
		next := strings.Fields(long[c.CutAt:])[0]
		upto := tok.Encode(long[:c.CutAt] + next)
		if len(upto)-2 <= PromptTokenLimit {
			t.Errorf("cut at %d, but %q still fits (%d tokens)", c.CutAt, long[:c.CutAt]+next, len(upto)-2)
		}
	}
}
