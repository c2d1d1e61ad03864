package studio

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tomlKV is one key = value line of a TOML table, with an optional comment
// line above it. Value is a string, bool, int, int64, float64 or []string.
type tomlKV struct {
	Key     string
	Value   any
	Comment string
}

// tomlTable is a table of a TOML document: Header is "" for the root keys,
// "[name]" for a table and "[[name]]" for an element of an array of tables.
type tomlTable struct {
	Header  string
	Comment string
	Keys    []tomlKV
}

// encodeTOML writes tables as a TOML document. The encoder is small on
// purpose: sd-scripts' files need only bare keys, strings, integers, floats,
// booleans and arrays of strings.
func encodeTOML(header string, tables []tomlTable) (string, error) {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		b.WriteString("# " + line + "\n")
	}
	for _, t := range tables {
		b.WriteString("\n")
		if t.Comment != "" {
			writeTOMLComment(&b, t.Comment)
		}
		if t.Header != "" {
			b.WriteString(t.Header + "\n")
		}
		for _, kv := range t.Keys {
			if !bareKey(kv.Key) {
				return "", fmt.Errorf("toml: key %q is not a bare key", kv.Key)
			}
			v, err := tomlValue(kv.Value)
			if err != nil {
				return "", fmt.Errorf("toml: %s: %w", kv.Key, err)
			}
			if kv.Comment != "" {
				writeTOMLComment(&b, kv.Comment)
			}
			b.WriteString(kv.Key + " = " + v + "\n")
		}
	}
	return b.String(), nil
}

// writeTOMLComment writes text as comment lines (one per line of text).
func writeTOMLComment(b *strings.Builder, text string) {
	for _, line := range strings.Split(text, "\n") {
		b.WriteString("# " + line + "\n")
	}
}

// bareKey reports whether k needs no quotes: A-Z a-z 0-9 _ - only.
func bareKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// tomlValue formats one value.
func tomlValue(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return tomlString(x)
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return tomlFloat(x)
	case []string:
		parts := make([]string, len(x))
		for i, s := range x {
			q, err := tomlString(s)
			if err != nil {
				return "", err
			}
			parts[i] = q
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	}
	return "", fmt.Errorf("unsupported value type %T", v)
}

// tomlFloat formats x so TOML reads it as a float (a "." or an exponent
// always present), in the shortest form that reads back as x.
func tomlFloat(x float64) (string, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "", fmt.Errorf("%v is not a number sd-scripts can read", x)
	}
	s := strconv.FormatFloat(x, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s, nil
}

// tomlString quotes s as a TOML basic string: ", \ and the control
// characters escaped (TOML 1.0 §String), everything else as UTF-8.
func tomlString(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%q is not valid UTF-8", s)
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}
