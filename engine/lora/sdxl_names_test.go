package lora

import (
	"testing"

	"lorastudio/engine/sdxl"
)

// TestRealSDXLKohyaNames resolves kohya names that sd-scripts writes for real
// SDXL base 1.0 (configs embedded in engine/sdxl) to their diffusers modules,
// and checks no underscore form of the real model is ambiguous.
func TestRealSDXLKohyaNames(t *testing.T) {
	cfg, err := sdxl.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	tg, err := newTargets(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.ambiguous) != 0 {
		t.Fatalf("ambiguous underscore forms in SDXL base 1.0: %v", tg.ambiguous)
	}
	for _, c := range []struct{ component, kohya, module string }{
		{sdxl.UNet, "input_blocks_4_1_transformer_blocks_0_attn1_to_q", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"},
		{sdxl.UNet, "input_blocks_8_1_transformer_blocks_9_ff_net_2", "down_blocks.2.attentions.1.transformer_blocks.9.ff.net.2"},
		{sdxl.UNet, "input_blocks_8_1_transformer_blocks_9_ff_net_0_proj", "down_blocks.2.attentions.1.transformer_blocks.9.ff.net.0.proj"},
		{sdxl.UNet, "middle_block_1_proj_in", "mid_block.attentions.0.proj_in"},
		{sdxl.UNet, "output_blocks_0_1_transformer_blocks_9_attn2_to_out_0", "up_blocks.0.attentions.0.transformer_blocks.9.attn2.to_out.0"},
		{sdxl.UNet, "output_blocks_2_2_conv", "up_blocks.0.upsamplers.0.conv"},
		{sdxl.UNet, "input_blocks_3_0_op", "down_blocks.0.downsamplers.0.conv"},
		{sdxl.UNet, "input_blocks_1_0_in_layers_2", "down_blocks.0.resnets.0.conv1"},
		{sdxl.UNet, "input_blocks_4_0_skip_connection", "down_blocks.1.resnets.0.conv_shortcut"},
		{sdxl.UNet, "time_embed_0", "time_embedding.linear_1"},
		{sdxl.UNet, "label_emb_0_2", "add_embedding.linear_2"},
		{sdxl.UNet, "up_blocks_0_attentions_2_transformer_blocks_9_attn1_to_v", "up_blocks.0.attentions.2.transformer_blocks.9.attn1.to_v"},
		{sdxl.TextEncoder, "text_model_encoder_layers_11_self_attn_out_proj", "text_model.encoder.layers.11.self_attn.out_proj"},
		{sdxl.TextEncoder2, "text_model_encoder_layers_31_mlp_fc2", "text_model.encoder.layers.31.mlp.fc2"},
	} {
		m, ok, err := tg.resolveFlat(c.component, c.kohya)
		if err != nil || !ok || m != c.module {
			t.Errorf("%s %s → %q (%v, %v), want %s", c.component, c.kohya, m, ok, err, c.module)
		}
	}
	// The text encoders have only their transformers names: OpenCLIP's
	// resblocks are not a kohya spelling.
	if _, ok, _ := tg.resolveFlat(sdxl.TextEncoder2, "model_transformer_resblocks_0_attn_out_proj"); ok {
		t.Error("an OpenCLIP name resolved")
	}
}
