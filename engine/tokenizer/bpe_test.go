package tokenizer

import (
	"math/rand"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMergeHeapEqualsPasses checks the O(n log n) merge against CLIP's plain
// passes on words built to make merges interact: small alphabets, repeats,
// real words run together, any length.
func TestMergeHeapEqualsPasses(t *testing.T) {
	tok, err := Embedded(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(7))
	alphabets := []string{"ab", "abc", "aeiou", "thesrn", "abcdefghijklmnopqrstuvwxyz", "0123456789.,!?'", "éàüß日本語ab"}
	pieces := []string{"photo", "the", "ing", "tion", "aaaa", "abab", "masterpiece", "lora", "😀", "ñ"}
	for n := 0; n < 4000; n++ {
		var b strings.Builder
		length := 1 + r.Intn(200)
		if r.Intn(2) == 0 {
			al := []rune(alphabets[r.Intn(len(alphabets))])
			for i := 0; i < length; i++ {
				b.WriteRune(al[r.Intn(len(al))])
			}
		} else {
			for b.Len() < length {
				b.WriteString(pieces[r.Intn(len(pieces))])
			}
		}
		word := b.String()
		want := tok.mergePasses(tok.symbols(word))
		got := tok.mergeHeap(tok.symbols(word))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("word %q:\nheap   %q\npasses %q", word, got, want)
		}
	}
}

// TestLongWordScales: a long word (pasted base64, say) costs BPE work in
// proportion to its length: the merges are mergeHeap's, O(n log n), not the
// plain passes', O(n²), which take about 15 s for 50 KB. The work is
// measured as bytes allocated, which depend on the algorithm and not on how
// loaded the machine is: ten times the word allocates about 13 times the
// bytes with the heap (n log n: 12.7) and over 40 times with the passes. The time is
// only logged; BenchmarkEncodeLongWord measures it.
func TestLongWordScales(t *testing.T) {
	tok, err := Embedded(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	encode := func(n int) (ids []int, bytes uint64) {
		word := longWord(n)
		tok.mu.Lock()
		tok.cache = map[string][]string{}
		tok.mu.Unlock()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		ids = tok.EncodePadded(word, 77)
		d := time.Since(start)
		runtime.ReadMemStats(&after)
		bytes = after.TotalAlloc - before.TotalAlloc
		t.Logf("a %d-byte word: %d bytes allocated, %v", n, bytes, d)
		return ids, bytes
	}
	const small, large = 5_000, 50_000
	if n := len(tok.symbols(longWord(small))); n <= heapThreshold {
		t.Fatalf("a %d-byte word has %d symbols, not above heapThreshold %d", small, n, heapThreshold)
	}
	_, a := encode(small)
	ids, b := encode(large)
	if ratio := float64(b) / float64(a); ratio > 25 {
		t.Errorf("a %d× longer word allocates %.0f× the bytes (%d vs %d): BPE is not O(n log n)", large/small, ratio, b, a)
	}
	if len(ids) != 77 || ids[0] != tok.BOS() || ids[76] != tok.EOS() {
		t.Errorf("ids %v", ids)
	}
}

// longWord is n random lower-case letters: one pre-token with no merges
// prepared for it.
func longWord(n int) string {
	r := rand.New(rand.NewSource(1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.Intn(26))
	}
	return string(b)
}

// TestMergeHeapArbitraryRanks uses merge tables whose ranks do not follow
// creation order (a pair containing a merged symbol may outrank the merge that
// makes it), where pair passes and a naive heap disagree.
func TestMergeHeapArbitraryRanks(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for table := 0; table < 200; table++ {
		syms := []string{"a", "b", "c"}
		var merges []pair
		seen := map[pair]bool{}
		for len(merges) < 40 {
			x := syms[r.Intn(len(syms))]
			y := syms[r.Intn(len(syms))]
			if r.Intn(3) == 0 {
				y += "</w>"
			}
			p := pair{x, y}
			if seen[p] {
				continue
			}
			seen[p] = true
			merges = append(merges, p)
			if !strings.HasSuffix(y, "</w>") {
				syms = append(syms, x+y)
			}
		}
		r.Shuffle(len(merges), func(i, j int) { merges[i], merges[j] = merges[j], merges[i] })
		tok, err := build(map[string]int{"a": 0, "b": 1, "c": 2}, merges, DefaultConfig(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < 50; n++ {
			var b strings.Builder
			for i := 1 + r.Intn(60); i > 0; i-- {
				b.WriteByte("abc"[r.Intn(3)])
			}
			want := tok.mergePasses(tok.symbols(b.String()))
			got := tok.mergeHeap(tok.symbols(b.String()))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("table %d word %q:\nheap   %q\npasses %q\nmerges %v", table, b.String(), got, want, merges)
			}
		}
	}
	// The case that needs the pass discipline: (a b) twice, then (ab a).
	tok, _ := build(map[string]int{"a": 0, "b": 1}, []pair{{"ab", "a"}, {"a", "b"}}, DefaultConfig(), nil)
	want := []string{"ab", "aba", "b</w>"}
	if got := tok.mergeHeap(tok.symbols("ababab")); !reflect.DeepEqual(got, want) {
		t.Errorf("heap %q, want %q", got, want)
	}
}
