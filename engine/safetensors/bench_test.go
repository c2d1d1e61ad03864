package safetensors

import (
	"lorastudio/engine/internal/fixtures"
	"path/filepath"
	"testing"
)

func BenchmarkOpenSingleFile(b *testing.B) {
	path := filepath.Join(fixtures.Root(b), "sdxl-tiny.safetensors")
	for i := 0; i < b.N; i++ {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func BenchmarkFloat16BitsFromF32(b *testing.B) {
	const n = 1 << 20
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(i%1000) * 0.37
	}
	path := filepath.Join(b.TempDir(), "f32.safetensors")
	if err := Write(path, []Tensor{{Name: "w", DType: F32, Shape: []int{n}, Data: le32(vals)}}, nil); err != nil {
		b.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(4 * n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Float16Bits("w"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFloat32FromF16(b *testing.B) {
	path := filepath.Join(fixtures.Root(b), "model", "unet", "diffusion_pytorch_model.safetensors")
	f, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	names := f.Names()
	var total int64
	for _, n := range names {
		info, _ := f.Tensor(n)
		total += info.Size
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, n := range names {
			if _, err := f.Float32(n); err != nil {
				b.Fatal(err)
			}
		}
	}
}
