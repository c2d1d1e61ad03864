package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleLatents() *Latents {
	l := &Latents{Shape: [3]int{4, 3, 2}}
	for i := range 24 {
		l.Mean = append(l.Mean, float32(i)*0.5-3)
		l.Std = append(l.Std, 0.01*float32(i+1))
	}
	return l
}

func TestLatentCacheRoundTripAndKeys(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	k := LatentKey{ImageHash: "aa", ModelHash: "m1", Bucket: Size{64, 48}, ResizedW: 70, ResizedH: 48, CropLeft: 3}
	if _, err := c.Latents(k); err != ErrNotCached {
		t.Fatalf("empty cache: %v", err)
	}
	want := sampleLatents()
	if err := c.PutLatents(k, want); err != nil {
		t.Fatal(err)
	}
	got, err := c.Latents(k)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v", got)
	}
	// Every part of the key names another entry.
	for _, other := range []LatentKey{
		{ImageHash: "ab", ModelHash: "m1", Bucket: Size{64, 48}, ResizedW: 70, ResizedH: 48, CropLeft: 3},
		{ImageHash: "aa", ModelHash: "m2", Bucket: Size{64, 48}, ResizedW: 70, ResizedH: 48, CropLeft: 3},
		{ImageHash: "aa", ModelHash: "m1", Bucket: Size{48, 64}, ResizedW: 70, ResizedH: 48, CropLeft: 3},
		{ImageHash: "aa", ModelHash: "m1", Bucket: Size{64, 48}, ResizedW: 70, ResizedH: 48, CropLeft: 4},
		{ImageHash: "aa", ModelHash: "m1", Bucket: Size{64, 48}, ResizedW: 70, ResizedH: 48, CropLeft: 3, Flip: true},
	} {
		if c.LatentPath(other) == c.LatentPath(k) {
			t.Errorf("%+v shares the path of %+v", other, k)
		}
		if _, err := c.Latents(other); err != ErrNotCached {
			t.Errorf("%+v: %v", other, err)
		}
	}
	// A file copied under another key's name is refused, not trusted.
	other := k
	other.Flip = true
	os.MkdirAll(filepath.Dir(c.LatentPath(other)), 0o755)
	data, _ := os.ReadFile(c.LatentPath(k))
	writeFile(t, c.LatentPath(other), data)
	if _, err := c.Latents(other); !errors.Is(err, ErrCorrupt) {
		t.Errorf("misplaced file: %v", err)
	}
}

func TestLatentCacheDetectsDamage(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	k := LatentKey{ImageHash: "aa", ModelHash: "m", Bucket: Size{8, 8}, ResizedW: 8, ResizedH: 8}
	path := c.LatentPath(k)
	for name, damage := range map[string]func([]byte) []byte{
		"truncated":   func(b []byte) []byte { return b[:len(b)-10] },
		"flipped bit": func(b []byte) []byte { b[len(b)-5] ^= 0x10; return b },
		"empty":       func([]byte) []byte { return nil },
		"garbage":     func([]byte) []byte { return []byte("hello") },
	} {
		if err := c.PutLatents(k, sampleLatents()); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, damage(data))
		_, err = c.Latents(k)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTextCacheRoundTrip(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	want := &TextEmbeds{Tokens: 3, Dim: 2, Embeds: []float32{1, 2, 3, 4, 5, 6}, Pooled: []float32{7, 8}}
	if err := c.PutText("m", "a cat", want); err != nil {
		t.Fatal(err)
	}
	got, err := c.Text("m", "a cat")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, miss := range [][2]string{{"m", "a cat "}, {"m2", "a cat"}, {"m", ""}} {
		if _, err := c.Text(miss[0], miss[1]); err != ErrNotCached {
			t.Errorf("%q: %v", miss, err)
		}
	}
}

func TestLatentsSample(t *testing.T) {
	l := &Latents{Shape: [3]int{1, 1, 2}, Mean: []float32{1, -2}, Std: []float32{0.5, 2}}
	got, err := l.Sample([]float32{2, -1}, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	// (1 + 0.5·2)·0.1 = 0.2, (−2 + 2·(−1))·0.1 = −0.4
	if d0, d1 := got[0]-0.2, got[1]+0.4; d0*d0 > 1e-12 || d1*d1 > 1e-12 {
		t.Errorf("Sample = %v", got)
	}
	if _, err := l.Sample([]float32{1}, 1); err == nil {
		t.Error("short noise accepted")
	}
}
