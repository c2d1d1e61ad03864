// Package tokenizer is CLIP's byte-level BPE tokenizer, reproducing
// transformers' slow CLIPTokenizer as a plain install runs it (no ftfy): the
// BasicTokenizer pre-tokenizer, CLIP's split pattern, bytes mapped to
// printable characters, then BPE merges with "</w>" end-of-word marks.
//
// The vocabulary comes either from CLIP's own bpe_simple_vocab_16e6.txt.gz
// (embedded in the binary) or from a model's tokenizer/ folder (vocab.json,
// merges.txt, special_tokens_map.json, tokenizer_config.json).
package tokenizer

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// numMerges is how many merges CLIP uses: 49152 tokens - 256 bytes - 2 specials.
// transformers reads no more than this many lines from merges.txt either.
const numMerges = 49152 - 256 - 2

// defaultMaxLength is CLIP's context length, used when a folder's config
// names none.
const defaultMaxLength = 77

// Config names the special tokens. Empty fields take CLIP's defaults.
type Config struct {
	BOS, EOS, Pad, Unk string
	// MaxLength is the model's context length (tokenizer_config.json's
	// model_max_length).
	MaxLength int
}

// DefaultConfig is CLIP's (and SDXL's first tokenizer's): <|startoftext|>,
// <|endoftext|> as end, padding and unknown token, 77 tokens.
func DefaultConfig() Config {
	return Config{BOS: "<|startoftext|>", EOS: "<|endoftext|>", Pad: "<|endoftext|>", Unk: "<|endoftext|>", MaxLength: defaultMaxLength}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BOS == "" {
		c.BOS = d.BOS
	}
	if c.EOS == "" {
		c.EOS = d.EOS
	}
	if c.Pad == "" {
		c.Pad = d.Pad
	}
	if c.Unk == "" {
		c.Unk = d.Unk
	}
	if c.MaxLength <= 0 {
		c.MaxLength = d.MaxLength
	}
	return c
}

type pair struct{ a, b string }

// Tokenizer turns text into CLIP token ids. It is safe for concurrent use.
type Tokenizer struct {
	encoder map[string]int
	ranks   map[pair]int
	// added holds the special and added tokens, which split the text before
	// BPE and map straight to their ids; addedByLen lists them longest first.
	added      map[string]int
	addedByLen []string
	specials   []string // the literals CLIP's pattern keeps whole
	bos, eos   int
	pad, unk   int
	maxLength  int
	byteEnc    [256]rune

	mu    sync.Mutex
	cache map[string][]string
}

// build assembles a tokenizer from a vocabulary, merges in rank order and a
// config; extra are added tokens with fixed ids (from added_tokens_decoder).
func build(encoder map[string]int, merges []pair, cfg Config, extra map[string]int) (*Tokenizer, error) {
	cfg = cfg.withDefaults()
	t := &Tokenizer{
		encoder:   encoder,
		ranks:     make(map[pair]int, len(merges)),
		added:     map[string]int{},
		specials:  []string{"<|startoftext|>", "<|endoftext|>"},
		maxLength: cfg.MaxLength,
		byteEnc:   bytesToUnicode(),
		cache:     map[string][]string{},
	}
	for i, m := range merges {
		t.ranks[m] = i
	}
	next := len(encoder)
	for _, id := range encoder {
		if id >= next {
			next = id + 1
		}
	}
	for tok, id := range extra {
		t.added[tok] = id
		if id >= next {
			next = id + 1
		}
	}
	// Special tokens become added tokens, as transformers does: an existing
	// vocabulary entry keeps its id, a new one is appended.
	for _, tok := range []string{cfg.BOS, cfg.EOS, cfg.Unk, cfg.Pad} {
		if _, ok := t.added[tok]; ok {
			continue
		}
		if id, ok := encoder[tok]; ok {
			t.added[tok] = id
		} else {
			t.added[tok] = next
			next++
		}
	}
	for tok := range t.added {
		t.addedByLen = append(t.addedByLen, tok)
	}
	sort.Slice(t.addedByLen, func(i, j int) bool {
		a, b := t.addedByLen[i], t.addedByLen[j]
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
	t.bos, t.eos, t.pad, t.unk = t.added[cfg.BOS], t.added[cfg.EOS], t.added[cfg.Pad], t.added[cfg.Unk]
	return t, nil
}

// bytesToUnicode is CLIP's table from UTF-8 bytes to printable characters:
// the printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100 onwards in byte order.
func bytesToUnicode() [256]rune {
	var t [256]rune
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
	}
	n := 0
	for b := 0; b < 256; b++ {
		if printable(b) {
			t[b] = rune(b)
		} else {
			t[b] = rune(256 + n)
			n++
		}
	}
	return t
}

// byteOrder lists the bytes in the order CLIP's vocabulary starts with: the
// printable ones first, then the rest.
func byteOrder() []int {
	var first, rest []int
	t := bytesToUnicode()
	for b := 0; b < 256; b++ {
		if t[b] == rune(b) {
			first = append(first, b)
		} else {
			rest = append(rest, b)
		}
	}
	return append(first, rest...)
}

// BOS returns the start token's id.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS returns the end token's id.
func (t *Tokenizer) EOS() int { return t.eos }

// Pad returns the padding token's id (49407 for SDXL's tokenizer, 0 for tokenizer_2).
func (t *Tokenizer) Pad() int { return t.pad }

// MaxLength returns the model's context length (77 for CLIP).
func (t *Tokenizer) MaxLength() int { return t.maxLength }

// VocabSize returns the number of ids: the vocabulary plus added tokens.
func (t *Tokenizer) VocabSize() int {
	n := len(t.encoder)
	for _, id := range t.added {
		if id >= n {
			n = id + 1
		}
	}
	return n
}

// Tokens returns the BPE tokens of text, without start and end tokens
// ("a</w>", "photo</w>" ...); added tokens appear as themselves.
func (t *Tokenizer) Tokens(text string) []string {
	var out []string
	for _, piece := range t.splitAdded(text) {
		if _, ok := t.added[piece]; ok {
			out = append(out, piece)
			continue
		}
		for _, word := range basicWords(piece) {
			for _, tok := range splitWord(word, t.specials) {
				out = append(out, t.bpe(tok)...)
			}
		}
	}
	return out
}

// ids converts tokens to ids; unknown tokens become the unknown token.
func (t *Tokenizer) ids(tokens []string) []int {
	out := make([]int, len(tokens))
	for i, tok := range tokens {
		if id, ok := t.added[tok]; ok {
			out[i] = id
		} else if id, ok := t.encoder[tok]; ok {
			out[i] = id
		} else {
			out[i] = t.unk
		}
	}
	return out
}

// Encode returns the ids of text between the start and end tokens, neither
// truncated nor padded.
func (t *Tokenizer) Encode(text string) []int {
	body := t.ids(t.Tokens(text))
	out := make([]int, 0, len(body)+2)
	out = append(out, t.bos)
	out = append(out, body...)
	return append(out, t.eos)
}

// EncodePadded returns exactly n ids: the start token, text's ids truncated to
// n-2, the end token, then padding — what transformers gives for
// tok(text, padding="max_length", max_length=n, truncation=True). For n < 2
// it returns the first n of the start and end tokens.
func (t *Tokenizer) EncodePadded(text string, n int) []int {
	if n <= 0 {
		return []int{}
	}
	if n < 2 {
		return []int{t.bos}
	}
	body := t.ids(t.Tokens(text))
	if len(body) > n-2 {
		body = body[:n-2]
	}
	out := make([]int, 0, n)
	out = append(out, t.bos)
	out = append(out, body...)
	out = append(out, t.eos)
	for len(out) < n {
		out = append(out, t.pad)
	}
	return out
}

// splitAdded cuts text around added tokens (leftmost, longest first), as
// transformers' trie does before any normalisation; empty pieces are dropped.
func (t *Tokenizer) splitAdded(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); {
		match := ""
		for _, tok := range t.addedByLen {
			if strings.HasPrefix(text[i:], tok) {
				match = tok
				break
			}
		}
		if match == "" {
			i++
			continue
		}
		if i > start {
			out = append(out, text[start:i])
		}
		out = append(out, match)
		i += len(match)
		start = i
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// bpe maps one pre-token to its BPE tokens, with a cache.
func (t *Tokenizer) bpe(token string) []string {
	for _, sp := range t.specials {
		if token == sp {
			return []string{token}
		}
	}
	t.mu.Lock()
	cached, ok := t.cache[token]
	t.mu.Unlock()
	if ok {
		return cached
	}
	word := t.symbols(token)
	if len(word) == 0 {
		return nil
	}
	if len(word) <= heapThreshold {
		word = t.mergePasses(word)
	} else {
		word = t.mergeHeap(word)
	}
	t.mu.Lock()
	if len(t.cache) >= 1<<16 {
		t.cache = map[string][]string{}
	}
	t.cache[token] = word
	t.mu.Unlock()
	return word
}

// heapThreshold is the word length above which BPE uses the O(n log n)
// merge; below it the plain passes are faster.
const heapThreshold = 48

// symbols maps each UTF-8 byte of token to its printable character; the last
// one carries "</w>".
func (t *Tokenizer) symbols(token string) []string {
	word := make([]string, len(token))
	for i := 0; i < len(token); i++ {
		word[i] = string(t.byteEnc[token[i]])
	}
	if len(word) > 0 {
		word[len(word)-1] += "</w>"
	}
	return word
}

// mergePasses is BPE exactly as CLIP writes it: find the adjacent pair of
// lowest rank, merge all its occurrences left to right, repeat. It costs
// O(n) per pass and up to O(n) passes.
func (t *Tokenizer) mergePasses(word []string) []string {
	for len(word) > 1 {
		best, bestRank := pair{}, -1
		for i := 0; i+1 < len(word); i++ {
			if r, ok := t.ranks[pair{word[i], word[i+1]}]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = pair{word[i], word[i+1]}, r
			}
		}
		if bestRank < 0 {
			break
		}
		merged := word[:0:0]
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == best.a && word[i+1] == best.b {
				merged = append(merged, best.a+best.b)
				i += 2
			} else {
				merged = append(merged, word[i])
				i++
			}
		}
		word = merged
	}
	return word
}

// candidate is a mergeable adjacent pair: the symbols at left and right (a
// linked list over the word's positions) when it was found.
type candidate struct {
	rank, left, right int
	a, b              string
}

// mergeHeap gives the same result as mergePasses in O(n log n), so a long
// word (pasted base64, say) cannot stall the caller. Candidates wait in a heap
// ordered by (rank, position). All occurrences of the lowest-rank pair are
// merged left to right before any pair those merges create is considered,
// exactly as one pass of mergePasses does; stale candidates (a symbol merged
// away or grown since) are skipped.
func (t *Tokenizer) mergeHeap(word []string) []string {
	n := len(word)
	next := make([]int, n)
	prev := make([]int, n)
	for i := range word {
		next[i], prev[i] = i+1, i-1
	}
	next[n-1] = -1
	alive := make([]bool, n)
	for i := range alive {
		alive[i] = true
	}
	h := &candHeap{}
	consider := func(l int, into *[]candidate) {
		if l < 0 || next[l] < 0 {
			return
		}
		r := next[l]
		if rank, ok := t.ranks[pair{word[l], word[r]}]; ok {
			*into = append(*into, candidate{rank, l, r, word[l], word[r]})
		}
	}
	var fresh []candidate
	for i := 0; i+1 < n; i++ {
		consider(i, &fresh)
	}
	for _, c := range fresh {
		h.push(c)
	}
	for h.len() > 0 {
		rank := h.peek().rank
		fresh = fresh[:0]
		// One pass: every valid occurrence of this pair, in position order.
		for h.len() > 0 && h.peek().rank == rank {
			c := h.pop()
			if !alive[c.left] || !alive[c.right] || next[c.left] != c.right || word[c.left] != c.a || word[c.right] != c.b {
				continue
			}
			word[c.left] = c.a + c.b
			alive[c.right] = false
			next[c.left] = next[c.right]
			if next[c.right] >= 0 {
				prev[next[c.right]] = c.left
			}
			consider(prev[c.left], &fresh)
			consider(c.left, &fresh)
		}
		for _, c := range fresh {
			h.push(c)
		}
	}
	out := make([]string, 0, n)
	for i := 0; i >= 0; i = next[i] {
		out = append(out, word[i])
	}
	return out
}

// candHeap is a binary min-heap of candidates by (rank, left).
type candHeap struct{ c []candidate }

func (h *candHeap) len() int        { return len(h.c) }
func (h *candHeap) peek() candidate { return h.c[0] }
func (h *candHeap) less(i, j int) bool {
	a, b := h.c[i], h.c[j]
	return a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
}

func (h *candHeap) push(c candidate) {
	h.c = append(h.c, c)
	for i := len(h.c) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.c[i], h.c[p] = h.c[p], h.c[i]
		i = p
	}
}

func (h *candHeap) pop() candidate {
	top := h.c[0]
	last := len(h.c) - 1
	h.c[0] = h.c[last]
	h.c = h.c[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h.c) && h.less(l, m) {
			m = l
		}
		if r < len(h.c) && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h.c[i], h.c[m] = h.c[m], h.c[i]
		i = m
	}
	return top
}

// errorf builds an error naming the tokenizer source.
func errorf(source, format string, args ...any) error {
	return fmt.Errorf("tokenizer: %s: %s", source, fmt.Sprintf(format, args...))
}
