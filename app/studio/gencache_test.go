package studio

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"lorastudio/storage"
)

// cacheKeys lists the generation cache's keys, least recently used first.
func cacheKeys(t *testing.T, s *Studio) []string {
	t.Helper()
	es, err := s.DB().CacheEntries()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Key)
	}
	return out
}

// fileSize returns the size of a file that must exist.
func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestGenerationCacheEviction generates three demo images (real PNGs through
// Generate) under a cap of a few KB: the least recently used entry is
// evicted, a cache hit counts as use, the history and the user's own output
// files stay, and an evicted request is generated again.
func TestGenerationCacheEviction(t *testing.T) {
	s := openStudio(t)
	if n, err := s.GenerationCacheMaxBytes(); err != nil || n != storage.DefaultGenerationCacheMaxBytes {
		t.Fatalf("default cap %d %v", n, err)
	}
	dir := t.TempDir()
	gen := func(name string, seed uint64) GenerateResult {
		t.Helper()
		res, err := s.Generate(context.Background(), demoRequest(filepath.Join(dir, name), seed), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.CacheErr != nil {
			t.Fatal(res.CacheErr)
		}
		return res
	}
	stored := func(r GenerateResult) string { return filepath.Join(s.DataDir(), GenerationsDir, r.CacheKey+".png") }

	a := gen("a.png", 1)
	b := gen("b.png", 2)
	sa, sb := fileSize(t, stored(a)), fileSize(t, stored(b))
	if sa < 1000 || sa > 64<<10 {
		t.Fatalf("demo PNG of %d bytes: not the few KB this test assumes", sa)
	}
	// A cache hit on a makes b the least recently used.
	if hit := gen("a-again.png", 1); !hit.FromCache {
		t.Fatal("repeating a was not a cache hit")
	}
	if got := cacheKeys(t, s); !slices.Equal(got, []string{b.CacheKey, a.CacheKey}) {
		t.Fatalf("LRU order %v, want b then a", got)
	}
	// A cap of a few KB: a and a third image fit, a, b and a third do not.
	limit := sa + 3*max(sa, sb)/2
	if err := s.DB().SetGenerationCacheMaxBytes(limit); err != nil {
		t.Fatal(err)
	}
	c := gen("c.png", 3)
	sc := fileSize(t, stored(c))
	if sa+sc > limit || sa+sb+sc <= limit {
		t.Fatalf("sizes a %d b %d c %d do not suit the cap %d", sa, sb, sc, limit)
	}
	if got := cacheKeys(t, s); !slices.Equal(got, []string{a.CacheKey, c.CacheKey}) {
		t.Fatalf("cache after c: %v, want a and c (b evicted)", got)
	}
	assertNoFile(t, stored(b))
	fileSize(t, stored(a))
	// The history keeps every generation with its parameters, and the
	// user's own copies are untouched.
	hist, err := s.Generations(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 4 || hist[2].Seed != 2 || hist[2].CacheKey != b.CacheKey || hist[2].Prompt != "a red cube" || hist[2].OutputPath != b.Path {
		t.Fatalf("history %+v", hist)
	}
	for _, name := range []string{"a.png", "b.png", "a-again.png", "c.png"} {
		fileSize(t, filepath.Join(dir, name))
	}

	// b again: evicted, so generated again (same bytes), and now a is the
	// least recently used and goes.
	b2 := gen("b2.png", 2)
	if b2.FromCache || b2.CacheKey != b.CacheKey {
		t.Fatalf("b after eviction %+v", b2)
	}
	first, _ := os.ReadFile(filepath.Join(dir, "b.png"))
	if again, _ := os.ReadFile(b2.Path); !bytes.Equal(first, again) {
		t.Fatal("regenerating the evicted request gave other bytes")
	}
	if got := cacheKeys(t, s); !slices.Equal(got, []string{c.CacheKey, b.CacheKey}) {
		t.Fatalf("cache after b again: %v, want c and b", got)
	}
	assertNoFile(t, stored(a))

	// Lowering the cap evicts at once; the newest survives only if it fits.
	if err := s.SetGenerationCacheMaxBytes(sb); err != nil {
		t.Fatal(err)
	}
	if got := cacheKeys(t, s); !slices.Equal(got, []string{b.CacheKey}) {
		t.Fatalf("cache after lowering the cap: %v, want b", got)
	}
	assertNoFile(t, stored(c))
	if err := s.SetGenerationCacheMaxBytes(0); err == nil {
		t.Fatal("a cap of 0 was accepted")
	}
	// An entry whose file vanished is dropped; files outside generations/
	// are never deleted even when an entry points at them.
	outside := filepath.Join(dir, "outside.png")
	if err := os.WriteFile(outside, first, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().CachePut("outside", outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(stored(b)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGenerationCacheMaxBytes(1); err != nil {
		t.Fatal(err)
	}
	if got := cacheKeys(t, s); !slices.Equal(got, []string{"outside"}) {
		t.Fatalf("cache %v, want only the outside entry", got)
	}
	fileSize(t, outside)
	if hist, _ := s.Generations(0); len(hist) != 5 {
		t.Fatalf("%d history rows after eviction, want 5", len(hist))
	}
}
