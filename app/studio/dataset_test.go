package studio

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"lorastudio/storage"
)

// newStudio opens a studio on a fresh data directory.
func newStudio(t *testing.T) *Studio {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tutorialDataset makes images/a.png (no caption) and images/b.png (caption "orig").
func tutorialDataset(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "images", "a.png"), 32, 32, 1)
	writePNG(t, filepath.Join(root, "images", "b.png"), 32, 32, 2)
	writeText(t, filepath.Join(root, "captions", "b.txt"), "orig")
	return root
}

// origins lists the origins of rel's history.
func origins(t *testing.T, d *Dataset, rel string) []string {
	t.Helper()
	revs, err := d.History(rel)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range revs {
		out = append(out, string(r.Origin)+":"+r.Text)
	}
	return out
}

func TestOpenDatasetAndLastDataset(t *testing.T) {
	s := newStudio(t)
	if _, ok := s.LastDataset(); ok {
		t.Fatal("fresh studio has a last dataset")
	}
	root := tutorialDataset(t)
	writeText(t, filepath.Join(root, "notes.md"), "x")
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	if d.Layout() != LayoutTutorial || d.Root() != root {
		t.Fatalf("layout %q root %q", d.Layout(), d.Root())
	}
	if c, n := d.Progress(); c != 1 || n != 2 {
		t.Fatalf("progress %d/%d, want 1/2", c, n)
	}
	if !slices.Equal(d.Others(), []string{"notes.md"}) {
		t.Fatalf("others %v", d.Others())
	}
	if last, ok := s.LastDataset(); !ok || last != root {
		t.Fatalf("last dataset %q %v", last, ok)
	}
	// A second studio on the same data directory remembers it too.
	s2, err := Open(s.DataDir())
	if err == nil {
		defer s2.Close()
		if last, ok := s2.LastDataset(); !ok || last != root {
			t.Fatalf("reopened: last dataset %q %v", last, ok)
		}
	} else {
		t.Fatal(err)
	}
	// Items are snapshots: changing one does not change the dataset.
	it, _ := d.Item("images/b.png")
	it.Caption = "scribble"
	if again, _ := d.Item("images/b.png"); again.Caption != "orig" {
		t.Fatalf("snapshot leaked: %q", again.Caption)
	}
	if _, err := s.OpenDataset(filepath.Join(root, "missing")); err == nil {
		t.Fatal("opening a missing folder succeeded")
	}
}

func TestSaveUndoRedoHistoryRestore(t *testing.T) {
	s := newStudio(t)
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "images", "a.png"), 32, 32, 1)
	writePNG(t, filepath.Join(root, "images", "b.png"), 32, 32, 2)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	capA := filepath.Join(root, "captions", "a.txt")
	// captions/ does not exist yet: the first save creates it.
	if err := d.Save("images/a.png", "one"); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, capA); got != "one" {
		t.Fatalf("after save: %q", got)
	}
	if err := d.Save("images/a.png", "two"); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, capA); got != "two" {
		t.Fatalf("after second save: %q", got)
	}
	if c, _ := d.Progress(); c != 1 {
		t.Fatalf("progress %d", c)
	}
	// Saving the same text again records nothing.
	if err := d.Save("images/a.png", "two"); err != nil {
		t.Fatal(err)
	}
	txt, err := d.Undo("images/a.png")
	if err != nil || txt != "one" || readText(t, capA) != "one" {
		t.Fatalf("undo 1: %q %v, disk %q", txt, err, readText(t, capA))
	}
	txt, err = d.Undo("images/a.png")
	if err != nil || txt != "" {
		t.Fatalf("undo 2: %q %v", txt, err)
	}
	assertNoFile(t, capA) // back to "no caption"
	if it, _ := d.Item("images/a.png"); it.HasCaption {
		t.Fatal("item still has a caption after undoing its first save")
	}
	if _, err := d.Undo("images/a.png"); !errors.Is(err, storage.ErrNothingToUndo) {
		t.Fatalf("undo 3: %v", err)
	}
	if txt, err := d.Redo("images/a.png"); err != nil || txt != "one" || readText(t, capA) != "one" {
		t.Fatalf("redo 1: %q %v", txt, err)
	}
	if txt, err := d.Redo("images/a.png"); err != nil || txt != "two" || readText(t, capA) != "two" {
		t.Fatalf("redo 2: %q %v", txt, err)
	}
	if _, err := d.Redo("images/a.png"); !errors.Is(err, storage.ErrNothingToRedo) {
		t.Fatalf("redo 3: %v", err)
	}
	want := []string{"manual:one", "manual:two", "undo:one", "undo:", "redo:one", "redo:two"}
	if got := origins(t, d, "images/a.png"); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	revs, _ := d.History("images/a.png")
	if err := d.Restore("images/a.png", revs[0].ID); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, capA); got != "one" {
		t.Fatalf("after restore: %q", got)
	}
	if it, _ := d.Item("images/a.png"); it.Caption != "one" || it.Hash == "" {
		t.Fatalf("item after restore: %+v", it)
	}
	if err := d.Save("images/nope.png", "x"); err == nil || !strings.Contains(err.Error(), "images/nope.png") {
		t.Fatalf("save of a missing image: %v", err)
	}
	if err := d.Save("images/a.png", "bad \xff"); !errors.Is(err, ErrNotUTF8) {
		t.Fatalf("invalid UTF-8 save: %v", err)
	}
}

func TestImportedCaptionIsUndoFloor(t *testing.T) {
	s := newStudio(t)
	root := tutorialDataset(t)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	capB := filepath.Join(root, "captions", "b.txt")
	if err := d.Save("images/b.png", "edited"); err != nil {
		t.Fatal(err)
	}
	if got := origins(t, d, "images/b.png"); !slices.Equal(got, []string{"import:orig", "manual:edited"}) {
		t.Fatalf("history %v", got)
	}
	if txt, err := d.Undo("images/b.png"); err != nil || txt != "orig" || readText(t, capB) != "orig" {
		t.Fatalf("undo: %q %v", txt, err)
	}
	if _, err := d.Undo("images/b.png"); !errors.Is(err, storage.ErrNothingToUndo) {
		t.Fatalf("undo past the imported caption: %v", err)
	}
	if got := readText(t, capB); got != "orig" {
		t.Fatalf("disk %q", got)
	}
	// History survives reopening the dataset in a new studio.
	s.Close()
	s2, err := Open(s.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	d2, err := s2.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	if txt, err := d2.Redo("images/b.png"); err != nil || txt != "edited" || readText(t, capB) != "edited" {
		t.Fatalf("redo after reopen: %q %v", txt, err)
	}
}

func TestExternalChangeIsAConflict(t *testing.T) {
	s := newStudio(t)
	root := tutorialDataset(t)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	capB := filepath.Join(root, "captions", "b.txt")
	if err := d.Save("images/b.png", "mine"); err != nil {
		t.Fatal(err)
	}
	writeText(t, capB, "theirs") // another program
	err = d.Save("images/b.png", "mine again")
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.DiskText != "theirs" || ce.Rel != "images/b.png" || !strings.Contains(err.Error(), capB) {
		t.Fatalf("save after external change: %v", err)
	}
	if got := readText(t, capB); got != "theirs" {
		t.Fatalf("external text overwritten: %q", got)
	}
	if _, err := d.Undo("images/b.png"); !errors.As(err, &ce) {
		t.Fatalf("undo after external change: %v", err)
	}
	changed, txt, err := d.CheckDisk("images/b.png")
	if err != nil || !changed || txt != "theirs" {
		t.Fatalf("CheckDisk: %v %q %v", changed, txt, err)
	}
	// "Keep mine": the external text is kept in the history first.
	if err := d.ForceSave("images/b.png", "mine again"); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, capB); got != "mine again" {
		t.Fatalf("after force: %q", got)
	}
	want := []string{"import:orig", "manual:mine", "external:theirs", "manual:mine again"}
	if got := origins(t, d, "images/b.png"); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	if txt, err := d.Undo("images/b.png"); err != nil || txt != "theirs" || readText(t, capB) != "theirs" {
		t.Fatalf("undo to the external text: %q %v", txt, err)
	}
	// "Take theirs": reload accepts the disk version.
	writeText(t, capB, "theirs 2")
	if err := d.ReloadFromDisk("images/b.png"); err != nil {
		t.Fatal(err)
	}
	if it, _ := d.Item("images/b.png"); it.Caption != "theirs 2" {
		t.Fatalf("after reload: %q", it.Caption)
	}
	if changed, _, _ := d.CheckDisk("images/b.png"); changed {
		t.Fatal("still changed after reload")
	}
	if err := d.Save("images/b.png", "final"); err != nil {
		t.Fatal(err)
	}
	// A caption deleted behind our back is a conflict too.
	os.Remove(capB)
	if err := d.Save("images/b.png", "again"); !errors.As(err, &ce) || ce.DiskExists {
		t.Fatalf("save after external delete: %v", err)
	}
	assertNoFile(t, capB)
}

// bulkDataset is a kohya folder with four captions and one uncaptioned image.
func bulkDataset(t *testing.T) (string, *Dataset) {
	t.Helper()
	s := newStudio(t)
	root := t.TempDir()
	caps := map[string]string{"1.png": "cat, dog", "2.png": "mytrigger, cat", "3.png": "bird\n", "4.png": "Cat on a mat"}
	for name, c := range caps {
		writePNG(t, filepath.Join(root, name), 32, 32, len(c))
		writeText(t, filepath.Join(root, strings.TrimSuffix(name, ".png")+".txt"), c)
	}
	writePNG(t, filepath.Join(root, "5.png"), 2048, 1536, 9)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, d
}

func TestBulkPreviewApplyUndo(t *testing.T) {
	root, d := bulkDataset(t)
	op := BulkOp{Kind: BulkPrepend, Text: "mytrigger"}
	ch, err := d.PreviewBulk(op)
	if err != nil {
		t.Fatal(err)
	}
	want := []BulkChange{
		{"1.png", "cat, dog", "mytrigger, cat, dog"},
		{"3.png", "bird\n", "mytrigger, bird\n"},
		{"4.png", "Cat on a mat", "mytrigger, Cat on a mat"},
	}
	if !slices.Equal(ch, want) {
		t.Fatalf("preview %q\nwant %q", ch, want)
	}
	if got := readText(t, filepath.Join(root, "1.txt")); got != "cat, dog" {
		t.Fatalf("preview wrote: %q", got)
	}
	res, err := d.ApplyBulk(op)
	if err != nil || res.Changed != 3 || len(res.Failed) != 0 || res.BatchID == 0 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	for _, c := range want {
		if got := readText(t, filepath.Join(root, strings.TrimSuffix(c.Rel, ".png")+".txt")); got != c.After {
			t.Fatalf("%s: %q, want %q", c.Rel, got, c.After)
		}
	}
	assertNoFile(t, filepath.Join(root, "5.txt")) // uncaptioned stays uncaptioned
	// Applying again changes nothing: no duplicate trigger.
	if ch, _ := d.PreviewBulk(op); len(ch) != 0 {
		t.Fatalf("second prepend would change %v", ch)
	}
	// A caption edited by hand after the bulk is not overwritten by undo-all
	// (listed as a conflict); the others get their pre-bulk text back.
	if err := d.Save("1.png", "mytrigger, cat, dog, extra"); err != nil {
		t.Fatal(err)
	}
	out, err := d.UndoLastBulk()
	if err != nil || out.Written != 2 || len(out.Conflicts) != 1 || out.Conflicts[0].Rel != "1.png" || out.Action != BatchUndone {
		t.Fatalf("undo bulk: %+v %v", out, err)
	}
	for name, c := range map[string]string{"1": "mytrigger, cat, dog, extra", "2": "mytrigger, cat", "3": "bird\n", "4": "Cat on a mat"} {
		if got := readText(t, filepath.Join(root, name+".txt")); got != c {
			t.Fatalf("%s after undo-all: %q, want %q", name, got, c)
		}
	}
	if _, err := d.UndoLastBulk(); !errors.Is(err, storage.ErrNothingToUndo) {
		t.Fatalf("second undo-all: %v", err)
	}
	if err := d.Save("1.png", "cat, dog"); err != nil {
		t.Fatal(err)
	}
	// Append, replace, and removing a tag.
	ch, _ = d.PreviewBulk(BulkOp{Kind: BulkAppend, Text: "cat"})
	if !slices.Equal(ch, []BulkChange{{"3.png", "bird\n", "bird, cat\n"}, {"4.png", "Cat on a mat", "Cat on a mat, cat"}}) {
		t.Fatalf("append preview %q", ch)
	}
	ch, _ = d.PreviewBulk(BulkOp{Kind: BulkReplace, Old: "cat", New: ""})
	if !slices.Equal(ch, []BulkChange{{"1.png", "cat, dog", "dog"}, {"2.png", "mytrigger, cat", "mytrigger"}}) {
		t.Fatalf("remove preview %q", ch)
	}
	res, err = d.ApplyBulk(BulkOp{Kind: BulkReplace, Old: "dog", New: "wolf"})
	if err != nil || res.Changed != 1 || readText(t, filepath.Join(root, "1.txt")) != "cat, wolf" {
		t.Fatalf("replace: %+v %v", res, err)
	}
	// A caption changed on disk is not overwritten by a bulk edit.
	writeText(t, filepath.Join(root, "2.txt"), "edited elsewhere, cat")
	res, err = d.ApplyBulk(BulkOp{Kind: BulkReplace, Old: "cat", New: "kitten"})
	var ce *ConflictError
	if err != nil || res.Changed != 1 || len(res.Failed) != 1 || !errors.As(res.Failed[0], &ce) {
		t.Fatalf("bulk over a conflict: %+v %v", res, err)
	}
	if got := readText(t, filepath.Join(root, "2.txt")); got != "edited elsewhere, cat" {
		t.Fatalf("conflicting file overwritten: %q", got)
	}
	if _, err := d.PreviewBulk(BulkOp{Kind: BulkReplace}); err == nil {
		t.Fatal("replace with empty Old accepted")
	}
	if _, err := d.PreviewBulk(BulkOp{Kind: BulkPrepend, Text: "  "}); err == nil {
		t.Fatal("prepend of blank text accepted")
	}
}

func TestTagsFilterNextSmall(t *testing.T) {
	_, d := bulkDataset(t)
	tc := d.TagCounts()
	want := []TagCount{{"cat", 2}, {"Cat on a mat", 1}, {"bird", 1}, {"dog", 1}, {"mytrigger", 1}}
	if !slices.Equal(tc, want) {
		t.Fatalf("tags %v, want %v", tc, want)
	}
	rels := func(items []*Item) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.Rel)
		}
		return out
	}
	if got := rels(d.Filter("CAT")); !slices.Equal(got, []string{"1.png", "2.png", "4.png"}) {
		t.Fatalf("filter CAT: %v", got)
	}
	if got := rels(d.Filter("3.p")); !slices.Equal(got, []string{"3.png"}) {
		t.Fatalf("filter path: %v", got)
	}
	if got := rels(d.Filter("")); len(got) != 5 {
		t.Fatalf("empty filter: %v", got)
	}
	if got := rels(d.Uncaptioned()); !slices.Equal(got, []string{"5.png"}) {
		t.Fatalf("uncaptioned: %v", got)
	}
	if err := d.Save("2.png", "   "); err != nil { // blank counts as uncaptioned
		t.Fatal(err)
	}
	for _, c := range []struct{ after, want string }{{"", "2.png"}, {"2.png", "5.png"}, {"3.png", "5.png"}, {"5.png", "2.png"}, {"zzz", "2.png"}} {
		it, ok := d.NextUncaptioned(c.after)
		if !ok || it.Rel != c.want {
			t.Fatalf("NextUncaptioned(%q) = %v %v, want %s", c.after, it, ok, c.want)
		}
	}
	if got := rels(d.SmallImages(1024)); !slices.Equal(got, []string{"1.png", "2.png", "3.png", "4.png"}) {
		t.Fatalf("small: %v", got)
	}
	if got := rels(d.SmallImages(16)); len(got) != 0 {
		t.Fatalf("small(16): %v", got)
	}
	if c, n := d.Progress(); c != 3 || n != 5 {
		t.Fatalf("progress %d/%d", c, n)
	}
}

func TestNonUTF8CaptionPreserved(t *testing.T) {
	s := newStudio(t)
	root := t.TempDir()
	writePNG(t, filepath.Join(root, "x.png"), 32, 32, 1)
	raw := "caf\xe9, cr\xe8me"
	writeText(t, filepath.Join(root, "x.txt"), raw)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	it, _ := d.Item("x.png")
	if it.CaptionErr == nil || !strings.Contains(it.CaptionErr.Error(), filepath.Join(root, "x.txt")) {
		t.Fatalf("CaptionErr %v", it.CaptionErr)
	}
	err = d.Save("x.png", "café, crème")
	var ce *ConflictError
	if !errors.As(err, &ce) || !ce.NotUTF8 {
		t.Fatalf("save over non-UTF-8: %v", err)
	}
	if got := readText(t, filepath.Join(root, "x.txt")); got != raw {
		t.Fatalf("bytes changed: %q", got)
	}
	if ch, _ := d.PreviewBulk(BulkOp{Kind: BulkAppend, Text: "t"}); len(ch) != 0 {
		t.Fatalf("bulk would touch the non-UTF-8 caption: %v", ch)
	}
	// The user's explicit choice: the old bytes are backed up first.
	if err := d.ForceSave("x.png", "café, crème"); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, filepath.Join(root, "x.txt")); got != "café, crème" {
		t.Fatalf("after force: %q", got)
	}
	backups, _ := filepath.Glob(filepath.Join(s.DataDir(), BackupDir, "*", "x.*.txt"))
	if len(backups) != 1 || readText(t, backups[0]) != raw {
		t.Fatalf("backups %v", backups)
	}
}

// assertFailedSaveKeptOld checks that a failed save left the old caption,
// no temp file and no revision with the new text.
func assertFailedSaveKeptOld(t *testing.T, d *Dataset, rel, capPath, old, attempted string) {
	t.Helper()
	if got := readText(t, capPath); got != old {
		t.Fatalf("old caption damaged: %q", got)
	}
	assertNoTempFiles(t, filepath.Dir(capPath))
	revs, err := d.History(rel)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		if r.Text == attempted {
			t.Fatalf("revision recorded for the failed save: %+v", r)
		}
	}
	if it, _ := d.Item(rel); it.Caption != old {
		t.Fatalf("item caption %q, want %q", it.Caption, old)
	}
}

func TestSaveDiskFullHook(t *testing.T) {
	s := newStudio(t)
	root := tutorialDataset(t)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	writeHook = func(path string, w io.Writer) io.Writer { return failingWriter{w} }
	defer func() { writeHook = nil }()
	err = d.Save("images/b.png", "a new caption")
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "b.txt") {
		t.Fatalf("err = %v", err)
	}
	writeHook = nil
	assertFailedSaveKeptOld(t, d, "images/b.png", filepath.Join(root, "captions", "b.txt"), "orig", "a new caption")
	// Once the disk has room again the save goes through.
	if err := d.Save("images/b.png", "a new caption"); err != nil {
		t.Fatal(err)
	}
}

// requireRoot skips tests that need to mount file systems; they run in CI as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs (the hook-based test covers the same path)")
	}
}

// mount runs mount(8) and unmounts at cleanup.
func mount(t *testing.T, target string, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", append(args, target)...).CombinedOutput(); err != nil {
		t.Fatalf("mount %v %s: %v\n%s", args, target, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", target).Run() })
}

func TestSaveDiskFullTmpfs(t *testing.T) {
	requireRoot(t)
	s := newStudio(t)
	root := t.TempDir()
	mount(t, root, "-t", "tmpfs", "-o", "size=64k", "tmpfs")
	writePNG(t, filepath.Join(root, "x.png"), 16, 16, 1)
	writeText(t, filepath.Join(root, "x.txt"), "old caption")
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the file system.
	f, _ := os.Create(filepath.Join(root, "filler.bin"))
	f.Write(make([]byte, 1<<20))
	f.Close()
	big := strings.Repeat("a very long caption, ", 4000)
	err = d.Save("x.png", big)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "x.txt") {
		t.Fatalf("err = %v", err)
	}
	assertFailedSaveKeptOld(t, d, "x.png", filepath.Join(root, "x.txt"), "old caption", big)
}

func TestSaveReadOnlyFolder(t *testing.T) {
	s := newStudio(t)
	root := tutorialDataset(t)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	capDir := filepath.Join(root, "captions")
	if os.Geteuid() == 0 {
		// Root ignores permission bits: make the folder a read-only bind mount.
		mount(t, capDir, "--bind", capDir)
		mount(t, capDir, "-o", "remount,ro,bind")
	} else {
		os.Chmod(capDir, 0o555)
		defer os.Chmod(capDir, 0o755)
	}
	err = d.Save("images/b.png", "new text")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(capDir, "b.txt")) {
		t.Fatalf("save into a read-only folder: %v", err)
	}
	if !errors.Is(err, syscall.EROFS) && !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err does not say read-only / permission: %v", err)
	}
	assertFailedSaveKeptOld(t, d, "images/b.png", filepath.Join(capDir, "b.txt"), "orig", "new text")
}

func TestFolderVanishesWhileOpen(t *testing.T) {
	s := newStudio(t)
	root := tutorialDataset(t)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"save": d.Save("images/b.png", "x"),
		"bulk": func() error { _, err := d.ApplyBulk(BulkOp{Kind: BulkAppend, Text: "t"}); return err }(),
		"undo": func() error { _, err := d.Undo("images/b.png"); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "no longer exists") || !strings.Contains(err.Error(), root) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(root); err == nil {
		t.Fatal("the vanished folder was recreated")
	}
	if err := d.Rescan(); err == nil {
		t.Fatal("rescan of a vanished folder succeeded")
	}
}

func TestChangeBeforeFirstSaveKeepsBoth(t *testing.T) {
	s := newStudio(t)
	root := tutorialDataset(t)
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	capB := filepath.Join(root, "captions", "b.txt")
	writeText(t, capB, "replaced")
	var ce *ConflictError
	if err := d.Save("images/b.png", "mine"); !errors.As(err, &ce) {
		t.Fatalf("save: %v", err)
	}
	if err := d.ForceSave("images/b.png", "mine"); err != nil {
		t.Fatal(err)
	}
	want := []string{"import:orig", "external:replaced", "manual:mine"}
	if got := origins(t, d, "images/b.png"); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	// Saving an empty editor on an uncaptioned image writes nothing.
	if err := d.Save("images/a.png", ""); err != nil {
		t.Fatal(err)
	}
	assertNoFile(t, filepath.Join(root, "captions", "a.txt"))
	if got := origins(t, d, "images/a.png"); len(got) != 0 {
		t.Fatalf("history of an untouched image: %v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := newStudio(t)
	root := t.TempDir()
	for i := 0; i < 8; i++ {
		writePNG(t, filepath.Join(root, string(rune('a'+i))+".png"), 48, 48, i)
	}
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 16)
	for i := 0; i < 8; i++ {
		rel := string(rune('a'+i)) + ".png"
		go func() {
			for k := 0; k < 3; k++ {
				if err := d.Save(rel, strings.Repeat("tag, ", k+1)+rel); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		go func() {
			for k := 0; k < 20; k++ {
				d.Items()
				d.Progress()
				d.TagCounts()
				if it, ok := d.Item(rel); ok {
					s.Thumbnails().Get(it, 32)
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if c, n := d.Progress(); c != 8 || n != 8 {
		t.Fatalf("progress %d/%d", c, n)
	}
	for i := 0; i < 8; i++ {
		rel := string(rune('a'+i)) + ".png"
		if got := origins(t, d, rel); len(got) != 3 {
			t.Fatalf("%s history %v", rel, got)
		}
	}
}
