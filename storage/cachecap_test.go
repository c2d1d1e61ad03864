package storage

import (
	"strings"
	"testing"
)

func TestGenerationCacheMaxBytes(t *testing.T) {
	db := openTest(t)
	if n, err := db.GenerationCacheMaxBytes(); err != nil || n != DefaultGenerationCacheMaxBytes || DefaultGenerationCacheMaxBytes != 2<<30 {
		t.Fatalf("default cap %d %v", n, err)
	}
	if err := db.SetGenerationCacheMaxBytes(4096); err != nil {
		t.Fatal(err)
	}
	if n, err := db.GenerationCacheMaxBytes(); err != nil || n != 4096 {
		t.Fatalf("cap %d %v, want 4096", n, err)
	}
	for _, bad := range []int64{0, -1} {
		if err := db.SetGenerationCacheMaxBytes(bad); err == nil {
			t.Errorf("cap %d accepted", bad)
		}
	}
	if n, _ := db.GenerationCacheMaxBytes(); n != 4096 {
		t.Fatalf("a refused cap changed the setting to %d", n)
	}
	if err := db.SetSetting(KeyGenerationCacheMaxBytes, "lots"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GenerationCacheMaxBytes(); err == nil || !strings.Contains(err.Error(), db.Path()) {
		t.Fatalf("a damaged setting: %v", err)
	}
}
