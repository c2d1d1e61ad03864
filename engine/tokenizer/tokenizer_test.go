package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/safetensors"
)

type goldenCase struct {
	Text           string   `json:"text"`
	InputIDs       []int    `json:"input_ids"`
	InputIDs2      []int    `json:"input_ids_2"`
	IDsUntruncated []int    `json:"ids_untruncated"`
	Tokens         []string `json:"tokens"`
}

type golden struct {
	PadTokenID     map[string]int `json:"pad_token_id"`
	BOSTokenID     int            `json:"bos_token_id"`
	EOSTokenID     int            `json:"eos_token_id"`
	ModelMaxLength int            `json:"model_max_length"`
	Cases          []goldenCase   `json:"cases"`
}

func loadGolden(t *testing.T) golden {
	raw, err := os.ReadFile(filepath.Join(fixtures.Root(t), "goldens", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("no golden cases")
	}
	return g
}

// tokenizers returns SDXL's two tokenizers from the model folder and from the
// embedded vocabulary configured like them.
func tokenizers(t *testing.T) map[string][2]*Tokenizer {
	root := fixtures.Root(t)
	out := map[string][2]*Tokenizer{}
	for _, name := range []string{"tokenizer", "tokenizer_2"} {
		dir, err := FromDir(filepath.Join(root, "model", name))
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		if name == "tokenizer_2" {
			cfg.Pad = "!"
		}
		emb, err := Embedded(cfg)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = [2]*Tokenizer{dir, emb}
	}
	return out
}

func TestGoldenIDs(t *testing.T) {
	g := loadGolden(t)
	toks := tokenizers(t)
	for name, pair := range toks {
		for i, tok := range pair {
			form := []string{"folder", "embedded"}[i]
			if tok.BOS() != g.BOSTokenID || tok.EOS() != g.EOSTokenID || tok.Pad() != g.PadTokenID[name] {
				t.Fatalf("%s %s: bos %d eos %d pad %d, golden %d %d %d", name, form, tok.BOS(), tok.EOS(), tok.Pad(), g.BOSTokenID, g.EOSTokenID, g.PadTokenID[name])
			}
			if form == "folder" && tok.MaxLength() != g.ModelMaxLength {
				t.Errorf("%s: MaxLength %d, golden %d", name, tok.MaxLength(), g.ModelMaxLength)
			}
			for _, c := range g.Cases {
				want := c.InputIDs
				if name == "tokenizer_2" {
					want = c.InputIDs2
				}
				if got := tok.EncodePadded(c.Text, g.ModelMaxLength); !reflect.DeepEqual(got, want) {
					t.Errorf("%s %s EncodePadded(%q)\n got %v\nwant %v", name, form, c.Text, got, want)
				}
				if name == "tokenizer" {
					if got := tok.Encode(c.Text); !reflect.DeepEqual(got, c.IDsUntruncated) {
						t.Errorf("%s %s Encode(%q)\n got %v\nwant %v", name, form, c.Text, got, c.IDsUntruncated)
					}
					got := append(append([]string{"<|startoftext|>"}, tok.Tokens(c.Text)...), "<|endoftext|>")
					if !reflect.DeepEqual(got, c.Tokens) {
						t.Errorf("%s %s Tokens(%q)\n got %q\nwant %q", name, form, c.Text, got, c.Tokens)
					}
				}
			}
		}
	}
}

// TestGoldenTextEncoderIDs checks the ids the text-encoder goldens were made
// from, read with our own safetensors reader.
func TestGoldenTextEncoderIDs(t *testing.T) {
	root := fixtures.Root(t)
	raw, err := os.ReadFile(filepath.Join(root, "goldens", "_summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var summary struct {
		Config struct {
			TEPrompts []string `json:"te_prompts"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &summary); err != nil {
		t.Fatal(err)
	}
	if len(summary.Config.TEPrompts) == 0 {
		t.Fatal("no te_prompts in _summary.json")
	}
	f, err := safetensors.Open(filepath.Join(root, "goldens", "text_encoders.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	toks := tokenizers(t)
	for i, prompt := range summary.Config.TEPrompts {
		for key, name := range map[string]string{"input_ids": "tokenizer", "input_ids_2": "tokenizer_2"} {
			tensor := "p" + string(rune('0'+i)) + "." + key
			info, ok := f.Tensor(tensor)
			if !ok || info.DType != safetensors.I64 {
				t.Fatalf("%s: %+v ok=%v", tensor, info, ok)
			}
			b, _ := f.Bytes(tensor)
			want := make([]int, len(b)/8)
			for j := range want {
				want[j] = int(int64(binary.LittleEndian.Uint64(b[8*j:])))
			}
			for _, tok := range toks[name] {
				if got := tok.EncodePadded(prompt, len(want)); !reflect.DeepEqual(got, want) {
					t.Errorf("%s for %q\n got %v\nwant %v", tensor, prompt, got, want)
				}
			}
		}
	}
}

// TestEmbeddedEqualsFolder: the vocabulary and merges built from the gz are
// exactly those of the folder's vocab.json and merges.txt.
func TestEmbeddedEqualsFolder(t *testing.T) {
	toks := tokenizers(t)
	dir, emb := toks["tokenizer"][0], toks["tokenizer"][1]
	if len(dir.encoder) != len(emb.encoder) || len(dir.encoder) < 1000 {
		t.Fatalf("vocab sizes %d vs %d", len(dir.encoder), len(emb.encoder))
	}
	for tok, id := range dir.encoder {
		if emb.encoder[tok] != id {
			t.Fatalf("token %q: folder id %d, embedded %d", tok, id, emb.encoder[tok])
		}
	}
	if !reflect.DeepEqual(dir.ranks, emb.ranks) {
		t.Fatal("merge ranks differ")
	}
	if dir.VocabSize() != emb.VocabSize() || dir.VocabSize() != len(dir.encoder) {
		t.Errorf("VocabSize %d / %d, vocab.json has %d", dir.VocabSize(), emb.VocabSize(), len(dir.encoder))
	}
}

func TestNormalization(t *testing.T) {
	tok, err := Embedded(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	same := [][2]string{
		{"caf\u00e9", "cafe\u0301"},                       // NFC composes the accent
		{"  a\t\tcat\n", "a cat"},                         // whitespace collapses
		{"a\u00a0cat", "a cat"},                           // no-break space is a space
		{"a\u3000cat", "a cat"},                           // ideographic space too
		{"ca\u200bt", "cat"},                              // format characters vanish
		{"ca\x00t\ufffd", "cat"},                          // NUL and U+FFFD vanish
		{"ca\xfft", "cat"},                                // invalid UTF-8 vanishes
		{"ca\x0bt", "cat"},                                // vertical tab is a control char
		{"ca\ue000t", "cat"},                              // private use is dropped
		{"ΟΔΟΣ", "οδος"},                                  // final sigma
		{"ΣΟΦΙΑ", "σοφια"},                                // initial sigma
		{"\u0130stanbul", "i\u0307stanbul"},               // İ lowers to i + dot
		{"<|ENDOFTEXT|>", "<|endoftext|>"},                // lower-cased, then kept whole
		{"a photo\u2028of", "a photo of"},                 // line separator splits
		{"日本", "日 本"},                                     // CJK ideographs split
		{"I'M", "i'm"},                                    // contractions, any case
		{"x<|endoftext|>y", "x <|endoftext|> y"},          // special tokens split the text
		{"\U00020000\U00020001", "\U00020000 \U00020001"}, // CJK extension B
	}
	for _, c := range same {
		a, b := tok.Encode(c[0]), tok.Encode(c[1])
		if !reflect.DeepEqual(a, b) {
			t.Errorf("Encode(%q) = %v, Encode(%q) = %v: want equal", c[0], a, c[1], b)
		}
	}
	differ := [][2]string{
		{"café", "cafe"},    // accents kept
		{"한국어", "한 국 어"},    // Hangul is not split
		{"テキスト", "テ キ ス ト"}, // nor Katakana
		{"don't", "don 't"}, // (sanity: these do equal; checked below)
	}
	for _, c := range differ[:3] {
		if reflect.DeepEqual(tok.Encode(c[0]), tok.Encode(c[1])) {
			t.Errorf("Encode(%q) == Encode(%q), want different", c[0], c[1])
		}
	}
	// The pattern keeps a special token or contraction only at the start of a
	// match; punctuation runs are greedy.
	for w, want := range map[string][]string{
		"'sx":                {"'s", "x"},
		"?'s":                {"?'", "s"},
		"(<|endoftext|>":     {"(<|", "endoftext", "|>"},
		"<|endoftext|>x":     {"<|endoftext|>", "x"},
		"it's'll've'd're'mx": {"it", "'s", "'ll", "'ve", "'d", "'re", "'m", "x"},
		"'x":                 {"'", "x"},
		"a1b22":              {"a", "1", "b", "2", "2"},
		"x²½":                {"x", "²", "½"},
		"..,!?":              {"..,!?"},
		"c\u0345d!\u0345?":   {"c", "d", "!", "?"}, // U+0345 matches no alternative
	} {
		if got := splitWord(w, tok.specials); !reflect.DeepEqual(got, want) {
			t.Errorf("splitWord(%q) = %q, want %q", w, got, want)
		}
	}
	if got := basicWords("Hello  WORLD 日本語 ΟΔΟΣ"); !reflect.DeepEqual(got, []string{"hello", "world", "日", "本", "語", "οδος"}) {
		t.Errorf("basicWords = %q", got)
	}
}

func TestPaddingAndTruncation(t *testing.T) {
	toks := tokenizers(t)
	long := strings.Repeat("photo ", 200)
	for name, pair := range toks {
		tok := pair[0]
		for _, n := range []int{77, 10, 3, 2} {
			ids := tok.EncodePadded(long, n)
			if len(ids) != n || ids[0] != tok.BOS() || ids[n-1] != tok.EOS() {
				t.Errorf("%s n=%d: %v", name, n, ids)
			}
			for _, id := range ids[1 : n-1] {
				if id != 1125 && n > 2 { // "photo</w>"
					t.Errorf("%s n=%d: body %v", name, n, ids)
					break
				}
			}
		}
		short := tok.EncodePadded("a cat", 77)
		if short[3] != tok.EOS() || short[4] != tok.Pad() || short[76] != tok.Pad() {
			t.Errorf("%s: %v", name, short[:6])
		}
		empty := tok.EncodePadded("", 77)
		if empty[0] != tok.BOS() || empty[1] != tok.EOS() || empty[2] != tok.Pad() {
			t.Errorf("%s empty: %v", name, empty[:4])
		}
		if got := tok.EncodePadded("a cat", 1); !reflect.DeepEqual(got, []int{tok.BOS()}) {
			t.Errorf("n=1: %v", got)
		}
		if got := tok.EncodePadded("a cat", 0); len(got) != 0 {
			t.Errorf("n=0: %v", got)
		}
		if got := len(tok.Encode(long)); got != 202 {
			t.Errorf("Encode is not truncated: %d ids, want 202", got)
		}
	}
	// tokenizer_2 pads with "!" (id 0) and, like transformers, treats "!" in the
	// text as that special token.
	tok2 := toks["tokenizer_2"][0]
	wow := tok2.Encode("wow")[1]
	if got := tok2.Encode("wow!!"); !reflect.DeepEqual(got, []int{tok2.BOS(), wow, 0, 0, tok2.EOS()}) {
		t.Errorf("tokenizer_2 Encode(wow!!) = %v", got)
	}
	if got := toks["tokenizer"][0].Encode("wow!!"); got[2] == 0 {
		t.Errorf("tokenizer Encode(wow!!) = %v: '!' split like a special token", got)
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok, err := Embedded(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := tok.Encode("an astronaut riding a horse on mars, photorealistic")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if got := tok.Encode("an astronaut riding a horse on mars, photorealistic"); !reflect.DeepEqual(got, want) {
					t.Error("concurrent Encode differs")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestFromDirErrors(t *testing.T) {
	src := filepath.Join(fixtures.Root(t), "model", "tokenizer")
	copyDir := func(t *testing.T) string {
		dir := t.TempDir()
		for _, n := range []string{"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"} {
			b, err := os.ReadFile(filepath.Join(src, n))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, n), b, 0o644)
		}
		return dir
	}
	cases := []struct {
		name   string
		mutate func(dir string)
		want   string
	}{
		{"missing vocab", func(d string) { os.Remove(filepath.Join(d, "vocab.json")) }, "vocab.json"},
		{"missing merges", func(d string) { os.Remove(filepath.Join(d, "merges.txt")) }, "merges.txt"},
		{"bad vocab", func(d string) { os.WriteFile(filepath.Join(d, "vocab.json"), []byte(`["a"]`), 0o644) }, "vocab.json: not a JSON object"},
		{"bad merge line", func(d string) {
			os.WriteFile(filepath.Join(d, "merges.txt"), []byte("#version: 0.2\ni n\nt h e\n"), 0o644)
		}, `merges.txt: line 3: "t h e"`},
		{"bad config", func(d string) { os.WriteFile(filepath.Join(d, "tokenizer_config.json"), []byte(`{`), 0o644) }, "tokenizer_config.json: not a JSON object"},
		{"bad pad", func(d string) {
			os.WriteFile(filepath.Join(d, "special_tokens_map.json"), []byte(`{"pad_token": 5}`), 0o644)
		}, "special_tokens_map.json: pad_token"},
	}
	for _, c := range cases {
		dir := copyDir(t)
		c.mutate(dir)
		if _, err := FromDir(dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
	// Without the config files, CLIP's defaults apply.
	dir := copyDir(t)
	os.Remove(filepath.Join(dir, "tokenizer_config.json"))
	os.Remove(filepath.Join(dir, "special_tokens_map.json"))
	tok, err := FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Pad() != tok.EOS() || tok.MaxLength() != 77 {
		t.Errorf("defaults: pad %d eos %d max %d", tok.Pad(), tok.EOS(), tok.MaxLength())
	}
	if _, err := FromBPE(strings.NewReader("not gzip"), "v.gz", DefaultConfig()); err == nil || !strings.Contains(err.Error(), "v.gz") {
		t.Errorf("FromBPE on junk: %v", err)
	}
}
