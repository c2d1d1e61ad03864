package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"lorastudio/assets/clipvocab"
)

// Embedded returns a tokenizer over CLIP's vocabulary embedded in the binary,
// with the special tokens of cfg (DefaultConfig() for SDXL's first tokenizer;
// Pad "!" for its second).
func Embedded(cfg Config) (*Tokenizer, error) {
	return FromBPE(bytes.NewReader(clipvocab.BPEGz), "bpe_simple_vocab_16e6.txt.gz", cfg)
}

// FromBPE reads a CLIP vocabulary file in OpenAI's form (gzip, a header line
// then one merge a line) and builds the vocabulary as CLIP does: the 256 byte
// characters, the same with "</w>", one entry per merge, then
// <|startoftext|> and <|endoftext|>. name is used in errors.
func FromBPE(r io.Reader, name string, cfg Config) (*Tokenizer, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, errorf(name, "not a gzip file: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, errorf(name, "reading: %v", err)
	}
	lines := strings.Split(string(raw), "\n")
	if len(lines) < numMerges+1 {
		return nil, errorf(name, "%d lines, want a header and at least %d merges", len(lines), numMerges)
	}
	merges, err := parseMerges(lines[1:numMerges+1], name, 2)
	if err != nil {
		return nil, err
	}
	order := byteOrder()
	table := bytesToUnicode()
	encoder := make(map[string]int, 2*256+len(merges)+2)
	// As CLIP's dict(zip(vocab, range(len(vocab)))): a repeated entry takes
	// its last index.
	index := 0
	add := func(tok string) {
		encoder[tok] = index
		index++
	}
	for _, b := range order {
		add(string(table[b]))
	}
	for _, b := range order {
		add(string(table[b]) + "</w>")
	}
	for _, m := range merges {
		add(m.a + m.b)
	}
	add("<|startoftext|>")
	add("<|endoftext|>")
	return build(encoder, merges, cfg, nil)
}

// parseMerges parses "a b" lines; firstLine is the line number of lines[0]
// in the file, for errors.
func parseMerges(lines []string, name string, firstLine int) ([]pair, error) {
	merges := make([]pair, 0, len(lines))
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, errorf(name, "line %d: %q is not a merge of two symbols", firstLine+i, l)
		}
		merges = append(merges, pair{f[0], f[1]})
	}
	return merges, nil
}

// FromDir reads a transformers tokenizer folder (a model's tokenizer/ or
// tokenizer_2/): vocab.json, merges.txt, and the special tokens from
// tokenizer_config.json and special_tokens_map.json (the latter wins), with
// CLIP's defaults for whatever they leave out.
func FromDir(dir string) (*Tokenizer, error) {
	vocabPath := filepath.Join(dir, "vocab.json")
	raw, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, errorf(dir, "%v", err)
	}
	var encoder map[string]int
	if err := json.Unmarshal(raw, &encoder); err != nil {
		return nil, errorf(vocabPath, "not a JSON object of token ids: %v", err)
	}
	if len(encoder) == 0 {
		return nil, errorf(vocabPath, "empty vocabulary")
	}
	mergesPath := filepath.Join(dir, "merges.txt")
	raw, err = os.ReadFile(mergesPath)
	if err != nil {
		return nil, errorf(dir, "%v", err)
	}
	// As transformers: strip the file, skip the "#version" header line, and
	// read at most CLIP's number of merges.
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) > 0 {
		lines = lines[1:]
	}
	if len(lines) > numMerges {
		lines = lines[:numMerges]
	}
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	merges, err := parseMerges(lines, mergesPath, 2)
	if err != nil {
		return nil, err
	}
	cfg := Config{}
	extra := map[string]int{}
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		if err := readSpecials(filepath.Join(dir, name), &cfg, extra); err != nil {
			return nil, err
		}
	}
	return build(encoder, merges, cfg, extra)
}

// readSpecials reads the special tokens (strings or {"content": ...} objects),
// model_max_length and added_tokens_decoder of one config file, if present.
func readSpecials(path string, cfg *Config, extra map[string]int) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errorf(path, "%v", err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return errorf(path, "not a JSON object: %v", err)
	}
	for key, dst := range map[string]*string{"bos_token": &cfg.BOS, "eos_token": &cfg.EOS, "pad_token": &cfg.Pad, "unk_token": &cfg.Unk} {
		v, ok := doc[key]
		if !ok || string(v) == "null" {
			continue
		}
		tok, err := tokenContent(v)
		if err != nil {
			return errorf(path, "%s: %v", key, err)
		}
		*dst = tok
	}
	if v, ok := doc["model_max_length"]; ok {
		var n float64
		if err := json.Unmarshal(v, &n); err != nil {
			return errorf(path, "model_max_length %s is not a number", v)
		}
		// transformers writes a huge sentinel when there is no limit.
		if n >= 1 && n <= 1<<20 {
			cfg.MaxLength = int(n)
		}
	}
	if v, ok := doc["added_tokens_decoder"]; ok {
		var dec map[string]json.RawMessage
		if err := json.Unmarshal(v, &dec); err != nil {
			return errorf(path, "added_tokens_decoder is not an object")
		}
		for idStr, entry := range dec {
			id, err := strconv.Atoi(idStr)
			if err != nil || id < 0 {
				return errorf(path, "added_tokens_decoder id %q is not a non-negative integer", idStr)
			}
			tok, err := tokenContent(entry)
			if err != nil {
				return errorf(path, "added_tokens_decoder %s: %v", idStr, err)
			}
			extra[tok] = id
		}
	}
	return nil
}

// tokenContent reads a token given as a string or an AddedToken object.
func tokenContent(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		if s == "" {
			return "", errors.New("empty token")
		}
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(v, &obj); err != nil || obj.Content == nil || *obj.Content == "" {
		return "", errors.New("neither a string nor an object with content")
	}
	return *obj.Content, nil
}
