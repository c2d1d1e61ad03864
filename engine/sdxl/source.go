package sdxl

import (
	"fmt"
	"os"
	"path/filepath"
)

// componentFiles lists, per component, the weight files a diffusers folder
// may hold, in order of preference: the fp16 variant first (weights live on
// the device as fp16), then the full-precision file.
var componentFiles = map[string][]string{
	UNet:         {"diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors"},
	VAE:          {"diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors"},
	TextEncoder:  {"model.fp16.safetensors", "model.safetensors"},
	TextEncoder2: {"model.fp16.safetensors", "model.safetensors"},
}

// componentFile returns the weight file of one component of a diffusers folder.
func componentFile(dir, comp string) (string, error) {
	for _, name := range componentFiles[comp] {
		p := filepath.Join(dir, comp, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	for _, name := range componentFiles[comp] {
		if _, err := os.Stat(filepath.Join(dir, comp, name+".index.json")); err == nil {
			return "", fmt.Errorf("sdxl: %s: sharded weights (%s.index.json) are not supported; merge them into one file", filepath.Join(dir, comp), name)
		}
	}
	return "", fmt.Errorf("sdxl: %s: no weights (want %s or %s)", filepath.Join(dir, comp), componentFiles[comp][1], componentFiles[comp][0])
}
