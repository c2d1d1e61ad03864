package lora

import (
	"strings"

	"lorastudio/engine/sdxl"
)

// This file is the one conversion table: every spelling of a LoRA key in
// circulation, and what it means. A key splits into a component, a module
// (dotted diffusers name, or kohya's underscore-joined name) and a role.

// role is what a key holds.
type role int

const (
	roleDown  role = iota // the (rank, in) factor: lora_down / lora_A / lora.down
	roleUp                // the (out, rank) factor: lora_up / lora_B / lora.up
	roleAlpha             // the scalar alpha
)

// Format names, as LoRA.Format reports them.
const (
	FormatKohya     = "kohya"
	FormatDiffusers = "diffusers"
	FormatPEFT      = "peft"
	FormatComfyUI   = "comfyui" // dotted Stability-layout names (diffusion_model.…)
)

// naming is how a key spells its module.
type naming int

const (
	namingDiffusers naming = iota // dotted diffusers/transformers name
	namingFlat                    // kohya's underscore-joined name (diffusers or Stability layout)
	namingStability               // dotted Stability-layout UNet name (ComfyUI's generic format)
)

// parsedKey is one key of a LoRA file, understood.
type parsedKey struct {
	key       string
	component string
	base      string // the module as the key spells it
	naming    naming // how base names the module
	role      role
	// unsupported, when set, says which LoRA variant the key belongs to.
	unsupported string
}

// kohyaPrefixes: kohya's module-name prefixes and their components
// (lora_te_ is SD 1.x's single text encoder, which is SDXL's first).
var kohyaPrefixes = []struct{ prefix, component string }{
	{"lora_unet_", sdxl.UNet},
	{"lycoris_", sdxl.UNet}, // SimpleTuner's LyCORIS files (diffusers names)
	{"lora_te1_", sdxl.TextEncoder},
	{"lora_te2_", sdxl.TextEncoder2},
	{"lora_te_", sdxl.TextEncoder},
}

// suffixRule is one key ending: the role it gives, or the variant it belongs
// to when that is not a plain LoRA.
type suffixRule struct {
	suffix      string
	role        role
	unsupported string
}

// kohyaSuffixes: kohya module names hold no dots, so everything after the
// first dot is the suffix. LyCORIS variants share the prefixes; they are
// named so that a file of them is refused by name, never half-loaded.
var kohyaSuffixes = map[string]suffixRule{
	"lora_down.weight": {role: roleDown},
	"lora_up.weight":   {role: roleUp},
	"alpha":            {role: roleAlpha},
	"lora_mid.weight":  {unsupported: "LoCon with a Tucker core (lora_mid)"},
	"hada_w1_a":        {unsupported: "LoHa"},
	"hada_w1_b":        {unsupported: "LoHa"},
	"hada_w2_a":        {unsupported: "LoHa"},
	"hada_w2_b":        {unsupported: "LoHa"},
	"hada_t1":          {unsupported: "LoHa"},
	"hada_t2":          {unsupported: "LoHa"},
	"lokr_w1":          {unsupported: "LoKr"},
	"lokr_w1_a":        {unsupported: "LoKr"},
	"lokr_w1_b":        {unsupported: "LoKr"},
	"lokr_w2":          {unsupported: "LoKr"},
	"lokr_w2_a":        {unsupported: "LoKr"},
	"lokr_w2_b":        {unsupported: "LoKr"},
	"lokr_t2":          {unsupported: "LoKr"},
	"dora_scale":       {unsupported: "DoRA"},
	"diff":             {unsupported: "full weight difference"},
	"diff_b":           {unsupported: "bias difference"},
	"w_norm":           {unsupported: "norm-layer update"},
	"b_norm":           {unsupported: "norm-layer update"},
	"oft_blocks":       {unsupported: "OFT"},
	"oft_diag":         {unsupported: "OFT"},
}

// dottedSuffixes: diffusers and peft endings, tried in order. processor marks
// diffusers ≤ 0.20's attention-processor spelling
// (attn1.processor.to_q_lora.down.weight).
var dottedSuffixes = []struct {
	suffixRule
	processor bool
}{
	{suffixRule: suffixRule{suffix: ".lora_A.weight", role: roleDown}},
	{suffixRule: suffixRule{suffix: ".lora_B.weight", role: roleUp}},
	{suffixRule: suffixRule{suffix: ".lora_down.weight", role: roleDown}},
	{suffixRule: suffixRule{suffix: ".lora_up.weight", role: roleUp}},
	{suffixRule: suffixRule{suffix: ".lora.down.weight", role: roleDown}},
	{suffixRule: suffixRule{suffix: ".lora.up.weight", role: roleUp}},
	{suffixRule: suffixRule{suffix: ".lora_linear_layer.down.weight", role: roleDown}},
	{suffixRule: suffixRule{suffix: ".lora_linear_layer.up.weight", role: roleUp}},
	{suffixRule: suffixRule{suffix: "_lora.down.weight", role: roleDown}, processor: true},
	{suffixRule: suffixRule{suffix: "_lora.up.weight", role: roleUp}, processor: true},
	{suffixRule: suffixRule{suffix: ".alpha", role: roleAlpha}},
	{suffixRule: suffixRule{suffix: ".lora_magnitude_vector.weight", unsupported: "DoRA"}},
	{suffixRule: suffixRule{suffix: ".lora_magnitude_vector", unsupported: "DoRA"}},
	{suffixRule: suffixRule{suffix: ".lora_embedding_A", unsupported: "embedding LoRA"}},
	{suffixRule: suffixRule{suffix: ".lora_embedding_B", unsupported: "embedding LoRA"}},
}

// processorLeaves: the attention processor's LoRA names and the module each
// one updates.
var processorLeaves = map[string]string{
	"to_q":   "to_q",
	"to_k":   "to_k",
	"to_v":   "to_v",
	"to_out": "to_out.0",
}

// peftPrefix begins every key peft's own save_pretrained writes.
const peftPrefix = "base_model.model."

// componentPrefixes: diffusers' component prefixes (text_encoder_2. before
// text_encoder. is not needed — the dot tells them apart).
var componentPrefixes = []struct{ prefix, component string }{
	{"unet.", sdxl.UNet},
	{"text_encoder.", sdxl.TextEncoder},
	{"text_encoder_2.", sdxl.TextEncoder2},
}

// stabilityPrefixes begin dotted Stability-layout UNet keys (ComfyUI's
// generic LoRA format: diffusion_model.input_blocks.4.1.….lora_up.weight).
var stabilityPrefixes = []string{stabilityUNetPrefix, "diffusion_model."}

// dropAdapterName turns peft's in-memory spelling with an adapter name
// (….lora_A.default.weight) into the saved one (….lora_A.weight).
func dropAdapterName(key string) string {
	for _, ab := range []string{".lora_A.", ".lora_B."} {
		i := strings.LastIndex(key, ab)
		if i < 0 {
			continue
		}
		rest := key[i+len(ab):]
		name, ok := strings.CutSuffix(rest, ".weight")
		if ok && name != "" && !strings.Contains(name, ".") {
			return key[:i+len(ab)] + "weight"
		}
	}
	return key
}

// parseKey understands one key; ok is false when no rule knows it.
// defaultComponent is the component of dotted keys with no component prefix.
func parseKey(key, defaultComponent string) (parsedKey, bool) {
	for _, p := range kohyaPrefixes {
		rest, found := strings.CutPrefix(key, p.prefix)
		if !found {
			continue
		}
		base, suffix, found := strings.Cut(rest, ".")
		if !found || base == "" {
			return parsedKey{}, false
		}
		r, known := kohyaSuffixes[suffix]
		if !known {
			return parsedKey{}, false
		}
		return parsedKey{key: key, component: p.component, base: base, naming: namingFlat, role: r.role, unsupported: r.unsupported}, true
	}
	k := dropAdapterName(strings.TrimPrefix(key, peftPrefix))
	component, nm := defaultComponent, namingDiffusers
	for _, p := range componentPrefixes {
		if rest, found := strings.CutPrefix(k, p.prefix); found {
			component, k = p.component, rest
			break
		}
	}
	for _, p := range stabilityPrefixes {
		if rest, found := strings.CutPrefix(k, p); found {
			component, k, nm = sdxl.UNet, rest, namingStability
			break
		}
	}
	for _, s := range dottedSuffixes {
		base, found := strings.CutSuffix(k, s.suffix)
		if !found || base == "" {
			continue
		}
		if s.processor {
			i := strings.LastIndex(base, ".processor.")
			if i < 0 {
				return parsedKey{}, false
			}
			leaf, known := processorLeaves[base[i+len(".processor."):]]
			if !known {
				return parsedKey{}, false
			}
			base = base[:i] + "." + leaf
		}
		return parsedKey{key: key, component: component, base: base, naming: nm, role: s.role, unsupported: s.unsupported}, true
	}
	return parsedKey{}, false
}
