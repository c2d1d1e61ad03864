package lora

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/sdxl"
)

// TestOpenPeftFolderThroughLinks opens a peft adapter folder whose files are
// links (the hub cache's layout) and a link to that folder: both read the
// layers of the plain folder, under the name the user gave the folder.
func TestOpenPeftFolderThroughLinks(t *testing.T) {
	root := fixtures.Root(t)
	cfg, err := sdxl.LoadConfig(filepath.Join(root, "model"))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "lora", "peft")
	plain, err := Open(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	linked := filepath.Join(tmp, "snapshot")
	if err := os.Mkdir(linked, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{peftConfigFile, peftWeightsFile} {
		abs, err := filepath.Abs(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(linked, name)); err != nil {
			t.Fatal(err)
		}
	}
	folderLink := filepath.Join(tmp, "my_style")
	if err := os.Symlink(linked, folderLink); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, name string }{{linked, "snapshot"}, {folderLink, "my_style"}} {
		l, err := Open(c.path, cfg)
		if err != nil {
			t.Fatalf("Open(%s): %v", c.path, err)
		}
		if l.Format != FormatPEFT || l.Name != c.name || !slices.Equal(l.Keys(), plain.Keys()) {
			t.Fatalf("Open(%s): format %q name %q, %d layers; the plain folder gives %q, %d layers",
				c.path, l.Format, l.Name, len(l.Layers), plain.Format, len(plain.Layers))
		}
	}
}
