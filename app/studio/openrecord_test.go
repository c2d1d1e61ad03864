package studio

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"lorastudio/storage"
)

// dbHistory lists origin:text of rel's revisions straight from the database
// (not through Dataset.History, which records the disk first).
func dbHistory(t *testing.T, s *Studio, d *Dataset, rel string) []string {
	t.Helper()
	im, err := s.DB().ImageByRel(d.ID(), rel)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	revs, err := s.DB().Revisions(im.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range revs {
		out = append(out, string(r.Origin)+":"+r.Text)
	}
	return out
}

// revisionCount is the number of caption revisions of every image of d.
func revisionCount(t *testing.T, s *Studio, d *Dataset) int {
	t.Helper()
	imgs, err := s.DB().Images(d.ID())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, im := range imgs {
		revs, err := s.DB().Revisions(im.ID)
		if err != nil {
			t.Fatal(err)
		}
		n += len(revs)
	}
	return n
}

// reopen closes s and opens a new studio on its data directory and root.
func reopen(t *testing.T, s *Studio, root string) (*Studio, *Dataset) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(s.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	d, err := s2.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	return s2, d
}

func TestCaptionRecordedWhenOpened(t *testing.T) {
	s := newStudio(t)
	root := tutorialDataset(t)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	// Recorded at open, before the studio touched the image.
	if got := dbHistory(t, s, d, "images/b.png"); !slices.Equal(got, []string{"import:orig"}) {
		t.Fatalf("history after open: %v", got)
	}
	// Every image has a row, hashes are filled in on first use only.
	imgs, err := s.DB().Images(d.ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].Hash != "" || imgs[0].Width != 32 {
		t.Fatalf("image rows after open: %+v", imgs)
	}
	// Another program rewrites the caption, then the studio is closed
	// without ever having touched that image.
	capB := filepath.Join(root, "captions", "b.txt")
	writeText(t, capB, "rewritten")
	s2, d2 := reopen(t, s, root)
	want := []string{"import:orig", "external:rewritten"}
	if got := dbHistory(t, s2, d2, "images/b.png"); !slices.Equal(got, want) {
		t.Fatalf("history after the external rewrite: %v, want %v", got, want)
	}
	// The original comes back with Undo, and forward again with Redo ...
	if txt, err := d2.Undo("images/b.png"); err != nil || txt != "orig" || readText(t, capB) != "orig" {
		t.Fatalf("undo: %q %v", txt, err)
	}
	if txt, err := d2.Redo("images/b.png"); err != nil || txt != "rewritten" || readText(t, capB) != "rewritten" {
		t.Fatalf("redo: %q %v", txt, err)
	}
	// ... and with Restore of the imported revision.
	revs, err := d2.History("images/b.png")
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Restore("images/b.png", revs[0].ID); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, capB); got != "orig" {
		t.Fatalf("after restore: %q", got)
	}
	if it, _ := d2.Item("images/b.png"); it.Hash == "" {
		t.Fatal("hash not filled in after the image was used")
	}
	if im, err := s2.DB().ImageByRel(d2.ID(), "images/b.png"); err != nil || im.Hash == "" {
		t.Fatalf("hash not stored after use: %+v %v", im, err)
	}
}

func TestReopenUnchangedAddsNoRevisions(t *testing.T) {
	s := newStudio(t)
	root := tutorialDataset(t)
	writePNG(t, filepath.Join(root, "images", "c.png"), 32, 32, 3)
	writeText(t, filepath.Join(root, "captions", "c.txt"), "see")
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Save("images/c.png", "sea"); err != nil {
		t.Fatal(err)
	}
	n := revisionCount(t, s, d)
	if n != 3 { // import b, import c, manual c
		t.Fatalf("%d revisions, want 3", n)
	}
	if _, err := s.OpenDataset(root); err != nil {
		t.Fatal(err)
	}
	if err := d.Rescan(); err != nil {
		t.Fatal(err)
	}
	s2, d2 := reopen(t, s, root)
	if got := revisionCount(t, s2, d2); got != n {
		t.Fatalf("reopening an unchanged dataset: %d revisions, want %d", got, n)
	}
}

func TestChangedWhileClosedIsExternal(t *testing.T) {
	s := newStudio(t)
	root := tutorialDataset(t)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Save("images/a.png", "mine"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// While the studio is closed: a's caption is edited, b's deleted, and a
	// non-UTF-8 caption appears for a new image.
	capA := filepath.Join(root, "captions", "a.txt")
	writeText(t, capA, "theirs")
	if err := removeFileDurable(filepath.Join(root, "captions", "b.txt")); err != nil {
		t.Fatal(err)
	}
	writePNG(t, filepath.Join(root, "images", "x.png"), 16, 16, 4)
	raw := "caf\xe9"
	writeText(t, filepath.Join(root, "captions", "x.txt"), raw)
	s2, err := Open(s.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	d2, err := s2.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := dbHistory(t, s2, d2, "images/a.png"); !slices.Equal(got, []string{"manual:mine", "external:theirs"}) {
		t.Fatalf("history of a: %v", got)
	}
	if got := dbHistory(t, s2, d2, "images/b.png"); !slices.Equal(got, []string{"import:orig", "external:"}) {
		t.Fatalf("history of b: %v", got)
	}
	if got := dbHistory(t, s2, d2, "images/x.png"); len(got) != 0 {
		t.Fatalf("non-UTF-8 caption recorded: %v", got)
	}
	if got := readText(t, filepath.Join(root, "captions", "x.txt")); got != raw {
		t.Fatalf("non-UTF-8 caption changed: %q", got)
	}
	if it, _ := d2.Item("images/x.png"); it.CaptionErr == nil {
		t.Fatal("non-UTF-8 caption not warned about")
	}
	if txt, err := d2.Undo("images/a.png"); err != nil || txt != "mine" || readText(t, capA) != "mine" {
		t.Fatalf("undo of the external edit: %q %v", txt, err)
	}
	// Rescan picks up a caption written while the dataset is open.
	writePNG(t, filepath.Join(root, "images", "y.png"), 16, 16, 5)
	writeText(t, filepath.Join(root, "captions", "y.txt"), "why")
	if err := d2.Rescan(); err != nil {
		t.Fatal(err)
	}
	if got := dbHistory(t, s2, d2, "images/y.png"); !slices.Equal(got, []string{"import:why"}) {
		t.Fatalf("history of y after rescan: %v", got)
	}
}
