package studio

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkOpenDataset5000 opens a kohya-style folder of 5,000 1024x1024 PNGs
// (about 100 KB each, noisy so they do not compress away) with 4,000 captions.
// Run: go test -run - -bench OpenDataset5000 -benchtime 3x ./app/studio/
// (LORASTUDIO_BENCH_COLD=1, as root, drops the page cache before each open).
func BenchmarkOpenDataset5000(b *testing.B) {
	const n = 5000
	img := image.NewGray(image.Rect(0, 0, 1024, 1024))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		if i%10 == 0 {
			img.Pix[i] = uint8(rng.IntN(256))
		} else {
			img.Pix[i] = uint8(i / 1024 % 256)
		}
	}
	img.Set(0, 0, color.Gray{1})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("%d_set%d", 1+i%3, i%3))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("img%05d.png", i)), buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		if i%5 != 0 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("img%05d.txt", i)), []byte("mychar, diagram, api gateway"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Logf("image file size %d bytes", buf.Len())
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if os.Getenv("LORASTUDIO_BENCH_COLD") == "1" {
			// Cold page cache (root only): what a user sees opening a folder the first time.
			b.StopTimer()
			if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
				b.Fatalf("LORASTUDIO_BENCH_COLD=1 needs root: %v", err)
			}
			b.StartTimer()
		}
		t0 := time.Now()
		d, err := s.OpenDataset(root)
		if err != nil {
			b.Fatal(err)
		}
		// The first open records 4,000 captions as imports; later ones find them recorded.
		b.Logf("open %d: %v", i+1, time.Since(t0))
		if c, total := d.Progress(); total != n || c != 4000 {
			b.Fatalf("progress %d/%d", c, total)
		}
	}
}
