package tokenizer

import "testing"

func BenchmarkEncodePadded(b *testing.B) {
	tok, err := Embedded(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	const prompt = "masterpiece, best quality, an astronaut riding a horse on mars, photorealistic, highly detailed, cinematic lighting"
	b.SetBytes(int64(len(prompt)))
	tok.EncodePadded(prompt, 77) // fill the BPE cache, as a running app has
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok.EncodePadded(prompt, 77)
	}
}

func BenchmarkLoadEmbedded(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Embedded(DefaultConfig()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeUncached(b *testing.B) {
	tok, err := Embedded(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	const prompt = "masterpiece, best quality, an astronaut riding a horse on mars, photorealistic, highly detailed, cinematic lighting"
	b.SetBytes(int64(len(prompt)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok.mu.Lock()
		tok.cache = map[string][]string{}
		tok.mu.Unlock()
		tok.EncodePadded(prompt, 77)
	}
}

// BenchmarkEncodeLongWord tokenizes a 50 KB word (pasted base64, say)
// uncached: the heap merge's cost, which the plain passes would make about
// 15 s.
func BenchmarkEncodeLongWord(b *testing.B) {
	tok, err := Embedded(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	word := longWord(50_000)
	b.SetBytes(int64(len(word)))
	for b.Loop() {
		tok.mu.Lock()
		tok.cache = map[string][]string{}
		tok.mu.Unlock()
		tok.EncodePadded(word, 77)
	}
}
