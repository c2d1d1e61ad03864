package studio

import (
	"bytes"
	"image"
	"image/png"
	"strings"
	"testing"
)

// pngWithText encodes a small PNG with one text chunk, as A1111 and ComfyUI save theirs.
func pngWithText(t *testing.T, key, value string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewNRGBA(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	data, err := InsertPNGText("test.png", buf.Bytes(), key, value)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// a1111Infotext is what A1111 1.9 writes (separate Schedule type, Civitai-style fields).
const a1111Infotext = `masterpiece, a corgi wearing a hat <lora:hats:0.8>
Negative prompt: lowres, blurry
Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592, Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: "hats: 0123456789ab", Clip skip: 2, Version: v1.9.4`

// comfyGraph is ComfyUI's default SDXL workflow in API form, with a LoRA.
const comfyGraph = `{
 "3": {"class_type": "KSampler", "inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler_ancestral", "scheduler": "normal", "denoise": 1,
       "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
 "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1152, "height": 896, "batch_size": 1}},
 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "beautiful scenery nature glass bottle landscape", "clip": ["10", 1]}},
 "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["10", 1]}},
 "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
 "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
 "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "bottles.safetensors", "strength_model": 0.7, "strength_clip": 0.7, "model": ["4", 0], "clip": ["4", 1]}}
}`

func TestImportPNGParamsA1111(t *testing.T) {
	ip, err := ImportPNGParams("a.png", pngWithText(t, ParametersKey, a1111Infotext))
	if err != nil {
		t.Fatal(err)
	}
	if ip.Source != "A1111" || ip.Prompt == nil || *ip.Prompt != "masterpiece, a corgi wearing a hat <lora:hats:0.8>" ||
		ip.Negative == nil || *ip.Negative != "lowres, blurry" || ip.Steps != 30 || ip.CFG != 6.5 ||
		ip.Sampler != "dpmpp_2m_karras" || ip.Seed == nil || *ip.Seed != 3141592 || ip.Width != 832 || ip.Height != 1216 {
		t.Fatalf("imported %+v", ip)
	}
	un := strings.Join(ip.Unmapped, "\n")
	for _, want := range []string{"sd_xl_base_1.0", "hats", "Clip skip: 2"} {
		if !strings.Contains(un, want) {
			t.Errorf("unmapped lacks %q:\n%s", want, un)
		}
	}
}

func TestImportPNGParamsComfyUI(t *testing.T) {
	ip, err := ImportPNGParams("c.png", pngWithText(t, ComfyPromptKey, comfyGraph))
	if err != nil {
		t.Fatal(err)
	}
	if ip.Source != "ComfyUI" || ip.Prompt == nil || *ip.Prompt != "beautiful scenery nature glass bottle landscape" ||
		ip.Negative == nil || *ip.Negative != "text, watermark" || ip.Steps != 20 || ip.CFG != 8 || ip.Sampler != "euler_a" ||
		ip.Seed == nil || *ip.Seed != 156680208700286 || ip.Width != 1152 || ip.Height != 896 {
		t.Fatalf("imported %+v", ip)
	}
	un := strings.Join(ip.Unmapped, "\n")
	for _, want := range []string{"sd_xl_base_1.0.safetensors", "bottles.safetensors at 0.7"} {
		if !strings.Contains(un, want) {
			t.Errorf("unmapped lacks %q:\n%s", want, un)
		}
	}
	// A sampler we do not run is reported, not guessed.
	other := strings.Replace(comfyGraph, `"euler_ancestral", "scheduler": "normal"`, `"uni_pc", "scheduler": "sgm_uniform"`, 1)
	ip, err = ImportPNGParams("c.png", pngWithText(t, ComfyPromptKey, other))
	if err != nil || ip.Sampler != "" || !strings.Contains(strings.Join(ip.Unmapped, "\n"), "uni_pc") {
		t.Errorf("uni_pc: %+v, %v", ip, err)
	}
}

func TestImportPNGParamsErrors(t *testing.T) {
	var plain bytes.Buffer
	png.Encode(&plain, image.NewGray(image.Rect(0, 0, 2, 2)))
	for name, data := range map[string][]byte{
		"no text":      plain.Bytes(),
		"other text":   pngWithText(t, "Comment", "hello"),
		"no sampler":   pngWithText(t, ComfyPromptKey, `{"1": {"class_type": "SaveImage", "inputs": {}}}`),
		"broken graph": pngWithText(t, ComfyPromptKey, `{not json`),
		"not a png":    []byte("GIF89a"),
	} {
		if _, err := ImportPNGParams("x.png", data); err == nil || !strings.Contains(err.Error(), "x.png") {
			t.Errorf("%s: err = %v, want one naming the file", name, err)
		}
	}
}
