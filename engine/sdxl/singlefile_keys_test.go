package sdxl

import (
	"lorastudio/engine/internal/fixtures"
	"path/filepath"
	"strings"
	"testing"
)

// TestSingleFileLayoutMatchesRealManifest maps every parameter of the real
// SDXL base configs into the single-file layout and compares with the
// manifest of sd_xl_base_1.0.safetensors: every manifest key is read by some
// parameter with the right shape, every parameter's key is in the manifest,
// and each key's rows are covered exactly once.
func TestSingleFileLayoutMatchesRealManifest(t *testing.T) {
	cfg := manifestConfig(t)
	var m singleFileManifest
	readJSON(t, filepath.Join(fixtures.Manifest(t), "manifest_sgm_single_file.json"), &m)
	if len(m.Tensors) != m.TensorCount || m.TensorCount == 0 {
		t.Fatalf("manifest lists %d tensors, says %d", len(m.Tensors), m.TensorCount)
	}
	shapes := map[string][]int{}
	var manifestParams int64
	for _, tt := range m.Tensors {
		shapes[tt.Name] = tt.Shape
		n := int64(1)
		for _, d := range tt.Shape {
			n *= int64(d)
		}
		manifestParams += n
	}
	layout, err := SingleFileLayout(cfg)
	if err != nil {
		t.Fatal(err)
	}
	missing, unknown, err := matchSingleFile("manifest", "SDXL base", layout, shapes)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 || len(unknown) > 0 {
		t.Fatalf("missing %v\nunknown %v", missing, unknown)
	}

	// Each key's rows are read exactly once, and the element counts agree.
	rows := map[string][]bool{}
	var layoutParams int64
	for _, ref := range layout {
		n := int64(1)
		for _, d := range ref.Shape {
			n *= int64(d)
		}
		layoutParams += n
		ks := shapes[ref.Key]
		if rows[ref.Key] == nil {
			rows[ref.Key] = make([]bool, ks[0])
		}
		start, end := ref.RowStart, ref.RowEnd
		if start == 0 && end == 0 {
			end = ks[0]
			if ref.Transpose {
				end = ref.Shape[1]
			}
		}
		if end-start != ref.Shape[0] && !ref.Transpose {
			t.Errorf("%s: rows [%d,%d) for shape %v", ref.Name, start, end, ref.Shape)
		}
		for r := start; r < end; r++ {
			if rows[ref.Key][r] {
				t.Errorf("%s: row %d of %s read twice", ref.Name, r, ref.Key)
			}
			rows[ref.Key][r] = true
		}
	}
	for k, rs := range rows {
		for r, ok := range rs {
			if !ok {
				t.Errorf("row %d of %s read by no parameter", r, k)
				break
			}
		}
	}
	if layoutParams != manifestParams || manifestParams != m.ParamCount {
		t.Errorf("layout covers %d parameters, manifest tensors %d, manifest says %d", layoutParams, manifestParams, m.ParamCount)
	}

	// The conversions the brief names, spelled out once.
	byName := map[string]SingleFileRef{}
	for _, ref := range layout {
		byName[ref.Component+"/"+ref.Name] = ref
	}
	spot := []struct {
		name, key string
		check     func(SingleFileRef) bool
	}{
		{"unet/conv_in.weight", "model.diffusion_model.input_blocks.0.0.weight", nil},
		{"unet/add_embedding.linear_2.bias", "model.diffusion_model.label_emb.0.2.bias", nil},
		{"unet/down_blocks.1.downsamplers.0.conv.weight", "model.diffusion_model.input_blocks.6.0.op.weight", nil},
		{"unet/down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_k.weight", "model.diffusion_model.input_blocks.8.1.transformer_blocks.9.attn2.to_k.weight", nil},
		{"unet/up_blocks.0.upsamplers.0.conv.weight", "model.diffusion_model.output_blocks.2.2.conv.weight", nil},
		{"unet/up_blocks.1.upsamplers.0.conv.bias", "model.diffusion_model.output_blocks.5.2.conv.bias", nil},
		{"unet/up_blocks.2.resnets.2.conv_shortcut.weight", "model.diffusion_model.output_blocks.8.0.skip_connection.weight", nil},
		{"unet/mid_block.resnets.1.time_emb_proj.weight", "model.diffusion_model.middle_block.2.emb_layers.1.weight", nil},
		{"vae/decoder.up_blocks.0.upsamplers.0.conv.weight", "first_stage_model.decoder.up.3.upsample.conv.weight", nil},
		{"vae/encoder.mid_block.attentions.0.to_q.weight", "first_stage_model.encoder.mid.attn_1.q.weight",
			func(r SingleFileRef) bool { return r.Reshape && len(r.KeyShape) == 4 && len(r.Shape) == 2 }},
		{"text_encoder/text_model.encoder.layers.11.mlp.fc2.bias", "conditioner.embedders.0.transformer.text_model.encoder.layers.11.mlp.fc2.bias", nil},
		{"text_encoder_2/text_model.encoder.layers.31.self_attn.v_proj.weight", "conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight",
			func(r SingleFileRef) bool { return r.RowStart == 2560 && r.RowEnd == 3840 }},
		{"text_encoder_2/text_projection.weight", "conditioner.embedders.1.model.text_projection",
			func(r SingleFileRef) bool { return r.Transpose }},
		{"text_encoder_2/text_model.embeddings.position_embedding.weight", "conditioner.embedders.1.model.positional_embedding", nil},
	}
	for _, s := range spot {
		ref, ok := byName[s.name]
		if !ok {
			t.Errorf("no parameter %s", s.name)
			continue
		}
		if ref.Key != s.key || (s.check != nil && !s.check(ref)) {
			t.Errorf("%s → %+v, want key %s", s.name, ref, s.key)
		}
	}
}

func TestSingleFileKeyErrors(t *testing.T) {
	cfg := manifestConfig(t)
	layout, err := SingleFileLayout(cfg)
	if err != nil {
		t.Fatal(err)
	}
	full := map[string][]int{}
	for _, ref := range layout {
		full[ref.Key] = ref.KeyShape
	}
	clone := func() map[string][]int {
		m := map[string][]int{}
		for k, v := range full {
			m[k] = v
		}
		return m
	}

	// Known extras are quiet.
	s := clone()
	for _, k := range []string{"conditioner.embedders.0.transformer.text_model.embeddings.position_ids",
		"conditioner.embedders.1.model.logit_scale", "model_ema.decay", "model_ema.diffusion_modelinput_blocks00weight", "denoiser.sigmas"} {
		s[k] = []int{1}
	}
	if missing, unknown, err := matchSingleFile("f.safetensors", "SDXL base", layout, s); err != nil || len(missing)+len(unknown) > 0 {
		t.Errorf("known extras: %v %v %v", missing, unknown, err)
	}

	// An unknown key is named.
	s = clone()
	s["cond_stage_model.transformer.text_model.final_layer_norm.weight"] = []int{768}
	if _, unknown, err := matchSingleFile("f.safetensors", "SDXL base", layout, s); err != nil || len(unknown) != 1 || unknown[0] != "cond_stage_model.transformer.text_model.final_layer_norm.weight" {
		t.Errorf("unknown: %v %v", unknown, err)
	}

	// A missing key is named.
	s = clone()
	delete(s, "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight")
	delete(s, "model.diffusion_model.out.2.bias")
	_, _, err = matchSingleFile("f.safetensors", "SDXL base", layout, s)
	if err == nil || !strings.Contains(err.Error(), "f.safetensors: 2 missing keys: model.diffusion_model.out.2.bias, first_stage_model.decoder.up.0.block.0.nin_shortcut.weight") {
		t.Errorf("missing: %v", err)
	}

	// A wrong shape names the key, both shapes and the parameter.
	s = clone()
	s["conditioner.embedders.1.model.transformer.resblocks.3.attn.in_proj_weight"] = []int{3 * 1280, 1024}
	_, _, err = matchSingleFile("f.safetensors", "SDXL base", layout, s)
	if err == nil || !strings.Contains(err.Error(), "key conditioner.embedders.1.model.transformer.resblocks.3.attn.in_proj_weight has shape [3840 1024], SDXL base expects [3840 1280]") {
		t.Errorf("shape: %v", err)
	}
}
