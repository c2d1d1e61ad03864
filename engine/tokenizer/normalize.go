package tokenizer

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// basicWords is the pre-tokenizer transformers' slow CLIPTokenizer uses when
// ftfy is not installed (BasicTokenizer with strip_accents=False and no
// punctuation split): control characters and U+FFFD dropped, whitespace
// normalised, a space either side of every CJK ideograph, NFC, split on
// whitespace, each word lower-cased the way Python's str.lower does.
func basicWords(text string) []string {
	var b strings.Builder
	b.Grow(len(text) + 8)
	for _, r := range text { // invalid UTF-8 decodes to U+FFFD and is dropped
		switch {
		case r == 0 || r == 0xfffd:
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r):
			b.WriteByte(' ')
		case isControl(r):
		case isCJK(r):
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	words := strings.FieldsFunc(norm.NFC.String(b.String()), unicode.IsSpace)
	for i, w := range words {
		words[i] = pyLower(w)
	}
	return words
}

// isControl reports Python's unicodedata category "C*": Cc, Cf, Co, Cs and
// unassigned code points (Cn).
func isControl(r rune) bool {
	if unicode.Is(unicode.C, r) {
		return true
	}
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

// isCJK reports whether r lies in the CJK ideograph blocks BasicTokenizer
// splits off as words of their own (not Hangul, Hiragana or Katakana).
func isCJK(r rune) bool {
	return (r >= 0x4e00 && r <= 0x9fff) ||
		(r >= 0x3400 && r <= 0x4dbf) ||
		(r >= 0x20000 && r <= 0x2a6df) ||
		(r >= 0x2a700 && r <= 0x2b73f) ||
		(r >= 0x2b740 && r <= 0x2b81f) ||
		(r >= 0x2b820 && r <= 0x2ceaf) ||
		(r >= 0xf900 && r <= 0xfaff) ||
		(r >= 0x2f800 && r <= 0x2fa1f)
}

// pyLower lower-cases s as Python's str.lower does: the simple mappings, plus
// the full mapping of U+0130 (İ → i̇) and the final-sigma rule (Σ → ς at the
// end of a word).
func pyLower(s string) string {
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range rs {
		switch {
		case r == 0x130:
			b.WriteString("i\u0307")
		case r == 0x3a3:
			if finalSigma(rs, i) {
				b.WriteRune(0x3c2)
			} else {
				b.WriteRune(0x3c3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma is Unicode's Final_Sigma condition as CPython applies it: a cased
// letter before (skipping case-ignorable characters) and none after.
func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && caseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !cased(rs[j]) {
		return false
	}
	j = i + 1
	for j < len(rs) && caseIgnorable(rs[j]) {
		j++
	}
	return j == len(rs) || !cased(rs[j])
}

func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xb7, 0x387, 0x55f, 0x5f4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// splitWord applies CLIP's pattern to one whitespace-free word:
//
//	<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// (case-insensitive), taking alternatives in order at each position as the
// regex engine does.
func splitWord(w string, specials []string) []string {
	var out []string
	rs := []rune(w)
	for i := 0; i < len(rs); {
		rest := string(rs[i:])
		if n := specialPrefix(rest, specials); n > 0 {
			out = append(out, rest[:n])
			i += len([]rune(rest[:n]))
			continue
		}
		if n := contraction(rs[i:]); n > 0 {
			out = append(out, string(rs[i:i+n]))
			i += n
			continue
		}
		j := i
		switch r := rs[i]; {
		case unicode.IsLetter(r):
			for j < len(rs) && unicode.IsLetter(rs[j]) {
				j++
			}
		case unicode.IsNumber(r):
			j++
		default:
			for j < len(rs) && otherChar(rs[j]) {
				j++
			}
			if j == i {
				// No alternative matches here (whitespace, or U+0345 — see
				// otherChar): the regex search skips the character.
				i++
				continue
			}
		}
		out = append(out, string(rs[i:j]))
		i = j
	}
	return out
}

// otherChar reports whether r matches [^\s\p{L}\p{N}] as the pattern is
// compiled (IGNORECASE): the regex engine rejects a character from a negated
// class when any case variant of it is in the class, which matters for
// U+0345 (a combining mark whose case variants are Greek iota). Such a
// character matches no alternative at all and is dropped.
func otherChar(r rune) bool {
	if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsSpace(r) {
		return false
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if unicode.IsLetter(f) || unicode.IsNumber(f) {
			return false
		}
	}
	return true
}

// specialPrefix returns the length of the special-token literal s starts with
// (ASCII case-insensitive), or 0.
func specialPrefix(s string, specials []string) int {
	for _, sp := range specials {
		if len(s) >= len(sp) && strings.EqualFold(s[:len(sp)], sp) {
			return len(sp)
		}
	}
	return 0
}

// contraction returns 2 or 3 when rs starts with 's 't 'm 'd 're 've 'll
// (case-insensitive, as the pattern is compiled with IGNORECASE), else 0.
func contraction(rs []rune) int {
	if len(rs) < 2 || rs[0] != '\'' {
		return 0
	}
	c := foldASCII(rs[1])
	switch c {
	case 's', 't', 'm', 'd':
		return 2
	}
	if len(rs) >= 3 {
		pair := string([]rune{c, foldASCII(rs[2])})
		if pair == "re" || pair == "ve" || pair == "ll" {
			return 3
		}
	}
	return 0
}

// foldASCII maps r to the ASCII letter it case-folds to, if any (so 'S' and
// 'ſ' both match 's', 'K' (Kelvin) matches 'k'); other runes are returned as is.
func foldASCII(r rune) rune {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f >= 'a' && f <= 'z' {
			return f
		}
	}
	if r >= 'A' && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}
