package studio

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testPNG encodes a small gradient image.
func testPNG(t *testing.T) ([]byte, *image.NRGBA) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 24, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 24; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 10), uint8(y * 15), uint8(x ^ y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), img
}

// chunkTypes lists the chunk types of PNG data in order.
func chunkTypes(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	for off := 8; off+8 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[off:]))
		out = append(out, string(data[off+4:off+8]))
		off += 12 + n
	}
	return out
}

func TestPNGTextRoundTrip(t *testing.T) {
	neg := "blurry, low quality"
	cases := []struct {
		name, text, chunk string
	}{
		{"ascii", "a photo of a cat\nNegative prompt: " + neg + "\nSteps: 25, Sampler: DPM++ 2M, CFG scale: 7, Seed: 42, Size: 64x64", "tEXt"},
		{"latin1", "café crème brûlée, ½ size, ÿ\nSteps: 8, Sampler: Euler, CFG scale: 7.5, Seed: 1, Size: 64x64", "tEXt"},
		{"cjk", "一只猫坐在窗台上 🐈\nSteps: 8, Sampler: Euler a, CFG scale: 5, Seed: 3, Size: 96x64", "iTXt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, img := testPNG(t)
			out, err := InsertPNGText("x.png", data, ParametersKey, c.text)
			if err != nil {
				t.Fatal(err)
			}
			types := chunkTypes(t, out)
			if types[0] != "IHDR" || types[1] != c.chunk || types[2] != "IDAT" || types[len(types)-1] != "IEND" {
				t.Fatalf("chunks %v, want IHDR %s IDAT ... IEND", types, c.chunk)
			}
			path := filepath.Join(t.TempDir(), c.name+".png")
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := ReadPNGText(path)
			if err != nil {
				t.Fatal(err)
			}
			if m[ParametersKey] != c.text || len(m) != 1 {
				t.Fatalf("read back %q, want %q", m, c.text)
			}
			// Still a valid PNG with the same pixels (the standard decoder checks CRCs too).
			got, err := png.Decode(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			for y := 0; y < 16; y++ {
				for x := 0; x < 24; x++ {
					if color.NRGBAModel.Convert(got.At(x, y)) != img.At(x, y) {
						t.Fatalf("pixel (%d,%d) changed", x, y)
					}
				}
			}
		})
	}
}

// handPNG builds a 2x1 grey PNG chunk by chunk, as another tool might write
// it, with the given extra chunks after IHDR.
func handPNG(extra ...[]byte) []byte {
	var b bytes.Buffer
	b.Write(pngSignature)
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 2)
	binary.BigEndian.PutUint32(ihdr[4:], 1)
	ihdr[8], ihdr[9] = 8, 0 // 8-bit greyscale
	b.Write(pngChunk("IHDR", ihdr))
	for _, e := range extra {
		b.Write(e)
	}
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write([]byte{0, 10, 200}) // filter none, two pixels
	w.Close()
	b.Write(pngChunk("IDAT", z.Bytes()))
	b.Write(pngChunk("IEND", nil))
	return b.Bytes()
}

func zlibBytes(s []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(s)
	w.Close()
	return z.Bytes()
}

func TestReadPNGTextOtherTool(t *testing.T) {
	params := "masterpiece, 1girl\nNegative prompt: lowres\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.10.1"
	// tEXt is Latin-1 bytes: 0xe9 is é.
	text := pngChunk("tEXt", append([]byte("parameters\x00"), []byte(params)...))
	comment := pngChunk("tEXt", []byte("Comment\x00caf\xe9"))
	ztxt := pngChunk("zTXt", append([]byte("Software\x00\x00"), zlibBytes([]byte("GIMP 2.10"))...))
	itxtZ := pngChunk("iTXt", append([]byte("Title\x00\x01\x00ja\x00\xe3\x82\xbf\x00"), zlibBytes([]byte("猫の写真"))...))
	data := handPNG(text, comment, ztxt, itxtZ)
	path := filepath.Join(t.TempDir(), "other.png")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		t.Fatalf("the hand-built PNG is not valid: %v", err)
	}
	m, err := ReadPNGText(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"parameters": params, "Comment": "café", "Software": "GIMP 2.10", "Title": "猫の写真"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	p, err := ParseA1111(m["parameters"])
	if err != nil {
		t.Fatal(err)
	}
	if p.Prompt != "masterpiece, 1girl" || p.Negative == nil || *p.Negative != "lowres" || p.Steps != 20 ||
		p.SamplerID != "dpmpp_2m_karras" || p.CFG != 7 || p.Seed != 1234 || p.Width != 512 || p.Height != 768 ||
		p.ModelHash != "31e35c80fc" || p.Model != "sd_xl_base_1.0" || p.Version != "v1.10.1" {
		t.Fatalf("parsed %+v", p)
	}
}

func TestReadPNGTextCorrupt(t *testing.T) {
	data := handPNG(pngChunk("tEXt", []byte("parameters\x00a cat")))
	dir := t.TempDir()
	// Flip one byte of the tEXt data: its CRC no longer matches.
	bad := bytes.Clone(data)
	i := bytes.Index(bad, []byte("a cat"))
	bad[i] = 'A'
	path := filepath.Join(dir, "corrupt.png")
	os.WriteFile(path, bad, 0o644)
	_, err := ReadPNGText(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "CRC") || !strings.Contains(err.Error(), "tEXt") {
		t.Fatalf("corrupt CRC: %v, want an error naming the file, the chunk and the CRC", err)
	}
	trunc := filepath.Join(dir, "trunc.png")
	os.WriteFile(trunc, data[:len(data)-20], 0o644)
	if _, err := ReadPNGText(trunc); err == nil || !strings.Contains(err.Error(), trunc) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated: %v", err)
	}
	notpng := filepath.Join(dir, "x.png")
	os.WriteFile(notpng, []byte("GIF89a"), 0o644)
	if _, err := ReadPNGText(notpng); err == nil || !strings.Contains(err.Error(), notpng) {
		t.Fatalf("not a PNG: %v", err)
	}
	if _, err := InsertPNGText("y.png", []byte("nope"), ParametersKey, "x"); err == nil || !strings.Contains(err.Error(), "y.png") {
		t.Fatalf("insert into non-PNG: %v", err)
	}
}

func TestA1111RoundTrip(t *testing.T) {
	empty := ""
	neg := "blurry, low quality"
	for _, p := range []Params{
		{Prompt: "enterprise microservices architecture diagram", Negative: &neg, Steps: 8, SamplerID: "dpmpp_2m", CFG: 7, Seed: 42,
			Width: 64, Height: 64, ModelHash: "0123456789", Model: "model", Version: "lorastudio 0.1.0"},
		{Prompt: "line one\nline two: with a colon", Steps: 25, SamplerID: "euler_a", CFG: 7.5, Seed: 18446744073709551615,
			Width: 1024, Height: 768, ModelHash: "abcdef0123", Model: "my, model",
			LoraHashes: []LoraHash{{"style", "aabbccddeeff"}, {"cat_v2", "001122334455"}}, Version: "lorastudio 0.1.0"},
		{Prompt: "猫", Negative: &empty, Steps: 1, SamplerID: "dpmpp_2m_karras", CFG: 1, Seed: 0, Width: 8, Height: 8},
		{Prompt: "", Steps: 5, SamplerID: "euler", CFG: 0, Seed: 3, Width: 64, Height: 96},
	} {
		text := p.String()
		got, err := ParseA1111(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if got.Prompt != p.Prompt || (got.Negative == nil) != (p.Negative == nil) || (p.Negative != nil && *got.Negative != *p.Negative) ||
			got.Steps != p.Steps || got.SamplerID != p.SamplerID || got.Sampler != A1111Sampler[p.SamplerID] || got.CFG != p.CFG ||
			got.Seed != p.Seed || got.Width != p.Width || got.Height != p.Height || got.ModelHash != p.ModelHash ||
			got.Model != p.Model || got.Version != p.Version || len(got.LoraHashes) != len(p.LoraHashes) {
			t.Fatalf("round trip of\n%s\ngave %+v", text, got)
		}
		for i := range p.LoraHashes {
			if got.LoraHashes[i] != p.LoraHashes[i] {
				t.Fatalf("lora %d: %+v", i, got.LoraHashes[i])
			}
		}
	}
	want := "a cat\nNegative prompt: blurry, low quality\nSteps: 25, Sampler: DPM++ 2M, CFG scale: 7, Seed: 42, Size: 1024x1024, Model hash: 0123456789, Model: base, Lora hashes: \"style: aabbccddeeff\", Version: lorastudio 0.1.0"
	got := Params{Prompt: "a cat", Negative: &neg, Steps: 25, SamplerID: "dpmpp_2m", CFG: 7, Seed: 42, Width: 1024, Height: 1024,
		ModelHash: "0123456789", Model: "base", LoraHashes: []LoraHash{{"style", "aabbccddeeff"}}, Version: "lorastudio 0.1.0"}.String()
	if got != want {
		t.Fatalf("infotext\n%s\nwant\n%s", got, want)
	}
	if _, err := ParseA1111("just a prompt"); err == nil {
		t.Fatal("text without fields parsed")
	}
	if _, err := ParseA1111("p\nSteps: many, Sampler: Euler, CFG scale: 7"); err == nil || !strings.Contains(err.Error(), "Steps") {
		t.Fatalf("bad steps: %v", err)
	}
}
