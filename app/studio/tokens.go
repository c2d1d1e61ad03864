package studio

import (
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"

	"lorastudio/engine/tokenizer"
)

// PromptTokenLimit is how many prompt tokens CLIP reads: its 77 positions less the start
// and end tokens. The pipeline cuts a longer prompt there (A1111's counter shows "n/75").
const PromptTokenLimit = 75

// TokenCount is what the prompt counter shows.
type TokenCount struct {
	Tokens int // CLIP tokens of the text, without the start and end tokens
	Limit  int // PromptTokenLimit
	// CutAt is the byte offset in the text of the first word CLIP does not read in full,
	// -1 when the whole text fits. The pipeline keeps the first Limit tokens, so a word whose
	// tokens straddle the limit is cut inside; CutAt is then the start of that word.
	CutAt int
}

// Over reports whether the text is longer than CLIP reads.
func (c TokenCount) Over() bool { return c.Tokens > c.Limit }

// String is the counter as A1111 shows it: "12/75".
func (c TokenCount) String() string { return fmt.Sprintf("%d/%d", c.Tokens, c.Limit) }

var (
	countTokOnce sync.Once
	countTok     *tokenizer.Tokenizer
	countTokErr  error
)

// promptTokenizer is CLIP's tokenizer over the embedded vocabulary, built once. SDXL's two
// tokenizers split text identically (they differ only in the padding token), so one counts
// for both.
func promptTokenizer() (*tokenizer.Tokenizer, error) {
	countTokOnce.Do(func() {
		countTok, countTokErr = tokenizer.Embedded(tokenizer.DefaultConfig())
		if countTokErr != nil {
			countTokErr = fmt.Errorf("the prompt token counter: %w", countTokErr)
		}
	})
	return countTok, countTokErr
}

// CountTokens counts the CLIP tokens of a prompt and finds where CLIP stops reading it.
func CountTokens(text string) (TokenCount, error) {
	tok, err := promptTokenizer()
	if err != nil {
		return TokenCount{}, err
	}
	c := TokenCount{Tokens: len(tok.Tokens(text)), Limit: PromptTokenLimit, CutAt: -1}
	if !c.Over() {
		return c, nil
	}
	// The tokenizer splits at white space first, so the tokens of text[:b] for a b at white
	// space are the first tokens of text. Find the last such b whose prefix still fits
	// (binary search: the count grows with b); the cut is in the word after it.
	var bounds []int // offsets of white space that ends a word
	prev := false
	for i, r := range text {
		space := unicode.IsSpace(r)
		if space && prev {
			bounds = append(bounds, i)
		}
		prev = !space
	}
	lo, hi := 0, len(bounds) // invariant: bounds[:lo] fit, bounds[hi:] do not
	for lo < hi {
		mid := (lo + hi) / 2
		if len(tok.Tokens(text[:bounds[mid]])) <= c.Limit {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	cut := 0
	if lo > 0 {
		cut = bounds[lo-1]
	}
	for cut < len(text) {
		r, n := utf8.DecodeRuneInString(text[cut:])
		if !unicode.IsSpace(r) {
			break
		}
		cut += n
	}
	c.CutAt = cut
	return c, nil
}
