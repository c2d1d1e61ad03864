package studio

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// pngSignature starts every PNG file.
var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// ParametersKey is the PNG text keyword A1111, ComfyUI and image sites read
// the generation parameters from.
const ParametersKey = "parameters"

// maxTextChunk bounds a text chunk's decompressed size (a zTXt/iTXt bomb).
const maxTextChunk = 64 << 20

// isLatin1 reports whether s is valid UTF-8 whose every rune fits in Latin-1
// (ISO 8859-1), so it can be stored in a tEXt chunk.
func isLatin1(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r > 0xff {
			return false
		}
	}
	return true
}

// latin1Bytes encodes a Latin-1-only string (see isLatin1) one byte a rune.
func latin1Bytes(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// latin1String decodes Latin-1 bytes into a Go (UTF-8) string.
func latin1String(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// pngChunk encodes one chunk: length, type, data, CRC over type and data.
func pngChunk(typ string, data []byte) []byte {
	out := make([]byte, 0, 12+len(data))
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	return binary.BigEndian.AppendUint32(out, crc.Sum32())
}

// textChunk builds the chunk PIL would write for key=value: tEXt when the
// value is Latin-1, else an uncompressed UTF-8 iTXt with empty language tag
// and translated keyword.
func textChunk(key, value string) ([]byte, error) {
	if len(key) == 0 || len(key) > 79 || !isLatin1(key) || strings.ContainsRune(key, 0) {
		return nil, fmt.Errorf("png text keyword %q: want 1-79 Latin-1 characters without NUL", key)
	}
	if !utf8.ValidString(value) {
		return nil, fmt.Errorf("png text %q: the value is not valid UTF-8", key)
	}
	k := latin1Bytes(key)
	if isLatin1(value) {
		data := append(append(k, 0), latin1Bytes(value)...)
		return pngChunk("tEXt", data), nil
	}
	// keyword NUL, compression flag 0, method 0, language "" NUL, translated "" NUL, text
	data := append(k, 0, 0, 0, 0, 0)
	data = append(data, value...)
	return pngChunk("iTXt", data), nil
}

// InsertPNGText returns the PNG file data with a text chunk key=value
// inserted before its first IDAT chunk (tEXt for Latin-1 text, iTXt UTF-8
// otherwise, as PIL and A1111 write them). name labels errors.
func InsertPNGText(name string, data []byte, key, value string) ([]byte, error) {
	chunk, err := textChunk(key, value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !bytes.HasPrefix(data, pngSignature) {
		return nil, fmt.Errorf("%s: not a PNG file (bad signature)", name)
	}
	off := len(pngSignature)
	for off+8 <= len(data) {
		n := int(binary.BigEndian.Uint32(data[off:]))
		typ := string(data[off+4 : off+8])
		if typ == "IDAT" {
			out := make([]byte, 0, len(data)+len(chunk))
			out = append(out, data[:off]...)
			out = append(out, chunk...)
			return append(out, data[off:]...), nil
		}
		if n < 0 || off+12+n > len(data) {
			break
		}
		off += 12 + n
	}
	return nil, fmt.Errorf("%s: PNG has no IDAT chunk (truncated?)", name)
}

// ReadPNGText reads every tEXt, zTXt and iTXt chunk of the PNG file at path
// into keyword → text (UTF-8). Every chunk's CRC is checked: a corrupt or
// truncated file is an error naming the file and the chunk.
func ReadPNGText(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := ParsePNGText(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParsePNGText is ReadPNGText on PNG file data in memory.
func ParsePNGText(data []byte) (map[string]string, error) {
	if !bytes.HasPrefix(data, pngSignature) {
		return nil, errors.New("not a PNG file (bad signature)")
	}
	out := map[string]string{}
	off := len(pngSignature)
	for i := 0; ; i++ {
		if off == len(data) {
			return nil, errors.New("PNG ends without an IEND chunk (truncated)")
		}
		if off+12 > len(data) {
			return nil, fmt.Errorf("PNG chunk %d at byte %d is truncated", i, off)
		}
		n := int64(binary.BigEndian.Uint32(data[off:]))
		typ := string(data[off+4 : off+8])
		if n > int64(len(data)-off-12) {
			return nil, fmt.Errorf("PNG chunk %d (%q) at byte %d is truncated: length %d, %d bytes left", i, typ, off, n, len(data)-off-12)
		}
		body := data[off+8 : off+8+int(n)]
		want := binary.BigEndian.Uint32(data[off+8+int(n):])
		crc := crc32.NewIEEE()
		crc.Write(data[off+4 : off+8])
		crc.Write(body)
		if got := crc.Sum32(); got != want {
			return nil, fmt.Errorf("PNG chunk %d (%q) at byte %d has a bad CRC (stored %08x, computed %08x): the file is corrupt", i, typ, off, want, got)
		}
		off += 12 + int(n)
		switch typ {
		case "IEND":
			return out, nil
		case "tEXt", "zTXt", "iTXt":
			k, v, err := decodeTextChunk(typ, body)
			if err != nil {
				return nil, fmt.Errorf("PNG %s chunk %d: %w", typ, i, err)
			}
			if _, dup := out[k]; !dup { // the first chunk of a keyword wins, as in PIL
				out[k] = v
			}
		}
	}
}

// decodeTextChunk decodes the body of a tEXt, zTXt or iTXt chunk.
func decodeTextChunk(typ string, body []byte) (key, value string, err error) {
	kb, rest, ok := bytes.Cut(body, []byte{0})
	if !ok || len(kb) == 0 || len(kb) > 79 {
		return "", "", errors.New("bad keyword")
	}
	key = latin1String(kb)
	switch typ {
	case "tEXt":
		return key, latin1String(rest), nil
	case "zTXt":
		if len(rest) < 1 || rest[0] != 0 {
			return "", "", fmt.Errorf("keyword %q: unknown compression method", key)
		}
		t, err := inflate(rest[1:])
		if err != nil {
			return "", "", fmt.Errorf("keyword %q: %w", key, err)
		}
		return key, latin1String(t), nil
	}
	// iTXt: flag, method, language NUL, translated keyword NUL, text
	if len(rest) < 2 {
		return "", "", fmt.Errorf("keyword %q: truncated iTXt header", key)
	}
	flag, method := rest[0], rest[1]
	rest = rest[2:]
	_, rest, ok1 := bytes.Cut(rest, []byte{0})
	_, rest, ok2 := bytes.Cut(rest, []byte{0})
	if !ok1 || !ok2 {
		return "", "", fmt.Errorf("keyword %q: truncated iTXt header", key)
	}
	text := rest
	switch {
	case flag == 1 && method == 0:
		if text, err = inflate(rest); err != nil {
			return "", "", fmt.Errorf("keyword %q: %w", key, err)
		}
	case flag != 0:
		return "", "", fmt.Errorf("keyword %q: unknown compression flag %d method %d", key, flag, method)
	}
	if !utf8.Valid(text) {
		return "", "", fmt.Errorf("keyword %q: iTXt text is not valid UTF-8", key)
	}
	return key, string(text), nil
}

// inflate decompresses zlib data, refusing more than maxTextChunk bytes.
func inflate(b []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("compressed text: %w", err)
	}
	defer r.Close()
	t, err := io.ReadAll(io.LimitReader(r, maxTextChunk+1))
	if err != nil {
		return nil, fmt.Errorf("compressed text: %w", err)
	}
	if len(t) > maxTextChunk {
		return nil, fmt.Errorf("compressed text larger than %d bytes", maxTextChunk)
	}
	return t, nil
}

// A1111Sampler maps our sampler names to the names A1111 writes.
var A1111Sampler = map[string]string{
	"dpmpp_2m":        "DPM++ 2M",
	"dpmpp_2m_karras": "DPM++ 2M Karras",
	"euler":           "Euler",
	"euler_a":         "Euler a",
}

// LoraHash is one LoRA named in an A1111 "Lora hashes" field.
type LoraHash struct {
	Name string
	Hash string
}

// Params are generation parameters in A1111's infotext ("parameters" chunk).
type Params struct {
	Prompt     string
	Negative   *string // nil when the text has no "Negative prompt:" line
	Steps      int
	Sampler    string // as written, e.g. "DPM++ 2M Karras"
	SamplerID  string // ours (dpmpp_2m, ...), "" when the sampler is not one we run
	CFG        float64
	Seed       uint64
	Width      int
	Height     int
	ModelHash  string
	Model      string
	LoraHashes []LoraHash
	Version    string
	Extra      map[string]string // every other "Key: value" field, unquoted
}

// a1111Quote quotes a field value the way A1111 does: as a JSON string when
// it holds a comma, colon or newline (non-ASCII kept as is).
func a1111Quote(s string) string {
	if !strings.ContainsAny(s, ",:\n") {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// fmtFloat writes a number as Python's str() does for A1111's CFG (7 → "7",
// 7.5 → "7.5").
func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// String writes p as A1111 infotext: prompt, the negative line (omitted when
// Negative is nil) and the comma-separated fields.
func (p Params) String() string {
	var b strings.Builder
	b.WriteString(p.Prompt)
	if p.Negative != nil {
		b.WriteString("\nNegative prompt: ")
		b.WriteString(*p.Negative)
	}
	sampler := p.Sampler
	if sampler == "" {
		sampler = A1111Sampler[p.SamplerID]
	}
	fields := []string{
		"Steps: " + strconv.Itoa(p.Steps),
		"Sampler: " + a1111Quote(sampler),
		"CFG scale: " + fmtFloat(p.CFG),
		"Seed: " + strconv.FormatUint(p.Seed, 10),
		fmt.Sprintf("Size: %dx%d", p.Width, p.Height),
	}
	if p.ModelHash != "" {
		fields = append(fields, "Model hash: "+a1111Quote(p.ModelHash))
	}
	if p.Model != "" {
		fields = append(fields, "Model: "+a1111Quote(p.Model))
	}
	if len(p.LoraHashes) > 0 {
		parts := make([]string, len(p.LoraHashes))
		for i, l := range p.LoraHashes {
			parts[i] = l.Name + ": " + l.Hash
		}
		fields = append(fields, "Lora hashes: "+a1111Quote(strings.Join(parts, ", ")))
	}
	if p.Version != "" {
		fields = append(fields, "Version: "+a1111Quote(p.Version))
	}
	b.WriteString("\n")
	b.WriteString(strings.Join(fields, ", "))
	return b.String()
}

// reA1111Param is A1111's field pattern: `Key: value` or `Key: "quoted"`.
var reA1111Param = regexp.MustCompile(`\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`)

// ParseA1111 reads A1111 infotext (the "parameters" chunk) as A1111's own
// parser does: the last line holds the fields when it has at least three;
// lines before "Negative prompt:" are the prompt, the rest the negative.
func ParseA1111(text string) (Params, error) {
	text = strings.ReplaceAll(strings.TrimSpace(text), "\r\n", "\n")
	lines := strings.Split(text, "\n")
	last := lines[len(lines)-1]
	matches := reA1111Param.FindAllStringSubmatch(last, -1)
	if len(matches) < 3 {
		return Params{}, fmt.Errorf("A1111 parameters: the last line has %d \"Key: value\" fields, want at least 3: %q", len(matches), last)
	}
	lines = lines[:len(lines)-1]
	var p Params
	var prompt, negative []string
	inNeg := false
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "Negative prompt:"); ok && !inNeg {
			inNeg = true
			negative = append(negative, strings.TrimSpace(rest))
			continue
		}
		if inNeg {
			negative = append(negative, l)
		} else {
			prompt = append(prompt, l)
		}
	}
	p.Prompt = strings.Join(prompt, "\n")
	if inNeg {
		n := strings.Join(negative, "\n")
		p.Negative = &n
	}
	p.Extra = map[string]string{}
	var schedule string
	for _, m := range matches {
		k, v := strings.TrimSpace(m[1]), strings.TrimSpace(m[2])
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			var s string
			if err := json.Unmarshal([]byte(v), &s); err == nil {
				v = s
			}
		}
		var err error
		switch k {
		case "Steps":
			p.Steps, err = strconv.Atoi(v)
		case "Sampler":
			p.Sampler = v
		case "Schedule type":
			schedule = v
		case "CFG scale":
			p.CFG, err = strconv.ParseFloat(v, 64)
		case "Seed":
			if p.Seed, err = strconv.ParseUint(v, 10, 64); err != nil {
				var s int64 // A1111 writes -1 for "random" in some exports
				if s, err = strconv.ParseInt(v, 10, 64); err == nil {
					p.Seed = uint64(s)
				}
			}
		case "Size":
			w, h, ok := strings.Cut(v, "x")
			if !ok {
				err = errors.New("want WIDTHxHEIGHT")
				break
			}
			if p.Width, err = strconv.Atoi(w); err == nil {
				p.Height, err = strconv.Atoi(h)
			}
		case "Model hash":
			p.ModelHash = v
		case "Model":
			p.Model = v
		case "Lora hashes":
			for _, part := range strings.Split(v, ",") {
				name, hash, ok := strings.Cut(part, ":")
				if !ok {
					continue
				}
				p.LoraHashes = append(p.LoraHashes, LoraHash{Name: strings.TrimSpace(name), Hash: strings.TrimSpace(hash)})
			}
		case "Version":
			p.Version = v
		default:
			p.Extra[k] = v
		}
		if err != nil {
			return Params{}, fmt.Errorf("A1111 parameters: field %q value %q: %v", k, v, err)
		}
	}
	if schedule != "" {
		p.Extra["Schedule type"] = schedule
	}
	p.SamplerID = samplerID(p.Sampler, schedule)
	return p, nil
}

// samplerID maps an A1111 sampler (and the newer separate schedule type) to
// our sampler name, "" when we do not run it.
func samplerID(sampler, schedule string) string {
	if strings.EqualFold(schedule, "Karras") && !strings.HasSuffix(sampler, " Karras") {
		sampler += " Karras"
	}
	for id, name := range A1111Sampler {
		if name == sampler {
			return id
		}
	}
	return ""
}
