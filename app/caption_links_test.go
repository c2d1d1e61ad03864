package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCaptionCLIDatasetLink lists a dataset given as a symbolic link (it
// used to print [] silently), and refuses one with a link loop, naming the
// link, with exit code 1.
func TestCaptionCLIDatasetLink(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	real := filepath.Join(tmp, "real")
	writeTestPNG(t, filepath.Join(real, "images", "a.png"), 32, 16)
	if err := os.MkdirAll(filepath.Join(real, "captions"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "captions", "a.txt"), []byte("a cat"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tmp, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	got := listJSON(t, data, link)
	if len(got) != 1 || got[0].Image != "images/a.png" || got[0].Caption == nil || *got[0].Caption != "a cat" || got[0].Width != 32 {
		t.Fatalf("caption list of a linked dataset: %+v", got)
	}

	loop := filepath.Join(real, "images", "again")
	if err := os.Symlink("..", loop); err != nil {
		t.Fatal(err)
	}
	code, out, errs := captionRun(t, "caption", "list", link, "--data-dir", data)
	if code != 1 || !strings.Contains(errs, "symbolic link loop") || !strings.Contains(errs, filepath.Join(link, "images", "again")) {
		t.Fatalf("caption list with a link loop: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
}
