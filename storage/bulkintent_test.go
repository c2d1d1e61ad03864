package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// intentFixture makes a dataset with n images whose captions "cap i" are in the history as
// imported, and returns the dataset id and the image ids.
func intentFixture(t *testing.T, db *DB, n int) (int64, []int64) {
	t.Helper()
	ds, err := db.EnsureDataset("/data/intent", "sidecar-txt")
	if err != nil {
		t.Fatal(err)
	}
	caps := make([]DiskCaption, n)
	for i := range caps {
		caps[i] = DiskCaption{Rel: fmt.Sprintf("%02d.png", i), Width: 8, Height: 8, Text: fmt.Sprintf("cap %d", i), Recordable: true}
	}
	ids, _, err := db.RecordDiskCaptions(ds.ID, caps)
	if err != nil {
		t.Fatal(err)
	}
	return ds.ID, ids
}

// headText is an image's current caption in the history.
func headText(t *testing.T, db *DB, id int64) (string, Revision) {
	t.Helper()
	r, ok, err := db.LatestRevision(id)
	if err != nil || !ok {
		t.Fatalf("latest revision of image %d: %v %v", id, ok, err)
	}
	return r.Text, r
}

// TestIntentLifecycle walks a bulk intent through create, files done, a refused second
// intent, a refused early completion, roll back, and the same for a completed intent and its
// undo intent, checking the rows and the caption history at each step.
func TestIntentLifecycle(t *testing.T) {
	db := openTest(t)
	ds, ids := intentFixture(t, db, 4)
	plan := func(suffix string) []IntentFile {
		var fs []IntentFile
		for i, id := range ids {
			old, _ := headText(t, db, id)
			fs = append(fs, IntentFile{ImageID: id, Rel: fmt.Sprintf("%02d.png", i), Old: old, New: old + suffix})
		}
		return fs
	}

	// A plan that does not start from the history is refused, and nothing is recorded.
	bad := plan(", x")
	bad[2].Old = "not what the history holds"
	if _, err := db.CreateBulkIntent(ds, "bad", bad); err == nil || !strings.Contains(err.Error(), "02.png") {
		t.Fatalf("a plan not starting from the history: %v", err)
	}
	if _, ok, err := db.UnfinishedIntent(ds); ok || err != nil {
		t.Fatalf("a refused plan left an intent: %v %v", ok, err)
	}
	if _, ok, _ := db.LastBatch(ds); ok {
		t.Fatal("a refused plan left a batch")
	}

	in, err := db.CreateBulkIntent(ds, `append "x"`, plan(", x"))
	if err != nil {
		t.Fatal(err)
	}
	if in.ID == 0 || in.BatchID == 0 || in.Kind != IntentBulk || !in.Unfinished() || in.Count(FilePending) != 4 {
		t.Fatalf("created intent = %+v", in)
	}
	if _, err := db.CreateBulkIntent(ds, "second", plan(", y")); !errors.Is(err, ErrUnfinishedIntent) {
		t.Fatalf("a second intent while one is unfinished: %v", err)
	}
	got, ok, err := db.UnfinishedIntent(ds)
	if err != nil || !ok || got.ID != in.ID || len(got.Files) != 4 || got.Files[1].Old != "cap 1" || got.Files[1].New != "cap 1, x" {
		t.Fatalf("UnfinishedIntent = %+v %v %v", got, ok, err)
	}
	if all, err := db.UnfinishedIntents(); err != nil || len(all) != 1 || all[0].ID != in.ID {
		t.Fatalf("UnfinishedIntents = %+v %v", all, err)
	}

	// Two files written: they get bulk revisions in the batch.
	if err := db.ForwardIntentFiles(in.ID, ids[:2]); err != nil {
		t.Fatal(err)
	}
	if err := db.ForwardIntentFiles(in.ID, ids[:1]); err != nil { // again: nothing new
		t.Fatal(err)
	}
	for i, id := range ids[:2] {
		text, r := headText(t, db, id)
		if text != fmt.Sprintf("cap %d, x", i) || r.Origin != OriginBulk || r.BatchID != in.BatchID {
			t.Errorf("image %d after forward: %+v", i, r)
		}
		if revs, _ := db.Revisions(id); len(revs) != 2 {
			t.Errorf("image %d has %d revisions, want import + one bulk", i, len(revs))
		}
	}
	if err := db.FinishIntent(in.ID, OutcomeComplete); err == nil || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("completing with pending files: %v", err)
	}
	// A file edited by hand is skipped.
	if err := db.SkipIntentFiles(in.ID, ids[3:]); err != nil {
		t.Fatal(err)
	}

	// Roll back: the done files go back to their old text by an undo move (Redo re-applies).
	if err := db.FinishIntent(in.ID, OutcomeRolledBack); err == nil || !strings.Contains(err.Error(), "done") {
		t.Fatalf("rolling back with done files: %v", err)
	}
	if err := db.BackwardIntentFiles(in.ID, ids[:3]); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids[:3] {
		text, r := headText(t, db, id)
		if text != fmt.Sprintf("cap %d", i) {
			t.Errorf("image %d after roll back holds %q", i, text)
		}
		if i < 2 && r.Origin != OriginUndo {
			t.Errorf("image %d roll back revision %+v", i, r)
		}
		if revs, _ := db.Revisions(id); i == 2 && len(revs) != 1 {
			t.Errorf("pending image 2 got revisions on roll back: %+v", revs)
		}
	}
	if r, err := db.Redo(ids[0], func(string) error { return nil }); err != nil || r.Text != "cap 0, x" {
		t.Errorf("Redo after roll back = %+v %v", r, err)
	}
	if _, err := db.Undo(ids[0], func(string) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishIntent(in.ID, OutcomeRolledBack); err != nil {
		t.Fatal(err)
	}
	fin, err := db.Intent(in.ID)
	if err != nil || fin.Unfinished() || fin.Outcome != OutcomeRolledBack || fin.FinishedAt.IsZero() ||
		fin.Count(FileReverted) != 3 || fin.Count(FileSkipped) != 1 {
		t.Fatalf("rolled back intent = %+v %v", fin, err)
	}
	if b, _ := db.Batch(in.BatchID); !b.Undone {
		t.Error("the batch of a rolled back intent is not marked undone")
	}
	if _, ok, _ := db.UnfinishedIntent(ds); ok {
		t.Fatal("a rolled back intent is still unfinished")
	}
	if err := db.ForwardIntentFiles(in.ID, ids[:1]); err == nil {
		t.Fatal("a finished intent took more files")
	}

	// A completed intent, then its undo as an intent of its own.
	in2, err := db.CreateBulkIntent(ds, `append "y"`, plan(", y"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ForwardIntentFiles(in2.ID, ids); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishIntent(in2.ID, OutcomeComplete); err != nil {
		t.Fatal(err)
	}
	if b, ok, err := db.LastBatch(ds); err != nil || !ok || b.ID != in2.BatchID || b.Count != 4 {
		t.Fatalf("LastBatch after a complete intent = %+v %v %v", b, ok, err)
	}
	imgs, err := db.BatchImages(in2.BatchID)
	if err != nil || len(imgs) != 4 {
		t.Fatalf("BatchImages = %+v %v", imgs, err)
	}
	var undo []IntentFile
	for _, b := range imgs {
		if b.Text != b.PreText+", y" || b.HeadState != b.State {
			t.Errorf("batch image %+v", b)
		}
		undo = append(undo, IntentFile{ImageID: b.ImageID, Rel: b.Rel, Old: b.Text, New: b.PreText, OldState: b.State, NewState: b.PreState})
	}
	un, err := db.CreateUndoIntent(in2.BatchID, "undo", undo)
	if err != nil {
		t.Fatal(err)
	}
	if un.Kind != IntentUndo || un.DatasetID != ds || un.BatchID != in2.BatchID {
		t.Fatalf("undo intent = %+v", un)
	}
	// Half the undo, then a roll back of it: those images are at the batch's text again.
	if err := db.ForwardIntentFiles(un.ID, ids[:2]); err != nil {
		t.Fatal(err)
	}
	if text, r := headText(t, db, ids[0]); text != "cap 0" || r.Origin != OriginUndo || r.IsState() {
		t.Errorf("undo of image 0 = %+v (want an undo move)", r)
	}
	if err := db.BackwardIntentFiles(un.ID, ids[:1]); err != nil {
		t.Fatal(err)
	}
	if text, r := headText(t, db, ids[0]); text != "cap 0, y" || r.Origin != OriginRedo {
		t.Errorf("rolling back the undo of image 0 = %+v", r)
	}
	// Finish the undo after all: forward every file, complete, and the batch is undone.
	if err := db.ForwardIntentFiles(un.ID, ids); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishIntent(un.ID, OutcomeComplete); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if text, _ := headText(t, db, id); text != fmt.Sprintf("cap %d", i) {
			t.Errorf("image %d after the undo holds %q", i, text)
		}
	}
	if b, _ := db.Batch(in2.BatchID); !b.Undone {
		t.Error("a completed undo intent left its batch not undone")
	}
	if _, err := db.CreateUndoIntent(in2.BatchID, "again", nil); !errors.Is(err, ErrBatchUndone) {
		t.Errorf("undoing an undone batch: %v", err)
	}
	if _, ok, _ := db.UnfinishedIntent(ds); ok {
		t.Error("an intent is left unfinished")
	}
}
