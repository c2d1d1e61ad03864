package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// captionFile is a real caption file on disk that the write callbacks keep in step with the
// database, the way the app does: "" deletes the file (the empty initial state).
type captionFile struct {
	t    *testing.T
	path string
}

func newCaptionFile(t *testing.T) *captionFile {
	return &captionFile{t: t, path: filepath.Join(t.TempDir(), "img.txt")}
}

func (f *captionFile) write(text string) error {
	if text == "" {
		err := os.Remove(f.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, f.path)
}

// text returns the file's content, "" when it does not exist.
func (f *captionFile) text() string {
	f.t.Helper()
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

// newImage creates a dataset (once per root) and an image in it.
func newImage(t *testing.T, db *DB, root, rel string) (Dataset, Image) {
	t.Helper()
	ds, err := db.EnsureDataset(root, "sidecar-txt")
	if err != nil {
		t.Fatal(err)
	}
	im, err := db.EnsureImage(ds.ID, rel, "hash-"+rel, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	return ds, im
}

// step is one action of an undo/redo scenario and the caption expected after it.
type step struct {
	op   string // save, bulk, import, external, undo, redo, restore
	text string // the text to save, or for restore the text of the saved revision to restore
	want string // caption after the step (file content; "" = no file)
	err  error  // the sentinel the step must fail with, if any
}

func TestUndoRedoSequences(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"save save undo undo redo redo", []step{
			{op: "save", text: "A", want: "A"},
			{op: "save", text: "B", want: "B"},
			{op: "undo", want: "A"},
			{op: "undo", want: ""},
			{op: "undo", want: "", err: ErrNothingToUndo},
			{op: "redo", want: "A"},
			{op: "redo", want: "B"},
			{op: "redo", want: "B", err: ErrNothingToRedo},
			{op: "undo", want: "A"},
		}},
		{"fresh image has nothing to undo or redo", []step{
			{op: "undo", want: "", err: ErrNothingToUndo},
			{op: "redo", want: "", err: ErrNothingToRedo},
		}},
		{"save after undo clears redo", []step{
			{op: "save", text: "A", want: "A"},
			{op: "save", text: "B", want: "B"},
			{op: "undo", want: "A"},
			{op: "save", text: "C", want: "C"},
			{op: "redo", want: "C", err: ErrNothingToRedo},
			{op: "undo", want: "A"},
			{op: "undo", want: ""},
			{op: "redo", want: "A"},
			{op: "redo", want: "C"},
			{op: "redo", want: "C", err: ErrNothingToRedo},
		}},
		{"undo after restore", []step{
			{op: "save", text: "A", want: "A"},
			{op: "save", text: "B", want: "B"},
			{op: "save", text: "C", want: "C"},
			{op: "restore", text: "A", want: "A"},
			{op: "undo", want: "C"},
			{op: "undo", want: "B"},
			{op: "redo", want: "C"},
			{op: "redo", want: "A"},
			{op: "redo", want: "A", err: ErrNothingToRedo},
		}},
		{"restore after undo clears redo", []step{
			{op: "save", text: "A", want: "A"},
			{op: "save", text: "B", want: "B"},
			{op: "undo", want: "A"},
			{op: "restore", text: "B", want: "B"},
			{op: "redo", want: "B", err: ErrNothingToRedo},
			{op: "undo", want: "A"},
		}},
		{"imported caption is the undo floor", []step{
			{op: "import", text: "I", want: "I"},
			{op: "save", text: "A", want: "A"},
			{op: "undo", want: "I"},
			{op: "undo", want: "I", err: ErrNothingToUndo},
			{op: "redo", want: "A"},
		}},
		{"external change is undoable", []step{
			{op: "import", text: "I", want: "I"},
			{op: "save", text: "A", want: "A"},
			{op: "external", text: "E", want: "E"},
			{op: "undo", want: "A"},
			{op: "undo", want: "I"},
			{op: "redo", want: "A"},
			{op: "redo", want: "E"},
		}},
		{"undo after a bulk edit", []step{
			{op: "save", text: "A", want: "A"},
			{op: "bulk", text: "A, tag", want: "A, tag"},
			{op: "undo", want: "A"},
			{op: "redo", want: "A, tag"},
			{op: "undo", want: "A"},
			{op: "save", text: "A2", want: "A2"},
			{op: "undo", want: "A"},
		}},
		{"empty caption saved explicitly", []step{
			{op: "save", text: "A", want: "A"},
			{op: "save", text: "", want: ""},
			{op: "undo", want: "A"},
			{op: "redo", want: ""},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t)
			ds, im := newImage(t, db, "/data/set", "img.png")
			f := newCaptionFile(t)
			saved := map[string]int64{} // text -> revision id of the save that wrote it
			nrev := 0
			for i, s := range tc.steps {
				var rev Revision
				var err error
				switch s.op {
				case "save", "import", "external", "bulk":
					origin, batch := Origin(s.op), int64(0)
					if s.op == "save" {
						origin = OriginManual
					}
					if s.op == "bulk" {
						b, berr := db.BeginBatch(ds.ID, "bulk "+s.text)
						if berr != nil {
							t.Fatal(berr)
						}
						batch = b.ID
					}
					text := s.text
					rev, err = db.SaveCaption(im.ID, text, origin, batch, func() error { return f.write(text) })
					if err == nil {
						saved[s.text] = rev.ID
					}
				case "undo":
					rev, err = db.Undo(im.ID, f.write)
				case "redo":
					rev, err = db.Redo(im.ID, f.write)
				case "restore":
					id, ok := saved[s.text]
					if !ok {
						t.Fatalf("step %d: no saved revision with text %q", i, s.text)
					}
					rev, err = db.Restore(im.ID, id, f.write)
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if s.err != nil {
					if !errors.Is(err, s.err) {
						t.Fatalf("step %d %s: err = %v, want %v", i, s.op, err, s.err)
					}
				} else {
					if err != nil {
						t.Fatalf("step %d %s: %v", i, s.op, err)
					}
					nrev++
					if rev.Text != s.want {
						t.Errorf("step %d %s: revision text %q, want %q", i, s.op, rev.Text, s.want)
					}
				}
				if got := f.text(); got != s.want {
					t.Errorf("step %d %s: file holds %q, want %q", i, s.op, got, s.want)
				}
				latest, ok, err := db.LatestRevision(im.ID)
				if err != nil {
					t.Fatal(err)
				}
				if (ok && latest.Text != s.want) || (!ok && s.want != "") {
					t.Errorf("step %d %s: latest revision %q (%v), want %q", i, s.op, latest.Text, ok, s.want)
				}
				revs, err := db.Revisions(im.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(revs) != nrev {
					t.Errorf("step %d %s: %d revisions recorded, want %d (every action is logged, failures are not)", i, s.op, len(revs), nrev)
				}
			}
			checkHistoryInvariants(t, db, im.ID)
		})
	}
}

// checkHistoryInvariants verifies the structure README.md promises: ids increase, edits
// point at themselves and at an earlier parent state, moves point at an earlier state and
// carry that state's text, and origins match the kind of row.
func checkHistoryInvariants(t *testing.T, db *DB, imageID int64) {
	t.Helper()
	revs, err := db.Revisions(imageID)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]Revision{}
	var prev int64
	for _, r := range revs {
		if r.ID <= prev {
			t.Errorf("revision ids not increasing: %d after %d", r.ID, prev)
		}
		prev = r.ID
		byID[r.ID] = r
		if r.Time.Location() != time.UTC || r.Time.IsZero() {
			t.Errorf("revision %d time %v is not a UTC time", r.ID, r.Time)
		}
		switch {
		case r.IsState():
			if r.Origin == OriginRedo {
				t.Errorf("revision %d: a redo is never a state", r.ID)
			}
			if r.ParentID != 0 {
				if _, ok := byID[r.ParentID]; !ok || !byID[r.ParentID].IsState() {
					t.Errorf("revision %d: parent %d is not an earlier state", r.ID, r.ParentID)
				}
			}
		default:
			if r.Origin != OriginUndo && r.Origin != OriginRedo {
				t.Errorf("revision %d: a move with origin %q", r.ID, r.Origin)
			}
			want := ""
			if r.StateID != 0 {
				s, ok := byID[r.StateID]
				if !ok || !s.IsState() {
					t.Errorf("revision %d: moves to %d, not an earlier state", r.ID, r.StateID)
				}
				want = s.Text
			}
			if r.Text != want {
				t.Errorf("revision %d: text %q, but its state has %q", r.ID, r.Text, want)
			}
		}
	}
}

var errBoom = errors.New("disk full (test)")

// TestWriteFailureRollsBack checks that when the caller's write fails, SaveCaption, Undo,
// Redo and Restore record nothing and the undo state is unchanged.
func TestWriteFailureRollsBack(t *testing.T) {
	db := openTest(t)
	_, im := newImage(t, db, "/data/set", "img.png")
	f := newCaptionFile(t)
	mustSave := func(text string) Revision {
		t.Helper()
		r, err := db.SaveCaption(im.ID, text, OriginManual, 0, func() error { return f.write(text) })
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := mustSave("A")
	mustSave("B")
	before, _ := db.Revisions(im.ID)
	fail := func(string) error { return errBoom }
	if _, err := db.SaveCaption(im.ID, "C", OriginManual, 0, func() error { return errBoom }); !errors.Is(err, errBoom) {
		t.Errorf("SaveCaption: err = %v, want the write error", err)
	}
	if _, err := db.Restore(im.ID, a.ID, fail); !errors.Is(err, errBoom) {
		t.Errorf("Restore: err = %v", err)
	}
	if _, err := db.Undo(im.ID, fail); !errors.Is(err, errBoom) {
		t.Errorf("Undo: err = %v", err)
	}
	after, _ := db.Revisions(im.ID)
	if len(after) != len(before) {
		t.Fatalf("failed writes recorded %d revisions", len(after)-len(before))
	}
	if f.text() != "B" {
		t.Errorf("file = %q, want B", f.text())
	}
	// The undo state is intact: a working undo still goes B -> A, and redo after a failed
	// redo still goes A -> B.
	if r, err := db.Undo(im.ID, f.write); err != nil || r.Text != "A" {
		t.Fatalf("Undo after failures = %q, %v", r.Text, err)
	}
	if _, err := db.Redo(im.ID, fail); !errors.Is(err, errBoom) {
		t.Errorf("Redo: err = %v", err)
	}
	if r, err := db.Redo(im.ID, f.write); err != nil || r.Text != "B" || f.text() != "B" {
		t.Fatalf("Redo after a failed redo = %q, %v (file %q)", r.Text, err, f.text())
	}
}

func TestSaveCaptionValidation(t *testing.T) {
	db := openTest(t)
	ds, im := newImage(t, db, "/data/set", "img.png")
	other, _ := newImage(t, db, "/data/other", "o.png")
	nop := func() error { return nil }
	if _, err := db.SaveCaption(im.ID, "x", OriginUndo, 0, nop); err == nil {
		t.Error("SaveCaption accepted origin undo")
	}
	if _, err := db.SaveCaption(im.ID, "x", Origin("typo"), 0, nop); err == nil {
		t.Error("SaveCaption accepted an unknown origin")
	}
	if _, err := db.SaveCaption(im.ID, "bad \xff utf8", OriginManual, 0, nop); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("non-UTF-8 caption: %v", err)
	}
	if _, err := db.SaveCaption(9999, "x", OriginManual, 0, nop); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing image: %v", err)
	}
	if _, err := db.SaveCaption(im.ID, "x", OriginBulk, 9999, nop); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing batch: %v", err)
	}
	b, err := db.BeginBatch(other.ID, "other dataset")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveCaption(im.ID, "x", OriginBulk, b.ID, nop); err == nil || !strings.Contains(err.Error(), "belongs to dataset") {
		t.Errorf("batch of another dataset: %v", err)
	}
	if _, err := db.BeginBatch(9999, "no such dataset"); err == nil {
		t.Error("BeginBatch on a missing dataset succeeded")
	}
	if _, err := db.Restore(im.ID, 9999, func(string) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Restore of a missing revision: %v", err)
	}
	// A revision of another image cannot be restored onto this one.
	_, im2 := newImage(t, db, "/data/set", "img2.png")
	r2, err := db.SaveCaption(im2.ID, "two", OriginManual, 0, nop)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Restore(im.ID, r2.ID, func(string) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Restore of another image's revision: %v", err)
	}
	if revs, _ := db.Revisions(im.ID); len(revs) != 0 {
		t.Errorf("rejected calls recorded %d revisions", len(revs))
	}
	_ = ds
}

// batchFixture builds a dataset of four images with caption files and a batch that changed
// three of them; img1 is edited again after the batch.
type batchFixture struct {
	db    *DB
	ds    Dataset
	imgs  []Image
	files map[int64]*captionFile
	batch Batch
}

func newBatchFixture(t *testing.T) *batchFixture {
	db := openTest(t)
	fx := &batchFixture{db: db, files: map[int64]*captionFile{}}
	for i, before := range []string{"one", "", "three", "four"} {
		ds, im := newImage(t, db, "/data/set", fmt.Sprintf("img%d.png", i+1))
		fx.ds = ds
		fx.imgs = append(fx.imgs, im)
		f := &captionFile{t: t, path: filepath.Join(t.TempDir(), fmt.Sprintf("img%d.txt", i+1))}
		fx.files[im.ID] = f
		if before != "" {
			fx.save(t, im.ID, before, OriginImport, 0)
		}
	}
	b, err := db.BeginBatch(fx.ds.ID, "append tag")
	if err != nil {
		t.Fatal(err)
	}
	fx.batch = b
	fx.save(t, fx.imgs[0].ID, "one, tag", OriginBulk, b.ID)
	fx.save(t, fx.imgs[1].ID, "tag", OriginBulk, b.ID)
	fx.save(t, fx.imgs[2].ID, "three, tag", OriginBulk, b.ID)
	fx.save(t, fx.imgs[2].ID, "three, tag, tag2", OriginBulk, b.ID) // two edits of one image in a batch
	fx.save(t, fx.imgs[0].ID, "one, tag, edited", OriginManual, 0)  // changed after the batch
	return fx
}

func (fx *batchFixture) save(t *testing.T, imageID int64, text string, origin Origin, batch int64) {
	t.Helper()
	f := fx.files[imageID]
	if _, err := fx.db.SaveCaption(imageID, text, origin, batch, func() error { return f.write(text) }); err != nil {
		t.Fatal(err)
	}
}

func (fx *batchFixture) write(imageID int64, text string) error { return fx.files[imageID].write(text) }

func (fx *batchFixture) expectFiles(t *testing.T, want ...string) {
	t.Helper()
	for i, im := range fx.imgs {
		if got := fx.files[im.ID].text(); got != want[i] {
			t.Errorf("img%d file = %q, want %q", i+1, got, want[i])
		}
		latest, _, err := fx.db.LatestRevision(im.ID)
		if err != nil {
			t.Fatal(err)
		}
		if latest.Text != want[i] {
			t.Errorf("img%d latest revision = %q, want %q", i+1, latest.Text, want[i])
		}
	}
}

func TestUndoBatch(t *testing.T) {
	fx := newBatchFixture(t)
	db := fx.db
	last, ok, err := db.LastBatch(fx.ds.ID)
	if err != nil || !ok || last.ID != fx.batch.ID || last.Count != 3 || last.Undone || last.Description != "append tag" {
		t.Fatalf("LastBatch = %+v %v %v", last, ok, err)
	}
	fx.expectFiles(t, "one, tag, edited", "tag", "three, tag, tag2", "four")
	n, err := db.UndoBatch(fx.batch.ID, fx.write)
	if err != nil || n != 3 {
		t.Fatalf("UndoBatch = %d, %v; want 3", n, err)
	}
	fx.expectFiles(t, "one", "", "three", "four")
	if _, ok, err := db.LastBatch(fx.ds.ID); ok || err != nil {
		t.Errorf("LastBatch after undo: ok=%v err=%v, want none", ok, err)
	}
	b, err := db.Batch(fx.batch.ID)
	if err != nil || !b.Undone || b.UndoneAt.IsZero() || b.Count != 3 {
		t.Errorf("Batch after undo = %+v, %v", b, err)
	}
	if _, err := db.UndoBatch(fx.batch.ID, fx.write); !errors.Is(err, ErrBatchUndone) {
		t.Errorf("second UndoBatch: %v", err)
	}
	if _, err := db.SaveCaption(fx.imgs[3].ID, "x", OriginBulk, fx.batch.ID, func() error { return nil }); !errors.Is(err, ErrBatchUndone) {
		t.Errorf("SaveCaption into an undone batch: %v", err)
	}
	// img1 was edited after the batch: its later edit stays in history, one Undo away.
	if r, err := db.Undo(fx.imgs[0].ID, fx.files[fx.imgs[0].ID].write); err != nil || r.Text != "one, tag, edited" {
		t.Errorf("Undo of img1 after UndoBatch = %q, %v", r.Text, err)
	}
	// img3 was untouched since the batch: UndoBatch was an undo move, so Redo walks the
	// batch's edits forward again one at a time.
	f3 := fx.files[fx.imgs[2].ID]
	for _, want := range []string{"three, tag", "three, tag, tag2"} {
		if r, err := db.Redo(fx.imgs[2].ID, f3.write); err != nil || r.Text != want || f3.text() != want {
			t.Errorf("Redo of img3 = %q, %v; want %q", r.Text, err, want)
		}
	}
	// img2 had no caption before the batch: undoing it went to the empty state.
	if r, err := db.Undo(fx.imgs[1].ID, fx.files[fx.imgs[1].ID].write); !errors.Is(err, ErrNothingToUndo) {
		t.Errorf("Undo of img2 below the empty state = %+v, %v", r, err)
	}
	for _, im := range fx.imgs {
		checkHistoryInvariants(t, db, im.ID)
	}
	bs, err := db.Batches(fx.ds.ID)
	if err != nil || len(bs) != 1 || bs[0].ID != fx.batch.ID {
		t.Errorf("Batches = %+v, %v", bs, err)
	}
}

// TestUndoBatchPartialFailure: a write failure stops UndoBatch with the images done so far
// recorded and the batch still pending; a second call finishes the job without touching
// the images already done.
func TestUndoBatchPartialFailure(t *testing.T) {
	fx := newBatchFixture(t)
	db := fx.db
	calls := 0
	n, err := db.UndoBatch(fx.batch.ID, func(id int64, text string) error {
		calls++
		if calls == 2 {
			return errBoom
		}
		return fx.write(id, text)
	})
	if !errors.Is(err, errBoom) || n != 1 {
		t.Fatalf("UndoBatch with a failing write = %d, %v; want 1 and the write error", n, err)
	}
	fx.expectFiles(t, "one", "tag", "three, tag, tag2", "four")
	if b, ok, _ := db.LastBatch(fx.ds.ID); !ok || b.ID != fx.batch.ID {
		t.Fatal("a partly undone batch must stay pending")
	}
	revs1, _ := db.Revisions(fx.imgs[0].ID)
	var written []int64
	n, err = db.UndoBatch(fx.batch.ID, func(id int64, text string) error {
		written = append(written, id)
		return fx.write(id, text)
	})
	if err != nil || n != 2 {
		t.Fatalf("second UndoBatch = %d, %v; want 2", n, err)
	}
	if len(written) != 2 || written[0] == fx.imgs[0].ID {
		t.Errorf("second UndoBatch wrote images %v; img1 (%d) was already done", written, fx.imgs[0].ID)
	}
	if revs, _ := db.Revisions(fx.imgs[0].ID); len(revs) != len(revs1) {
		t.Errorf("img1 got %d more revisions on the retry", len(revs)-len(revs1))
	}
	fx.expectFiles(t, "one", "", "three", "four")
}

// TestTextStoredVerbatim round-trips unicode, control characters and SQL-looking text
// through captions, paths and settings.
func TestTextStoredVerbatim(t *testing.T) {
	db := openTest(t)
	countTables := func() int {
		var n int
		if err := db.sql.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := countTables() // the schema's own tables: no text below may drop one
	texts := []string{
		"一只橘猫坐在窗台上 🐈‍⬛, café, naïve, Ελληνικά, עברית, emoji 👩🏽‍🎨",
		"Robert'); DROP TABLE caption_revisions;--",
		`quotes " and ' and ''; semicolons; -- comment /* block */ %_ \ backslash`,
		"line one\nline two\r\n\ttabbed",
		"nul\x00inside",
		"   leading and trailing spaces   ",
	}
	root := "/data/it's; DROP TABLE datasets;--/猫"
	ds, err := db.EnsureDataset(root, "sidecar'); --")
	if err != nil {
		t.Fatal(err)
	}
	im, err := db.EnsureImage(ds.ID, "sub/'); DELETE FROM images;--.png", "h'", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range texts {
		if _, err := db.SaveCaption(im.ID, text, OriginManual, 0, func() error { return nil }); err != nil {
			t.Fatalf("saving %q: %v", text, err)
		}
	}
	revs, err := db.Revisions(im.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != len(texts) {
		t.Fatalf("%d revisions, want %d", len(revs), len(texts))
	}
	for i, r := range revs {
		if r.Text != texts[i] {
			t.Errorf("revision %d = %q, want %q", i, r.Text, texts[i])
		}
	}
	got, err := db.ImageByRel(ds.ID, "sub/'); DELETE FROM images;--.png")
	if err != nil || got.ID != im.ID || got.Hash != "h'" {
		t.Errorf("ImageByRel = %+v, %v", got, err)
	}
	d2, err := db.DatasetByRoot(root)
	if err != nil || d2.ID != ds.ID || d2.Layout != "sidecar'); --" {
		t.Errorf("DatasetByRoot = %+v, %v", d2, err)
	}
	for _, text := range texts {
		if err := db.SetSetting(text, text); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := db.Setting(text); err != nil || !ok || v != text {
			t.Errorf("setting %q = %q %v %v", text, v, ok, err)
		}
	}
	if after := countTables(); after != before {
		t.Errorf("%d tables after storing the texts, %d before", after, before)
	}
}

// TestConcurrentReadersDuringWrites saves 200 revisions from one goroutine while readers on
// the same handle and on a second handle (as another process would have) read the history,
// and a writer on the second handle writes settings. No call may fail (no SQLITE_BUSY), and
// every snapshot a reader sees must be a consistent prefix of the final history.
func TestConcurrentReadersDuringWrites(t *testing.T) {
	db := openTest(t)
	_, im := newImage(t, db, "/data/set", "img.png")
	db2, err := Open(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	const n = 200
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 16)
	for r := 0; r < 4; r++ {
		h := db
		if r%2 == 1 {
			h = db2
		}
		wg.Add(1)
		go func(r int, h *DB) {
			defer wg.Done()
			seen, reads := 0, 0
			for {
				select {
				case <-done:
					if reads == 0 {
						errs <- fmt.Errorf("reader %d never read", r)
					}
					return
				default:
				}
				revs, err := h.Revisions(im.ID)
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				reads++
				if len(revs) < seen {
					errs <- fmt.Errorf("reader %d: history shrank from %d to %d", r, seen, len(revs))
					return
				}
				seen = len(revs)
				for i, rev := range revs {
					want := fmt.Sprintf("rev %03d", i)
					var parent int64
					if i > 0 {
						parent = revs[i-1].ID
					}
					if rev.Text != want || rev.ParentID != parent {
						errs <- fmt.Errorf("reader %d: revision %d = %q parent %d, want %q parent %d", r, i, rev.Text, rev.ParentID, want, parent)
						return
					}
				}
				if latest, ok, err := h.LatestRevision(im.ID); err != nil || !ok && seen > 0 {
					errs <- fmt.Errorf("reader %d: LatestRevision: %v", r, err)
					return
				} else if ok && seen > 0 && latest.ID < revs[seen-1].ID {
					errs <- fmt.Errorf("reader %d: latest %d older than a revision already seen", r, latest.ID)
					return
				}
			}
		}(r, h)
	}
	wg.Add(1)
	go func() { // a writer on the second handle, contending for the SQLite write lock
		defer wg.Done()
		for i := 0; i < 50; i++ {
			if err := db2.SetSetting("other-writer", fmt.Sprint(i)); err != nil {
				errs <- fmt.Errorf("second writer: %w", err)
				return
			}
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := db.SaveCaption(im.ID, fmt.Sprintf("rev %03d", i), OriginManual, 0, func() error { return nil }); err != nil {
			t.Errorf("save %d: %v", i, err)
			break
		}
	}
	elapsed := time.Since(start)
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	revs, err := db2.Revisions(im.ID)
	if err != nil || len(revs) != n {
		t.Fatalf("final history: %d revisions, %v", len(revs), err)
	}
	t.Logf("%d saves with 4 concurrent readers and a second writer: %v (%.2f ms/save)", n, elapsed, float64(elapsed.Microseconds())/1000/n)
}
