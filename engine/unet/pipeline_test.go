package unet_test

import (
	"path/filepath"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/internal/gltest"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/tensor"
	"lorastudio/engine/unet"
)

// TestPipelineFirstCalls runs the first UNet call each golden pipeline
// recorded (classifier-free guidance batches [negative, positive] with one
// shared timestep) and compares its noise prediction, with the UNet
// goldens' tolerance, on CPU and GL.
func TestPipelineFirstCalls(t *testing.T) {
	t.Run("cpu", func(t *testing.T) { pipelineCalls(t, cpu.New()) })
	t.Run("gl", func(t *testing.T) { pipelineCalls(t, gltest.Backend(t)) })
}

func pipelineCalls(t *testing.T, b tensor.Backend) {
	root := fixtures.Root(t)
	m := loadFolder(t, b, root)
	files, err := filepath.Glob(filepath.Join(root, "goldens", "pipeline_*.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, path := range files {
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		// calls with a LoRA applied (pipeline_lora's scale*.first_unet_call) are engine/lora's
		if _, ok := f.Tensor("first_unet_call.x"); ok {
			firstCall(t, b, m, &goldens{f: f}, filepath.Base(path))
			ran++
		}
		f.Close()
	}
	if ran == 0 {
		t.Fatal("no goldens/pipeline_*.safetensors holds first_unet_call.x")
	}
}

func firstCall(t *testing.T, b tensor.Backend, m *unet.Model, g *goldens, file string) {
	t.Helper()
	const p = "first_unet_call."
	x := g.upload(t, b, p+"x")
	ctx := g.upload(t, b, p+"ehs")
	text := g.upload(t, b, p+"text_embeds")
	ids := g.upload(t, b, p+"time_ids")
	defer tensor.FreeAll(x, ctx, text, ids)
	ts, _ := g.host(t, p+"t")
	out, err := m.Forward(x, ts, ctx, text, ids)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	defer out.Free()
	v, err := b.Download(out)
	if err != nil {
		t.Fatal(err)
	}
	ref, shape := g.host(t, p+"out")
	compare(t, strings.TrimSuffix(file, ".safetensors")+" "+p+"out on "+b.Name(), v, out.Shape(), ref, shape)
}
