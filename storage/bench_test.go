package storage

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkSaveCaption measures one caption save (a write transaction with fsync, WAL,
// synchronous=FULL) on a real file.
func BenchmarkSaveCaption(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "studio.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ds, err := db.EnsureDataset("/data/bench", "sidecar-txt")
	if err != nil {
		b.Fatal(err)
	}
	im, err := db.EnsureImage(ds.ID, "a.png", "h", 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.SaveCaption(im.ID, fmt.Sprint("caption ", i), OriginManual, 0, func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRevisions measures reading a 1000-revision history.
func BenchmarkRevisions(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "studio.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ds, _ := db.EnsureDataset("/data/bench", "sidecar-txt")
	im, _ := db.EnsureImage(ds.ID, "a.png", "h", 1, 1)
	for i := 0; i < 1000; i++ {
		if _, err := db.SaveCaption(im.ID, fmt.Sprint("a photo of a cat, caption number ", i), OriginManual, 0, func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		revs, err := db.Revisions(im.ID)
		if err != nil || len(revs) != 1000 {
			b.Fatal(len(revs), err)
		}
	}
}
