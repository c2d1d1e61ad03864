package tokenizer

import (
	"math/rand"
	"reflect"
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

// TestLongWordIsFast: a 50 KB word (pasted base64, say) tokenizes in well
// under a second; the plain passes take about 15 s for it.
func TestLongWordIsFast(t *testing.T) {
	tok, err := Embedded(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	b := make([]byte, 50_000)
	for i := range b {
		b[i] = byte('a' + r.Intn(26))
	}
	start := time.Now()
	ids := tok.EncodePadded(string(b), 77)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("50 KB word took %v", d)
	}
	if len(ids) != 77 || ids[76] != tok.EOS() {
		t.Errorf("ids %v", ids)
	}
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
