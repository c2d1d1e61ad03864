package storage

import (
	"path/filepath"
	"testing"
	"time"
)

// TestFileHashes checks that a stored hash is returned only for the size and
// modification time it was recorded with, survives reopening, is replaced by a
// newer record, and that a generation's from-cache flag round-trips.
func TestFileHashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "studio.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1700000000, 123456789)
	if _, ok, err := db.FileHash("/m/unet.safetensors", "sha256", 10, mt); err != nil || ok {
		t.Fatalf("hash of an unknown file: ok=%v err=%v", ok, err)
	}
	if err := db.PutFileHash(FileHash{Path: "/m/unet.safetensors", Algo: "sha256", Size: 10, MTime: mt, Hash: "aa"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutFileHash(FileHash{Path: "/m/unet.safetensors", Algo: "addnet", Size: 10, MTime: mt, Hash: "bb"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutFileHash(FileHash{Path: "/m/x", Algo: "sha256", Size: 1, MTime: mt}); err == nil {
		t.Fatal("PutFileHash accepted an empty hash")
	}
	db.Close()
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		algo string
		size int64
		mt   time.Time
		want string
		ok   bool
	}{
		{"sha256", 10, mt, "aa", true},
		{"addnet", 10, mt, "bb", true},
		{"sha256", 11, mt, "", false},                      // grew
		{"sha256", 10, mt.Add(time.Nanosecond), "", false}, // touched
		{"md5", 10, mt, "", false},
	} {
		h, ok, err := db.FileHash("/m/unet.safetensors", c.algo, c.size, c.mt)
		if err != nil || ok != c.ok || h != c.want {
			t.Errorf("FileHash(%s, %d, %v) = %q %v %v, want %q %v", c.algo, c.size, c.mt, h, ok, err, c.want, c.ok)
		}
	}
	mt2 := mt.Add(time.Second)
	if err := db.PutFileHash(FileHash{Path: "/m/unet.safetensors", Algo: "sha256", Size: 12, MTime: mt2, Hash: "cc"}); err != nil {
		t.Fatal(err)
	}
	if h, ok, _ := db.FileHash("/m/unet.safetensors", "sha256", 12, mt2); !ok || h != "cc" {
		t.Errorf("after re-hashing: %q %v", h, ok)
	}
	if _, ok, _ := db.FileHash("/m/unet.safetensors", "sha256", 10, mt); ok {
		t.Error("the old record still answers")
	}

	for _, fromCache := range []bool{false, true} {
		g, err := db.AddGeneration(Generation{Model: "m", Prompt: "p", Sampler: "euler", Steps: 1, CFG: 1, Width: 8, Height: 8,
			OutputPath: "/g.png", CacheKey: "k", FromCache: fromCache})
		if err != nil || g.FromCache != fromCache {
			t.Fatalf("AddGeneration(FromCache %v) = %+v, %v", fromCache, g, err)
		}
		back, err := db.Generation(g.ID)
		if err != nil || back.FromCache != fromCache {
			t.Fatalf("Generation(%d) = %+v, %v", g.ID, back, err)
		}
	}
}
