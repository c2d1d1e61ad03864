package demo

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"lorastudio/assets/clipvocab"
)

// numMerges is how many merges CLIP uses: 49152 tokens - 256 bytes - 2 specials.
const numMerges = 49152 - 256 - 2

// vocabFiles returns vocab.json and merges.txt as transformers' CLIPTokenizer
// saves them, built from the embedded bpe_simple_vocab_16e6.txt.gz the way
// CLIP builds its vocabulary: the 256 byte characters, the same with "</w>",
// one token per merge, then <|startoftext|> and <|endoftext|>.
func vocabFiles() (vocabJSON, mergesTxt []byte, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(clipvocab.BPEGz))
	if err != nil {
		return nil, nil, fmt.Errorf("demo: embedded CLIP vocabulary: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: embedded CLIP vocabulary: %v", err)
	}
	lines := strings.Split(string(raw), "\n")
	if len(lines) < numMerges+1 {
		return nil, nil, fmt.Errorf("demo: embedded CLIP vocabulary: %d lines, want at least %d", len(lines), numMerges+1)
	}
	merges := lines[1 : numMerges+1]
	var tokens []string
	for _, r := range byteChars() {
		tokens = append(tokens, string(r))
	}
	for _, r := range byteChars() {
		tokens = append(tokens, string(r)+"</w>")
	}
	var m bytes.Buffer
	m.WriteString("#version: 0.2\n")
	for i, l := range merges {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, nil, fmt.Errorf("demo: embedded CLIP vocabulary: line %d: %q is not a merge", i+2, l)
		}
		tokens = append(tokens, f[0]+f[1])
		m.WriteString(f[0] + " " + f[1] + "\n")
	}
	tokens = append(tokens, "<|startoftext|>", "<|endoftext|>")
	// As a Python dict built from the list: a repeated token keeps its last
	// id. Written in id order.
	last := map[string]int{}
	for i, t := range tokens {
		last[t] = i
	}
	var v bytes.Buffer
	v.WriteByte('{')
	first := true
	for i, t := range tokens {
		if last[t] != i {
			continue
		}
		if !first {
			v.WriteByte(',')
		}
		first = false
		var k bytes.Buffer
		enc := json.NewEncoder(&k)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(t); err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(&v, "%s:%d", bytes.TrimSpace(k.Bytes()), i)
	}
	v.WriteString("}\n")
	return v.Bytes(), m.Bytes(), nil
}

// byteChars returns GPT-2's bytes_to_unicode characters in CLIP's order: the
// printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') as themselves, then the other
// bytes, in byte order, mapped to 256, 257, ...
func byteChars() []rune {
	var out []rune
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	for b := range 256 {
		if printable(b) {
			out = append(out, rune(b))
		}
	}
	n := 0
	for b := range 256 {
		if !printable(b) {
			out = append(out, rune(256+n))
			n++
		}
	}
	return out
}
