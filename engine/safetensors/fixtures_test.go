package safetensors

import (
	"os"
	"path/filepath"
	"testing"
)

// fixtureRoot returns the fixture set: $LORASTUDIO_FIXTURES, or
// ../shared/fixtures/sdxl-tiny relative to the repository root (the directory
// holding go.mod). A missing set fails the test: the fixtures are the judge.
func fixtureRoot(t testing.TB) string {
	t.Helper()
	root := os.Getenv("LORASTUDIO_FIXTURES")
	if root == "" {
		dir, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				t.Fatal("no go.mod above the test directory; set LORASTUDIO_FIXTURES")
			}
			dir = parent
		}
		root = filepath.Join(dir, "..", "shared", "fixtures", "sdxl-tiny")
	}
	if _, err := os.Stat(filepath.Join(root, "model", "model_index.json")); err != nil {
		t.Fatalf("fixture set not found at %s (set LORASTUDIO_FIXTURES): %v", root, err)
	}
	return root
}
