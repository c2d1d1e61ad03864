package studio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// symlink makes link point at target (relative targets are kept relative).
func symlink(t *testing.T, target, link string) {
	t.Helper()
	mkdirs(t, link)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// hubCache lays out the folder src the way the Hugging Face hub cache keeps
// a download: every file once under blobs/<sha256>, and
// snapshots/<rev>/<path> a relative link to it. It returns the snapshot.
func hubCache(t *testing.T, src, cache string) string {
	t.Helper()
	repo := filepath.Join(cache, "models--test--sdxl-tiny")
	snap := filepath.Join(repo, "snapshots", "0123abcd")
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		blob := filepath.Join(repo, "blobs", hex.EncodeToString(sum[:]))
		writeBytes(t, blob, b)
		rel, _ := filepath.Rel(src, p)
		link := filepath.Join(snap, rel)
		target, _ := filepath.Rel(filepath.Dir(link), blob) // ../../../blobs/<sha> for unet/x
		symlink(t, target, link)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no files in %s", src)
	}
	writeText(t, filepath.Join(repo, "refs", "main"), "0123abcd")
	return snap
}

// TestHashAndGenerateThroughHubCacheLinks checks a diffusers folder whose
// files are links into blobs/ (the hub cache), and a model folder that is
// itself a link: both hash as the plain folder does and generate the same
// image.
func TestHashAndGenerateThroughHubCacheLinks(t *testing.T) {
	s := openStudio(t)
	model := filepath.Join(fixtureDir(t), "model")
	tmp := t.TempDir()
	snap := hubCache(t, model, filepath.Join(tmp, "hub"))
	if target, err := os.Readlink(filepath.Join(snap, "unet", "diffusion_pytorch_model.safetensors")); err != nil || !strings.HasPrefix(target, filepath.Join("..", "..", "..", "blobs")) {
		t.Fatalf("the layout is not the hub cache's: unet weights link to %q (%v)", target, err)
	}
	folderLink := filepath.Join(tmp, "models", "tiny")
	symlink(t, snap, folderLink)

	want, err := s.HashPath(model)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{snap, folderLink} {
		got, err := s.HashPath(p)
		if err != nil {
			t.Fatalf("HashPath(%s): %v", p, err)
		}
		if got != want {
			t.Fatalf("HashPath(%s) = %s, the same files copied hash to %s", p, got, want)
		}
	}

	// The pixels, not the files: the parameters chunk names the model folder.
	gen := func(m, out string) []byte {
		t.Helper()
		req := demoRequest(filepath.Join(tmp, out), 11)
		req.Model, req.Sampler, req.NoCache = m, "euler", true
		if _, err := s.Generate(context.Background(), req, nil); err != nil {
			t.Fatalf("generate with %s: %v", m, err)
		}
		f, err := os.Open(req.Out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := png.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		var pix []byte
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bl, a := img.At(x, y).RGBA()
				pix = append(pix, byte(r>>8), byte(g>>8), byte(bl>>8), byte(a>>8))
			}
		}
		return pix
	}
	plain := gen(model, "plain.png")
	if linked := gen(folderLink, "linked.png"); !bytes.Equal(plain, linked) {
		t.Fatal("the hub-cache layout generated another image than the plain folder")
	}
}

// TestLinkLoopsAreRefused checks that a folder link leading back up, and a
// link to itself, stop hashing and dataset scans with ErrLinkLoop naming the
// link, instead of walking forever.
func TestLinkLoopsAreRefused(t *testing.T) {
	s := openStudio(t)
	tmp := t.TempDir()

	up := filepath.Join(tmp, "model")
	writeText(t, filepath.Join(up, "unet", "config.json"), "{}")
	upLink := filepath.Join(up, "unet", "again")
	symlink(t, "..", upLink)
	if _, err := s.HashPath(up); !errors.Is(err, ErrLinkLoop) || !strings.Contains(err.Error(), upLink) {
		t.Fatalf("HashPath of a folder with a link back up: %v, want ErrLinkLoop naming %s", err, upLink)
	}

	ds := filepath.Join(tmp, "ds")
	writePNG(t, filepath.Join(ds, "a.png"), 16, 16, 1)
	self := filepath.Join(ds, "self.png")
	symlink(t, "self.png", self)
	if _, err := s.OpenDataset(ds); !errors.Is(err, ErrLinkLoop) || !strings.Contains(err.Error(), self) {
		t.Fatalf("OpenDataset with a self link: %v, want ErrLinkLoop naming %s", err, self)
	}
	if _, err := s.HashPath(self); !errors.Is(err, ErrLinkLoop) {
		t.Fatalf("HashPath of a self link: %v, want ErrLinkLoop", err)
	}
	if err := os.Remove(self); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(ds, "10_x", "loop")
	symlink(t, filepath.Join("..", ".."), loop)
	if _, err := s.OpenDataset(ds); !errors.Is(err, ErrLinkLoop) || !strings.Contains(err.Error(), loop) {
		t.Fatalf("OpenDataset with a link to an ancestor: %v, want ErrLinkLoop naming %s", err, loop)
	}

	dangling := filepath.Join(tmp, "m2", "unet", "diffusion_pytorch_model.safetensors")
	symlink(t, filepath.Join("..", "..", "blobs", "missing"), dangling)
	if _, err := s.HashPath(filepath.Join(tmp, "m2")); err == nil || !strings.Contains(err.Error(), dangling) {
		t.Fatalf("HashPath with a dangling link: %v, want an error naming %s", err, dangling)
	}
}

// TestDatasetThroughLinks opens a dataset given as a link, with a linked
// repeat folder, and checks which caption writes go through links: to a
// file inside the dataset (written there, the link kept) or refused when
// the link leads outside (nothing written, nothing recorded).
func TestDatasetThroughLinks(t *testing.T) {
	s := openStudio(t)
	tmp := t.TempDir()
	real := filepath.Join(tmp, "real")
	writePNG(t, filepath.Join(real, "a.png"), 16, 16, 1)
	writeText(t, filepath.Join(real, "a.txt"), "a cat")
	writePNG(t, filepath.Join(real, "b.png"), 16, 16, 2)
	writeText(t, filepath.Join(real, "shared", "b.txt"), "a dog")
	symlink(t, filepath.Join("shared", "b.txt"), filepath.Join(real, "b.txt"))
	outside := filepath.Join(tmp, "outside")
	writePNG(t, filepath.Join(outside, "c.png"), 16, 16, 3)
	writeText(t, filepath.Join(outside, "c.txt"), "a bird")
	symlink(t, outside, filepath.Join(real, "5_birds"))

	link := filepath.Join(tmp, "link")
	symlink(t, real, link)
	d, err := s.OpenDataset(link)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, it := range d.Items() {
		if it.Err != nil {
			t.Fatalf("%s: %v", it.Rel, it.Err)
		}
		got[it.Rel] = it.Caption
	}
	want := map[string]string{"a.png": "a cat", "b.png": "a dog", "5_birds/c.png": "a bird"}
	if len(got) != len(want) {
		t.Fatalf("items %v, want %v", got, want)
	}
	for rel, c := range want {
		if got[rel] != c {
			t.Fatalf("items %v, want %v", got, want)
		}
	}
	if it, _ := d.Item("5_birds/c.png"); it.Repeats != 5 {
		t.Fatalf("linked repeat folder: repeats %d, want 5", it.Repeats)
	}

	// Through the linked root: written to the real file.
	if err := d.Save("a.png", "a black cat"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(real, "a.txt")); string(b) != "a black cat" {
		t.Fatalf("a.txt = %q", b)
	}
	// A caption linked to a file inside the dataset: the target changes, the link stays.
	if err := d.Save("b.png", "a brown dog"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(real, "shared", "b.txt")); string(b) != "a brown dog" {
		t.Fatalf("shared/b.txt = %q", b)
	}
	if st, err := os.Lstat(filepath.Join(real, "b.txt")); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("b.txt is no longer a link: %v %v", st, err)
	}
	if _, err := d.Undo("b.png"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(real, "shared", "b.txt")); string(b) != "a dog" {
		t.Fatalf("shared/b.txt after undo = %q", b)
	}
	// A caption reached through a link leading out of the dataset: refused.
	before, err := d.History("5_birds/c.png")
	if err != nil {
		t.Fatal(err)
	}
	err = d.Save("5_birds/c.png", "a red bird")
	if !errors.Is(err, ErrLinkOutside) || !strings.Contains(err.Error(), filepath.Join(outside, "c.txt")) {
		t.Fatalf("saving through a link leading outside: %v, want ErrLinkOutside naming the target", err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "c.txt")); string(b) != "a bird" {
		t.Fatalf("outside c.txt = %q after a refused save", b)
	}
	after, err := d.History("5_birds/c.png")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("a refused save recorded a revision: %d → %d", len(before), len(after))
	}
	if it, _ := d.Item("5_birds/c.png"); it.Caption != "a bird" {
		t.Fatalf("item caption %q after a refused save", it.Caption)
	}
}
