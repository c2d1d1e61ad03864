package tokenizer

import (
	"lorastudio/engine/internal/fixtures"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzEncode checks on any text: no panic, ids in range, the padded form is
// the unpadded one truncated and padded, and the embedded vocabulary agrees
// with the folder.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"a photo of a cat", "", "日本語のテキスト 中文", "ΟΔΟΣ İstanbul café", "wow!! <|endoftext|>x",
		"don't 'S 'LL", "c\u0345d", "\xff\xfe", "emoji 🚀🔥👍🏽", "numbers 3.14 50%", "<|STARTOFTEXT|>"} {
		f.Add(s)
	}
	root := fixtures.Root(f)
	dir, err := FromDir(filepath.Join(root, "model", "tokenizer_2"))
	if err != nil {
		f.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Pad = "!"
	emb, err := Embedded(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ids := dir.Encode(text)
		if len(ids) < 2 || ids[0] != dir.BOS() || ids[len(ids)-1] != dir.EOS() {
			t.Fatalf("Encode(%q) = %v", text, ids)
		}
		for _, id := range ids {
			if id < 0 || id >= dir.VocabSize() {
				t.Fatalf("Encode(%q): id %d out of range", text, id)
			}
		}
		if e := emb.Encode(text); !reflect.DeepEqual(e, ids) {
			t.Fatalf("Encode(%q): folder %v, embedded %v", text, ids, e)
		}
		const n = 77
		padded := dir.EncodePadded(text, n)
		if len(padded) != n {
			t.Fatalf("EncodePadded(%q) has %d ids", text, len(padded))
		}
		if len(ids) <= n {
			for i, id := range padded {
				if (i < len(ids) && id != ids[i]) || (i >= len(ids) && id != dir.Pad()) {
					t.Fatalf("EncodePadded(%q) = %v, Encode = %v", text, padded, ids)
				}
			}
		} else if !reflect.DeepEqual(padded[:n-1], ids[:n-1]) || padded[n-1] != dir.EOS() {
			t.Fatalf("EncodePadded(%q) = %v, Encode = %v", text, padded, ids)
		}
	})
}
