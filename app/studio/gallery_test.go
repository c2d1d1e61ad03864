package studio

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"lorastudio/storage"
)

// TestGalleryReuseDeleteRestore generates an image on the demo model, finds it in the
// gallery with every parameter, regenerates it from GalleryItem.Request (the same cache
// key, so the same picture from the cache), favourites it, deletes it (the file moves to
// the trash, the image leaves the gallery) and restores it byte for byte.
func TestGalleryReuseDeleteRestore(t *testing.T) {
	s := openStudio(t)
	out := filepath.Join(t.TempDir(), "a.png")
	req := demoRequest(out, 7)
	neg := "blurry"
	req.Negative = &neg
	res, err := s.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	items, err := s.Gallery(GalleryFilter{}, 0, 0)
	if err != nil || len(items) != 1 {
		t.Fatalf("gallery = %+v, %v", items, err)
	}
	it := items[0]
	if it.ID != res.GenerationID || it.File != out || it.Seed != 7 || it.Prompt != req.Prompt || it.Negative == nil ||
		*it.Negative != "blurry" || it.Steps != 2 || it.Width != 64 || it.Height != 64 || it.Sampler != req.Sampler ||
		it.Model != res.Model || it.Cached || it.Favourite || it.Deleted {
		t.Fatalf("item = %+v", it)
	}
	if ModelLabel(it.Model) == "" || ModelLabel(it.Model) == filepath.Base(it.Model) {
		t.Errorf("ModelLabel(demo) = %q", ModelLabel(it.Model))
	}

	again := it.Request()
	again.Out, again.Device, again.AppVersion = filepath.Join(t.TempDir(), "b.png"), "cpu", "test"
	res2, err := s.Generate(context.Background(), again, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.FromCache || res2.CacheKey != res.CacheKey {
		t.Fatalf("reusing the parameters: from cache %v, key %s, want %s", res2.FromCache, res2.CacheKey, res.CacheKey)
	}
	if n, err := s.GalleryCount(GalleryFilter{}); err != nil || n != 2 {
		t.Fatalf("count = %d, %v", n, err)
	}
	first, err := s.GalleryItem(res.GenerationID)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := s.GalleryItem(res2.GenerationID)
	if !second.Cached {
		t.Error("the regenerated image is not marked as a cache hit")
	}

	if err := s.SetFavourite(first.ID, true); err != nil {
		t.Fatal(err)
	}
	if favs, _ := s.Gallery(GalleryFilter{Favourites: true}, 0, 0); len(favs) != 1 || favs[0].ID != first.ID {
		t.Errorf("favourites = %+v", favs)
	}

	before, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGeneration(first.ID); err != nil {
		t.Fatal(err)
	}
	assertNoFile(t, out)
	trash := filepath.Join(s.DataDir(), TrashDir)
	ents, err := os.ReadDir(trash)
	if err != nil || len(ents) != 1 {
		t.Fatalf("trash %s = %v, %v", trash, ents, err)
	}
	if live, _ := s.Gallery(GalleryFilter{}, 0, 0); len(live) != 1 || live[0].ID != second.ID {
		t.Errorf("after delete the gallery = %+v", live)
	}
	if del, _ := s.Gallery(GalleryFilter{Trash: true}, 0, 0); len(del) != 1 || !del[0].Deleted {
		t.Errorf("trash listing = %+v", del)
	}

	// A file that took the deleted one's name is never overwritten by a restore.
	writeText(t, out, "someone else's file")
	if err := s.RestoreGeneration(first.ID); err == nil {
		t.Fatal("restore over an existing file succeeded")
	}
	if readText(t, out) != "someone else's file" {
		t.Fatal("restore overwrote a file")
	}
	os.Remove(out)
	if err := s.RestoreGeneration(first.ID); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("restored file differs (%v)", err)
	}
	if ents, _ := os.ReadDir(trash); len(ents) != 0 {
		t.Errorf("trash still holds %v", ents)
	}
	if it, _ := s.GalleryItem(first.ID); it.Deleted || !it.Favourite {
		t.Errorf("restored item = %+v", it)
	}

	// An image whose file is already gone can still be deleted (and restored: nothing to move).
	os.Remove(again.Out)
	if err := s.DeleteGeneration(second.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreGeneration(second.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGeneration(999); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleting a missing generation: %v, want ErrNotFound", err)
	}
	if models, _ := s.RecentModels(5); len(models) != 1 || models[0] != res.Model {
		t.Errorf("RecentModels = %v", models)
	}
}

// TestGallerySearchNeedsFTS checks the studio passes the storage error through: a search
// works in a build with FTS5 and fails naming the missing feature otherwise.
func TestGallerySearchNeedsFTS(t *testing.T) {
	s := openStudio(t)
	for _, p := range []string{"a red car", "a blue cat"} {
		if _, err := s.DB().AddGeneration(storage.Generation{Model: "/m", Prompt: p, Sampler: "euler", Steps: 1, CFG: 1,
			Width: 8, Height: 8, OutputPath: "/o/" + p + ".png"}); err != nil {
			t.Fatal(err)
		}
	}
	items, err := s.Gallery(GalleryFilter{Search: "cat"}, 0, 0)
	if !storage.FullTextSearch() {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte("sqlite_fts5")) {
			t.Fatalf("search without FTS5: %v, want an error naming the sqlite_fts5 tag", err)
		}
		return
	}
	if err != nil || len(items) != 1 || items[0].Prompt != "a blue cat" {
		t.Fatalf("search cat = %+v, %v", items, err)
	}
}
