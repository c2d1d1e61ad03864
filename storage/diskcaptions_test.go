package storage

import (
	"path/filepath"
	"slices"
	"testing"
)

// revTexts lists origin:text of every revision of an image, oldest first.
func revTexts(t *testing.T, db *DB, imageID int64) []string {
	t.Helper()
	revs, err := db.Revisions(imageID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range revs {
		out = append(out, string(r.Origin)+":"+r.Text)
	}
	return out
}

func TestRecordDiskCaptions(t *testing.T) {
	db := openTest(t)
	ds, err := db.EnsureDataset(filepath.Join(t.TempDir(), "set"), "kohya")
	if err != nil {
		t.Fatal(err)
	}
	// b.png is already known, with a hash and a history, before the dataset is recorded.
	b, err := db.EnsureImage(ds.ID, "b.png", "hash-b", 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveCaption(b.ID, "b old", OriginManual, 0, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	caps := []DiskCaption{
		{Rel: "a.png", Width: 32, Height: 16, Text: "a text", Recordable: true},
		{Rel: "b.png", Width: 128, Height: 64, Text: "b changed", Recordable: true},
		{Rel: "c.png", Width: 8, Height: 8, Text: "", Recordable: true},        // no caption
		{Rel: "d.png", Width: 8, Height: 8, Text: "caf\xe9", Recordable: true}, // not UTF-8: never recorded
		{Rel: "e.png", Width: 8, Height: 8, Text: "", Recordable: false},       // unreadable caption
	}
	ids, added, err := db.RecordDiskCaptions(ds.ID, caps)
	if err != nil {
		t.Fatal(err)
	}
	if added != 2 || len(ids) != len(caps) || ids[1] != b.ID {
		t.Fatalf("added %d ids %v (b is %d)", added, ids, b.ID)
	}
	imgs, err := db.Images(ds.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 5 {
		t.Fatalf("%d image rows, want 5", len(imgs))
	}
	for i, im := range imgs {
		if im.ID != ids[i] || im.Rel != caps[i].Rel || im.Width != caps[i].Width || im.Height != caps[i].Height {
			t.Fatalf("image row %+v for %+v (id %d)", im, caps[i], ids[i])
		}
	}
	if imgs[0].Hash != "" || imgs[1].Hash != "hash-b" {
		t.Fatalf("hashes %q %q: new rows start empty, known ones keep theirs", imgs[0].Hash, imgs[1].Hash)
	}
	want := map[int][]string{0: {"import:a text"}, 1: {"manual:b old", "external:b changed"}, 2: nil, 3: nil, 4: nil}
	for i, w := range want {
		if got := revTexts(t, db, ids[i]); !slices.Equal(got, w) {
			t.Fatalf("history of %s: %v, want %v", caps[i].Rel, got, w)
		}
	}
	// The external state is made on the manual one: undo goes back to it.
	f := newCaptionFile(t)
	if rev, err := db.Undo(b.ID, f.write); err != nil || rev.Text != "b old" {
		t.Fatalf("undo of the external change: %+v %v", rev, err)
	}

	// Unchanged: nothing added. The undo above is now on disk as "b old".
	caps[1].Text = "b old"
	if _, added, err := db.RecordDiskCaptions(ds.ID, caps); err != nil || added != 0 {
		t.Fatalf("unchanged: added %d, %v", added, err)
	}
	// a's caption deleted, c captioned, a new image f: an external "" for a, an import for c and f.
	caps[0].Text = ""
	caps[2].Text = "c new"
	caps = append(caps, DiskCaption{Rel: "f.png", Width: 8, Height: 8, Text: "f", Recordable: true})
	ids, added, err = db.RecordDiskCaptions(ds.ID, caps)
	if err != nil || added != 3 {
		t.Fatalf("changed: added %d, %v", added, err)
	}
	if got := revTexts(t, db, ids[0]); !slices.Equal(got, []string{"import:a text", "external:"}) {
		t.Fatalf("history of a after deletion: %v", got)
	}
	if got := revTexts(t, db, ids[2]); !slices.Equal(got, []string{"import:c new"}) {
		t.Fatalf("history of c: %v", got)
	}
	if got := revTexts(t, db, ids[5]); !slices.Equal(got, []string{"import:f"}) {
		t.Fatalf("history of f: %v", got)
	}
	// A rel listed twice is one image row.
	ids, _, err = db.RecordDiskCaptions(ds.ID, []DiskCaption{{Rel: "g.png", Recordable: true}, {Rel: "g.png", Recordable: true}})
	if err != nil || ids[0] != ids[1] {
		t.Fatalf("duplicate rel: %v %v", ids, err)
	}
	if _, _, err := db.RecordDiskCaptions(ds.ID, []DiskCaption{{Rel: ""}}); err == nil {
		t.Fatal("an empty rel was accepted")
	}
}
