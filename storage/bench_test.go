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

// BenchmarkRecordDiskCaptions5000 records a dataset of 5,000 images with 4,000 captions into
// a fresh database (first open: 5,000 image rows, 4,000 imports) and then again unchanged
// (a reopen: reads only).
func BenchmarkRecordDiskCaptions5000(b *testing.B) {
	caps := make([]DiskCaption, 5000)
	for i := range caps {
		caps[i] = DiskCaption{Rel: fmt.Sprintf("%d_set/img%05d.png", 1+i%3, i), Width: 1024, Height: 1024, Recordable: true}
		if i%5 != 0 {
			caps[i].Text = "mychar, diagram, api gateway"
		}
	}
	for _, phase := range []string{"first", "unchanged"} {
		b.Run(phase, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				db, err := Open(filepath.Join(b.TempDir(), "studio.db"))
				if err != nil {
					b.Fatal(err)
				}
				ds, err := db.EnsureDataset("/data/bench", "kohya")
				if err != nil {
					b.Fatal(err)
				}
				if phase == "unchanged" {
					if _, _, err := db.RecordDiskCaptions(ds.ID, caps); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				_, added, err := db.RecordDiskCaptions(ds.ID, caps)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if want := map[string]int{"first": 4000, "unchanged": 0}[phase]; added != want {
					b.Fatalf("added %d, want %d", added, want)
				}
				db.Close()
				b.StartTimer()
			}
		})
	}
}
