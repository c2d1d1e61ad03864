package sdxl

import (
	"lorastudio/engine/internal/fixtures"
	"testing"
)

// BenchmarkSingleFileLayoutSDXLBase times deriving the full SDXL base
// parameter lists and their single-file mapping (done once per open).
func BenchmarkSingleFileLayoutSDXLBase(b *testing.B) {
	cfg, err := DefaultConfig()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := SingleFileLayout(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSourceTinySingleFile times opening and checking the tiny
// single file (header parse, layout, shape match).
func BenchmarkOpenSourceTinySingleFile(b *testing.B) {
	root := fixtures.Root(b)
	cfg, err := LoadConfig(root + "/model")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := OpenSource(root+"/sdxl-tiny.safetensors", WithConfig(cfg))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Check(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
