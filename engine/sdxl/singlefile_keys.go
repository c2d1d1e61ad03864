package sdxl

// The one conversion between diffusers names and Stability's single-file
// (SGM/LDM) layout, as in sd_xl_base_1.0.safetensors. It is a table: prefix
// rules built from the config (block indices follow layers_per_block, which
// levels have attentions, and where down/upsamplers sit), each naming a table
// of leaf renames for the module it covers. Nothing here knows a block count.

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// SingleFileRef says where one diffusers parameter's data lies in a single file.
type SingleFileRef struct {
	Component string // unet, vae, text_encoder or text_encoder_2
	Name      string // the diffusers parameter name
	Shape     []int  // the diffusers shape
	Key       string // the single-file key holding the data
	KeyShape  []int  // that key's shape in the file
	// RowStart and RowEnd select rows [RowStart, RowEnd) of Key along dim 0
	// (OpenCLIP's fused attn.in_proj_* holds q, k and v stacked); both 0 means
	// the whole key.
	RowStart, RowEnd int
	// Transpose is set when Key holds the 2-D transpose (OpenCLIP's
	// text_projection is x @ P where diffusers' Linear computes x @ Wᵀ).
	Transpose bool
	// Reshape is set when Key holds the same data under another shape (the
	// VAE attention's 1×1 conv weights (C, C, 1, 1) that diffusers stores as
	// linear weights (C, C)).
	Reshape bool
}

// The single file's prefix for each component.
const (
	sgmUNet  = "model.diffusion_model."
	sgmVAE   = "first_stage_model."
	sgmText1 = "conditioner.embedders.0.transformer."
	sgmText2 = "conditioner.embedders.1.model."
)

// ignoredSingleFileKeys are keys real single files carry that no inference
// reads; they are accepted quietly (stable-diffusion.cpp skips them by a list too).
var ignoredSingleFileKeys = []string{
	sgmText1 + "text_model.embeddings.position_ids", // int64 arange(77), stored by transformers < 4.31
	sgmText2 + "logit_scale",                        // CLIP's contrastive temperature, unused by the text tower
	"denoiser.sigmas",                               // the training noise schedule, recomputed from the scheduler
}

// ignoredSingleFilePrefixes are key prefixes accepted quietly.
var ignoredSingleFilePrefixes = []string{
	"model_ema.", // an exponential moving average copy some trainers keep
}

// IgnoredSingleFileKey reports whether key is a known extra that real single
// files carry and no inference uses.
func IgnoredSingleFileKey(key string) bool {
	if slices.Contains(ignoredSingleFileKeys, key) {
		return true
	}
	for _, p := range ignoredSingleFilePrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// leafRule renames the part of a diffusers name below a module prefix. A from
// ending in "." renames a prefix; otherwise it renames the exact remainder.
type leafRule struct {
	from, to  string
	part      int // 1, 2, 3: the q, k or v third of a fused in_proj; 0: none
	transpose bool
	reshape   bool // stored as a 1×1 conv weight
}

// prefixRule maps a diffusers module prefix to its single-file prefix; leaves
// renames what is below it (nil: the names below are the same).
type prefixRule struct {
	from, to string
	leaves   []leafRule
}

// unetResnetLeaves: diffusers ResnetBlock2D → LDM ResBlock
// (in_layers = [GroupNorm, SiLU, Conv], emb_layers = [SiLU, Linear],
// out_layers = [GroupNorm, SiLU, Dropout, Conv]).
var unetResnetLeaves = []leafRule{
	{from: "norm1.", to: "in_layers.0."},
	{from: "conv1.", to: "in_layers.2."},
	{from: "time_emb_proj.", to: "emb_layers.1."},
	{from: "norm2.", to: "out_layers.0."},
	{from: "conv2.", to: "out_layers.3."},
	{from: "conv_shortcut.", to: "skip_connection."},
}

// vaeResnetLeaves: the VAE's ResnetBlock keeps diffusers' names but the shortcut.
var vaeResnetLeaves = []leafRule{
	{from: "norm1.", to: "norm1."},
	{from: "conv1.", to: "conv1."},
	{from: "norm2.", to: "norm2."},
	{from: "conv2.", to: "conv2."},
	{from: "conv_shortcut.", to: "nin_shortcut."},
}

// vaeAttnLeaves: the VAE mid-block AttnBlock uses 1×1 convs where diffusers
// uses linears.
var vaeAttnLeaves = []leafRule{
	{from: "group_norm.", to: "norm."},
	{from: "to_q.weight", to: "q.weight", reshape: true},
	{from: "to_q.bias", to: "q.bias"},
	{from: "to_k.weight", to: "k.weight", reshape: true},
	{from: "to_k.bias", to: "k.bias"},
	{from: "to_v.weight", to: "v.weight", reshape: true},
	{from: "to_v.bias", to: "v.bias"},
	{from: "to_out.0.weight", to: "proj_out.weight", reshape: true},
	{from: "to_out.0.bias", to: "proj_out.bias"},
}

// openCLIPLayerLeaves: a transformers CLIPEncoderLayer → an OpenCLIP
// ResidualAttentionBlock (nn.MultiheadAttention fuses q, k, v in that order).
var openCLIPLayerLeaves = []leafRule{
	{from: "self_attn.q_proj.weight", to: "attn.in_proj_weight", part: 1},
	{from: "self_attn.k_proj.weight", to: "attn.in_proj_weight", part: 2},
	{from: "self_attn.v_proj.weight", to: "attn.in_proj_weight", part: 3},
	{from: "self_attn.q_proj.bias", to: "attn.in_proj_bias", part: 1},
	{from: "self_attn.k_proj.bias", to: "attn.in_proj_bias", part: 2},
	{from: "self_attn.v_proj.bias", to: "attn.in_proj_bias", part: 3},
	{from: "self_attn.out_proj.", to: "attn.out_proj."},
	{from: "layer_norm1.", to: "ln_1."},
	{from: "layer_norm2.", to: "ln_2."},
	{from: "mlp.fc1.", to: "mlp.c_fc."},
	{from: "mlp.fc2.", to: "mlp.c_proj."},
}

// unetRules builds the UNet's prefix table from its config. LDM numbers the
// down path as one list, input_blocks: 0 is conv_in, then per level
// layers_per_block (resnet, attention) pairs and, except at the deepest level,
// a downsampler of its own. output_blocks has layers_per_block+1 entries per
// level; the upsampler joins the level's last entry after its attention.
func unetRules(c UNetConfig) []prefixRule {
	r := []prefixRule{
		{from: "conv_in.", to: "input_blocks.0.0."},
		{from: "time_embedding.linear_1.", to: "time_embed.0."}, // time_embed.1 is SiLU
		{from: "time_embedding.linear_2.", to: "time_embed.2."},
		{from: "add_embedding.linear_1.", to: "label_emb.0.0."}, // label_emb.0.1 is SiLU
		{from: "add_embedding.linear_2.", to: "label_emb.0.2."},
		{from: "mid_block.resnets.0.", to: "middle_block.0.", leaves: unetResnetLeaves},
		{from: "mid_block.attentions.0.", to: "middle_block.1."},
		{from: "mid_block.resnets.1.", to: "middle_block.2.", leaves: unetResnetLeaves},
		{from: "conv_norm_out.", to: "out.0."}, // out.1 is SiLU
		{from: "conv_out.", to: "out.2."},
	}
	n := len(c.BlockOutChannels)
	k := 1
	for i := range n {
		for j := range c.LayersPerBlock {
			r = append(r, prefixRule{from: fmt.Sprintf("down_blocks.%d.resnets.%d.", i, j), to: fmt.Sprintf("input_blocks.%d.0.", k), leaves: unetResnetLeaves})
			if c.HasCrossAttention(i) {
				r = append(r, prefixRule{from: fmt.Sprintf("down_blocks.%d.attentions.%d.", i, j), to: fmt.Sprintf("input_blocks.%d.1.", k)})
			}
			k++
		}
		if i < n-1 {
			r = append(r, prefixRule{from: fmt.Sprintf("down_blocks.%d.downsamplers.0.conv.", i), to: fmt.Sprintf("input_blocks.%d.0.op.", k)})
			k++
		}
	}
	k = 0
	for i := range n {
		for j := range c.LayersPerBlock + 1 {
			r = append(r, prefixRule{from: fmt.Sprintf("up_blocks.%d.resnets.%d.", i, j), to: fmt.Sprintf("output_blocks.%d.0.", k), leaves: unetResnetLeaves})
			sub := 1
			if c.UpHasCrossAttention(i) {
				r = append(r, prefixRule{from: fmt.Sprintf("up_blocks.%d.attentions.%d.", i, j), to: fmt.Sprintf("output_blocks.%d.1.", k)})
				sub = 2
			}
			if i < n-1 && j == c.LayersPerBlock {
				r = append(r, prefixRule{from: fmt.Sprintf("up_blocks.%d.upsamplers.0.", i), to: fmt.Sprintf("output_blocks.%d.%d.", k, sub)})
			}
			k++
		}
	}
	return r
}

// vaeRules builds the VAE's prefix table: LDM numbers the decoder's levels
// from the deepest (up.0 is the last to run), diffusers from the first to run.
func vaeRules(c VAEConfig) []prefixRule {
	var r []prefixRule
	n := len(c.BlockOutChannels)
	for _, part := range []string{"encoder", "decoder"} {
		r = append(r,
			prefixRule{from: part + ".conv_in.", to: part + ".conv_in."},
			prefixRule{from: part + ".conv_norm_out.", to: part + ".norm_out."},
			prefixRule{from: part + ".conv_out.", to: part + ".conv_out."},
			prefixRule{from: part + ".mid_block.resnets.0.", to: part + ".mid.block_1.", leaves: vaeResnetLeaves},
			prefixRule{from: part + ".mid_block.attentions.0.", to: part + ".mid.attn_1.", leaves: vaeAttnLeaves},
			prefixRule{from: part + ".mid_block.resnets.1.", to: part + ".mid.block_2.", leaves: vaeResnetLeaves},
		)
	}
	for i := range n {
		for j := range c.LayersPerBlock {
			r = append(r, prefixRule{from: fmt.Sprintf("encoder.down_blocks.%d.resnets.%d.", i, j), to: fmt.Sprintf("encoder.down.%d.block.%d.", i, j), leaves: vaeResnetLeaves})
		}
		if i < n-1 {
			r = append(r, prefixRule{from: fmt.Sprintf("encoder.down_blocks.%d.downsamplers.0.conv.", i), to: fmt.Sprintf("encoder.down.%d.downsample.conv.", i)})
		}
		for j := range c.LayersPerBlock + 1 {
			r = append(r, prefixRule{from: fmt.Sprintf("decoder.up_blocks.%d.resnets.%d.", i, j), to: fmt.Sprintf("decoder.up.%d.block.%d.", n-1-i, j), leaves: vaeResnetLeaves})
		}
		if i < n-1 {
			r = append(r, prefixRule{from: fmt.Sprintf("decoder.up_blocks.%d.upsamplers.0.conv.", i), to: fmt.Sprintf("decoder.up.%d.upsample.conv.", n-1-i)})
		}
	}
	r = append(r,
		prefixRule{from: "quant_conv.", to: "quant_conv."},
		prefixRule{from: "post_quant_conv.", to: "post_quant_conv."},
	)
	return r
}

// textEncoderRules: the CLIP-L tower is stored under transformers' own names.
func textEncoderRules(CLIPTextConfig) []prefixRule {
	return []prefixRule{{from: "", to: ""}}
}

// textEncoder2Rules: the bigG tower is stored under OpenCLIP's names.
func textEncoder2Rules(c CLIPTextConfig) []prefixRule {
	r := []prefixRule{
		{from: "text_model.embeddings.token_embedding.", to: "token_embedding."},
		{from: "text_model.embeddings.position_embedding.", to: "", leaves: []leafRule{{from: "weight", to: "positional_embedding"}}},
		{from: "text_model.final_layer_norm.", to: "ln_final."},
		{from: "text_projection.", to: "", leaves: []leafRule{{from: "weight", to: "text_projection", transpose: true}}},
	}
	for i := range c.NumHiddenLayers {
		r = append(r, prefixRule{from: fmt.Sprintf("text_model.encoder.layers.%d.", i), to: fmt.Sprintf("transformer.resblocks.%d.", i), leaves: openCLIPLayerLeaves})
	}
	return r
}

// SingleFileLayout maps every parameter of cfg's four components to its
// source in a single file, in the order of the components' parameter lists.
func SingleFileLayout(cfg Config) ([]SingleFileRef, error) {
	comps := []struct {
		name, prefix string
		rules        []prefixRule
	}{
		{UNet, sgmUNet, unetRules(cfg.UNet)},
		{VAE, sgmVAE, vaeRules(cfg.VAE)},
		{TextEncoder, sgmText1, textEncoderRules(cfg.TextEncoder)},
		{TextEncoder2, sgmText2, textEncoder2Rules(cfg.TextEncoder2)},
	}
	var out []SingleFileRef
	for _, c := range comps {
		ps, err := ComponentParams(cfg, c.name)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			ref, err := mapParam(c.rules, p)
			if err != nil {
				return nil, fmt.Errorf("sdxl: %s: %v", c.name, err)
			}
			ref.Component = c.name
			ref.Key = c.prefix + ref.Key
			out = append(out, ref)
		}
	}
	return out, nil
}

// mapParam applies the longest matching prefix rule and its leaf table to p.
func mapParam(rules []prefixRule, p Param) (SingleFileRef, error) {
	best := -1
	for i, r := range rules {
		if strings.HasPrefix(p.Name, r.from) && (best < 0 || len(r.from) > len(rules[best].from)) {
			best = i
		}
	}
	if best < 0 {
		return SingleFileRef{}, fmt.Errorf("no single-file rule for %s", p.Name)
	}
	r := rules[best]
	rest := p.Name[len(r.from):]
	ref := SingleFileRef{Name: p.Name, Shape: p.Shape, Key: r.to + rest, KeyShape: p.Shape}
	if r.leaves == nil {
		return ref, nil
	}
	for _, l := range r.leaves {
		var ok bool
		if strings.HasSuffix(l.from, ".") {
			ok = strings.HasPrefix(rest, l.from)
		} else {
			ok = rest == l.from
		}
		if !ok {
			continue
		}
		ref.Key = r.to + l.to + rest[len(l.from):]
		switch {
		case l.part > 0:
			rows := p.Shape[0]
			ref.RowStart, ref.RowEnd = (l.part-1)*rows, l.part*rows
			ref.KeyShape = append([]int{3 * rows}, p.Shape[1:]...)
		case l.transpose:
			if len(p.Shape) != 2 {
				return ref, fmt.Errorf("%s: transpose of a %d-D tensor", p.Name, len(p.Shape))
			}
			ref.Transpose = true
			ref.KeyShape = []int{p.Shape[1], p.Shape[0]}
		case l.reshape:
			ref.Reshape = true
			ref.KeyShape = append(slices.Clone(p.Shape), 1, 1)
		}
		return ref, nil
	}
	return SingleFileRef{}, fmt.Errorf("no single-file rule for %s (below %s)", p.Name, r.from)
}

// matchSingleFile checks a single file's key shapes against layout: every
// key the layout reads must be present with its shape, and every other key
// must be a known extra. name (the file) and describe (what the sizes come
// from) are used in errors. It returns the first problem in the layout's
// order, then missing keys, then unknown keys (listed by name).
func matchSingleFile(name, describe string, layout []SingleFileRef, shapes map[string][]int) (missing, unknown []string, err error) {
	used := map[string]bool{}
	for _, ref := range layout {
		if used[ref.Key] {
			continue
		}
		used[ref.Key] = true
		got, ok := shapes[ref.Key]
		if !ok {
			missing = append(missing, ref.Key)
			continue
		}
		// A 1×1 conv weight stored flat, as some converters write it, is the same data.
		flat := ref.Reshape && reflect.DeepEqual(got, ref.Shape)
		if !reflect.DeepEqual(got, ref.KeyShape) && !flat && err == nil {
			err = fmt.Errorf("sdxl: %s: key %s has shape %v, %s expects %v (%s %s %v)",
				name, ref.Key, got, describe, ref.KeyShape, ref.Component, ref.Name, ref.Shape)
		}
	}
	for k := range shapes {
		if !used[k] && !IgnoredSingleFileKey(k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	if err == nil && len(missing) > 0 {
		err = fmt.Errorf("sdxl: %s: %s", name, listKeys("missing key", missing))
	}
	return missing, unknown, err
}

// listKeys formats keys for an error: the count and the first ten names.
func listKeys(what string, keys []string) string {
	const show = 10
	s := fmt.Sprintf("%d %s", len(keys), what)
	if len(keys) != 1 {
		s += "s"
	}
	s += ": " + strings.Join(keys[:min(len(keys), show)], ", ")
	if len(keys) > show {
		s += fmt.Sprintf(" and %d more", len(keys)-show)
	}
	return s
}
