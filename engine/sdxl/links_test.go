package sdxl

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// hubSnapshot lays out the diffusers folder src as the Hugging Face hub
// cache does: every file once under blobs/, and snapshots/<rev>/<path> a
// relative link to it (unet/x.safetensors -> ../../../blobs/<name>). It
// returns the snapshot folder.
func hubSnapshot(t *testing.T, src, cache string) string {
	t.Helper()
	snap := filepath.Join(cache, "snapshots", "rev1")
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		blob := filepath.Join(cache, "blobs", fmt.Sprintf("%04d-%s", n, filepath.Base(p)))
		if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(blob, b, 0o644); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		link := filepath.Join(snap, rel)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		target, _ := filepath.Rel(filepath.Dir(link), blob)
		n++
		return os.Symlink(target, link)
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestOpenSourceThroughLinks opens a diffusers folder whose files are links
// into blobs/ (the hub cache), and a link to that folder, and reads the same
// configs and tensor bytes as from the plain folder.
func TestOpenSourceThroughLinks(t *testing.T) {
	dir, _ := tinyPaths(t)
	tmp := t.TempDir()
	snap := hubSnapshot(t, dir, filepath.Join(tmp, "hub"))
	folderLink := filepath.Join(tmp, "tiny")
	if err := os.Symlink(snap, folderLink); err != nil {
		t.Fatal(err)
	}
	plain, err := OpenSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for _, p := range []string{snap, folderLink, filepath.Join(folderLink, "model_index.json")} {
		s, err := OpenSource(p)
		if err != nil {
			t.Fatalf("OpenSource(%s): %v", p, err)
		}
		if err := s.Check(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		if s.Format() != FormatDiffusers {
			t.Errorf("%s: format %q", p, s.Format())
		}
		for _, comp := range Components {
			ps := plain.Params(comp)
			if len(ps) == 0 || len(s.Params(comp)) != len(ps) {
				t.Fatalf("%s %s: %d parameters, the plain folder has %d", p, comp, len(s.Params(comp)), len(ps))
			}
			last := ps[len(ps)-1].Name
			a, err := plain.Tensor(comp, last)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.Tensor(comp, last)
			if err != nil {
				t.Fatal(err)
			}
			ab, err := a.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			bb, err := b.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ab, bb) {
				t.Errorf("%s %s %s: other bytes than the plain folder's", p, comp, last)
			}
		}
		s.Close()
	}
}
