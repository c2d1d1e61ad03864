package storage

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Origin says what produced a caption revision.
type Origin string

// The origins of caption revisions.
const (
	OriginManual   Origin = "manual"   // typed and saved by the user
	OriginBulk     Origin = "bulk"     // written by a bulk operation (find/replace, prepend tag ...)
	OriginUndo     Origin = "undo"     // Undo or UndoBatch went back to an earlier text
	OriginRedo     Origin = "redo"     // Redo went forward again
	OriginRestore  Origin = "restore"  // an old revision's text restored as a new state
	OriginImport   Origin = "import"   // the caption file as first seen on disk
	OriginExternal Origin = "external" // the caption file was changed on disk by another program
)

// ErrNothingToUndo is returned (wrapped) by Undo when the image is at its oldest state.
var ErrNothingToUndo = errors.New("nothing to undo")

// ErrNothingToRedo is returned (wrapped) by Redo when no undone state is left to redo.
var ErrNothingToRedo = errors.New("nothing to redo")

// ErrBatchUndone is returned (wrapped) when a batch that was already undone is undone again
// or given new revisions.
var ErrBatchUndone = errors.New("batch already undone")

// Revision is one entry of an image's caption history. Every row records the caption text
// as it is after the event, so the latest revision always holds the current caption.
//
// Edits (origins manual, bulk, restore, import, external, and the undo rows UndoBatch writes
// for images changed after the batch) are states: StateID == ID and ParentID is the state
// the edit was made on. Undo and Redo rows are moves: StateID is the earlier state they
// return to (0 = the empty state before any caption) and ParentID is 0.
type Revision struct {
	ID, ImageID int64
	Text        string
	Origin      Origin
	Time        time.Time
	BatchID     int64 // the bulk batch that wrote this revision; 0 = none
	ParentID    int64 // for a state: the state it was made on; 0 = the empty initial state
	StateID     int64 // the state the caption is in after this revision; 0 = the empty initial state
	SourceID    int64 // for a restore: the revision whose text was restored; else 0
}

// IsState reports whether r is an edit (a state of its own) rather than an undo/redo move.
func (r Revision) IsState() bool { return r.StateID == r.ID }

// Batch groups the revisions of one bulk operation so it can be undone in one step.
type Batch struct {
	ID, DatasetID int64
	Description   string
	Time          time.Time
	Undone        bool
	UndoneAt      time.Time // zero unless Undone
	Count         int       // number of images the batch changed
}

// queryRower is what *sql.DB and *sql.Tx share for single-row queries.
type queryRower interface {
	QueryRow(query string, args ...any) *sql.Row
}

const revCols = `id, image_id, text, origin, created_at, batch_id, parent_id, state_id, source_id`

type rowScanner interface{ Scan(dest ...any) error }

func scanRevision(s rowScanner) (Revision, error) {
	var r Revision
	var origin string
	var created int64
	var batch, parent, state, source sql.NullInt64
	if err := s.Scan(&r.ID, &r.ImageID, &r.Text, &origin, &created, &batch, &parent, &state, &source); err != nil {
		return Revision{}, err
	}
	r.Origin = Origin(origin)
	r.Time = fromNanos(created)
	r.BatchID, r.ParentID, r.StateID, r.SourceID = batch.Int64, parent.Int64, state.Int64, source.Int64
	return r, nil
}

// revisionByID reads one revision; ok is false when it does not exist.
func revisionByID(q queryRower, id int64) (Revision, bool, error) {
	r, err := scanRevision(q.QueryRow(`SELECT `+revCols+` FROM caption_revisions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Revision{}, false, nil
	}
	if err != nil {
		return Revision{}, false, err
	}
	return r, true, nil
}

// needRevision reads one revision that must exist.
func needRevision(q queryRower, id int64) (Revision, error) {
	r, ok, err := revisionByID(q, id)
	if err == nil && !ok {
		err = fmt.Errorf("revision %d is missing", id)
	}
	return r, err
}

// latestRevision reads an image's newest revision; ok is false when it has none.
func latestRevision(q queryRower, imageID int64) (Revision, bool, error) {
	r, err := scanRevision(q.QueryRow(`SELECT `+revCols+` FROM caption_revisions WHERE image_id = ? ORDER BY id DESC LIMIT 1`, imageID))
	if errors.Is(err, sql.ErrNoRows) {
		return Revision{}, false, nil
	}
	if err != nil {
		return Revision{}, false, err
	}
	return r, true, nil
}

// tipState returns the image's newest state (the end of its redo path); 0 when it has none.
func tipState(q queryRower, imageID int64) (int64, error) {
	var id sql.NullInt64
	err := q.QueryRow(`SELECT max(id) FROM caption_revisions WHERE image_id = ? AND state_id = id`, imageID).Scan(&id)
	return id.Int64, err
}

// Revisions returns every revision ever recorded for the image, oldest first.
func (db *DB) Revisions(imageID int64) ([]Revision, error) {
	rows, err := db.sql.Query(`SELECT `+revCols+` FROM caption_revisions WHERE image_id = ? ORDER BY id`, imageID)
	if err != nil {
		return nil, db.errf(err, "reading the caption history of image %d", imageID)
	}
	defer rows.Close()
	var out []Revision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, db.errf(err, "reading the caption history of image %d", imageID)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "reading the caption history of image %d", imageID)
	}
	return out, nil
}

// LatestRevision returns the image's newest revision (whose Text is the current caption) and
// whether it has any.
func (db *DB) LatestRevision(imageID int64) (Revision, bool, error) {
	r, ok, err := latestRevision(db.sql, imageID)
	if err != nil {
		return Revision{}, false, db.errf(err, "reading the latest caption of image %d", imageID)
	}
	return r, ok, nil
}

// Revision returns the revision with the given id, or an error wrapping ErrNotFound.
func (db *DB) Revision(id int64) (Revision, error) {
	r, ok, err := revisionByID(db.sql, id)
	if err != nil {
		return Revision{}, db.errf(err, "reading caption revision %d", id)
	}
	if !ok {
		return Revision{}, fmt.Errorf("storage: %s: caption revision %d: %w", db.path, id, ErrNotFound)
	}
	return r, nil
}

// insertState records an edit: a new state made on parent (0 = the empty state).
func insertState(tx *sql.Tx, imageID int64, text string, origin Origin, batchID, parent, source int64) (Revision, error) {
	r := Revision{ImageID: imageID, Text: text, Origin: origin, BatchID: batchID, ParentID: parent, SourceID: source}
	var created int64
	err := tx.QueryRow(`INSERT INTO caption_revisions (image_id, text, origin, created_at, batch_id, parent_id, source_id)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id, created_at`,
		imageID, text, string(origin), now(), nullID(batchID), nullID(parent), nullID(source)).Scan(&r.ID, &created)
	if err != nil {
		return Revision{}, err
	}
	if _, err := tx.Exec(`UPDATE caption_revisions SET state_id = id WHERE id = ?`, r.ID); err != nil {
		return Revision{}, err
	}
	r.StateID = r.ID
	r.Time = fromNanos(created)
	return r, nil
}

// insertMove records an undo or redo that returns the caption to state (0 = empty state).
func insertMove(tx *sql.Tx, imageID int64, text string, origin Origin, state int64) (Revision, error) {
	r := Revision{ImageID: imageID, Text: text, Origin: origin, StateID: state}
	var created int64
	err := tx.QueryRow(`INSERT INTO caption_revisions (image_id, text, origin, created_at, state_id)
		VALUES (?, ?, ?, ?, ?) RETURNING id, created_at`,
		imageID, text, string(origin), now(), nullID(state)).Scan(&r.ID, &created)
	if err != nil {
		return Revision{}, err
	}
	r.Time = fromNanos(created)
	return r, nil
}

// currentState returns the state the image's caption is in (0 = empty) and its text.
func currentState(tx *sql.Tx, imageID int64) (int64, string, error) {
	latest, ok, err := latestRevision(tx, imageID)
	if err != nil || !ok {
		return 0, "", err
	}
	return latest.StateID, latest.Text, nil
}

// imageDataset returns the dataset of an image, or an error wrapping ErrNotFound.
func imageDataset(tx *sql.Tx, imageID int64) (int64, error) {
	var ds int64
	err := tx.QueryRow(`SELECT dataset_id FROM images WHERE id = ?`, imageID).Scan(&ds)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("image %d: %w", imageID, ErrNotFound)
	}
	return ds, err
}

// SaveCaption records text as the image's new caption state. It runs in one transaction: it
// inserts the revision, then calls write (where the caller writes the caption file); if write
// returns an error the transaction is rolled back, nothing is recorded, and the error is
// returned wrapped. A new save clears the image's redo. origin must be manual, bulk, import or
// external (undo, redo and restore have their own methods); batchID groups a bulk edit (0 =
// none) and must be a batch of the image's dataset that is not undone. write must not use db.
func (db *DB) SaveCaption(imageID int64, text string, origin Origin, batchID int64, write func() error) (Revision, error) {
	switch origin {
	case OriginManual, OriginBulk, OriginImport, OriginExternal:
	default:
		return Revision{}, fmt.Errorf("storage: %s: SaveCaption of image %d: origin %q is not a save (use Undo, Redo or Restore)", db.path, imageID, origin)
	}
	if !utf8.ValidString(text) {
		return Revision{}, fmt.Errorf("storage: %s: caption of image %d is not valid UTF-8", db.path, imageID)
	}
	var rev Revision
	err := db.writeTx(func(tx *sql.Tx) error {
		ds, err := imageDataset(tx, imageID)
		if err != nil {
			return err
		}
		if batchID != 0 {
			var bds int64
			var undone sql.NullInt64
			err := tx.QueryRow(`SELECT dataset_id, undone_at FROM caption_batches WHERE id = ?`, batchID).Scan(&bds, &undone)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("batch %d: %w", batchID, ErrNotFound)
			}
			if err != nil {
				return err
			}
			if bds != ds {
				return fmt.Errorf("batch %d belongs to dataset %d, image %d to dataset %d", batchID, bds, imageID, ds)
			}
			if undone.Valid {
				return fmt.Errorf("batch %d: %w", batchID, ErrBatchUndone)
			}
		}
		head, _, err := currentState(tx, imageID)
		if err != nil {
			return err
		}
		rev, err = insertState(tx, imageID, text, origin, batchID, head, 0)
		if err != nil {
			return err
		}
		if err := write(); err != nil {
			return fmt.Errorf("writing the caption: %w", err)
		}
		return nil
	})
	if err != nil {
		return Revision{}, db.errf(err, "saving the caption of image %d", imageID)
	}
	return rev, nil
}

// Undo moves the image's caption back one state: to the text it had before its current state
// was made. Repeated Undo walks further back; Redo walks forward again until the next save.
// Each Undo is recorded as a revision with origin undo, and write(text) is called inside the
// transaction exactly like SaveCaption's write. Undoing the image's very first state, when
// that state was a save (the image had no caption before), returns a Revision whose Text is
// "": the empty initial state, for which write may delete the caption file. A first state
// that was imported from disk is the floor: the app never undoes past what it found on disk.
// With nothing left to undo the error wraps ErrNothingToUndo.
func (db *DB) Undo(imageID int64, write func(text string) error) (Revision, error) {
	var rev Revision
	err := db.writeTx(func(tx *sql.Tx) error {
		head, _, err := currentState(tx, imageID)
		if err != nil {
			return err
		}
		if head == 0 {
			return ErrNothingToUndo
		}
		cur, err := needRevision(tx, head)
		if err != nil {
			return err
		}
		if cur.ParentID == 0 && cur.Origin == OriginImport {
			return ErrNothingToUndo
		}
		text := ""
		if cur.ParentID != 0 {
			prev, err := needRevision(tx, cur.ParentID)
			if err != nil {
				return err
			}
			text = prev.Text
		}
		rev, err = insertMove(tx, imageID, text, OriginUndo, cur.ParentID)
		if err != nil {
			return err
		}
		if err := write(text); err != nil {
			return fmt.Errorf("writing the caption: %w", err)
		}
		return nil
	})
	if err != nil {
		return Revision{}, db.errf(err, "undoing the caption of image %d", imageID)
	}
	return rev, nil
}

// Redo moves the image's caption forward one state again after Undo, recording a revision
// with origin redo and calling write(text) inside the transaction. After a new save (or
// restore) there is nothing to redo: the error wraps ErrNothingToRedo.
func (db *DB) Redo(imageID int64, write func(text string) error) (Revision, error) {
	var rev Revision
	err := db.writeTx(func(tx *sql.Tx) error {
		head, _, err := currentState(tx, imageID)
		if err != nil {
			return err
		}
		tip, err := tipState(tx, imageID)
		if err != nil {
			return err
		}
		if tip == 0 || tip == head {
			return ErrNothingToRedo
		}
		// Walk back from the newest state to the child of the current state: that is the
		// next state forward. The current state is always on this path (see README.md).
		next, err := needRevision(tx, tip)
		for err == nil && next.ParentID != head {
			if next.ParentID == 0 {
				return fmt.Errorf("state %d is not on the redo path of state %d", head, tip)
			}
			next, err = needRevision(tx, next.ParentID)
		}
		if err != nil {
			return err
		}
		rev, err = insertMove(tx, imageID, next.Text, OriginRedo, next.ID)
		if err != nil {
			return err
		}
		if err := write(next.Text); err != nil {
			return fmt.Errorf("writing the caption: %w", err)
		}
		return nil
	})
	if err != nil {
		return Revision{}, db.errf(err, "redoing the caption of image %d", imageID)
	}
	return rev, nil
}

// Restore records the text of an old revision of the image as a new state (origin restore,
// SourceID = revisionID), calling write(text) inside the transaction. Like a save it clears
// redo; Undo afterwards returns to the text from before the restore.
func (db *DB) Restore(imageID, revisionID int64, write func(text string) error) (Revision, error) {
	var rev Revision
	err := db.writeTx(func(tx *sql.Tx) error {
		src, ok, err := revisionByID(tx, revisionID)
		if err != nil {
			return err
		}
		if !ok || src.ImageID != imageID {
			return fmt.Errorf("revision %d of image %d: %w", revisionID, imageID, ErrNotFound)
		}
		head, _, err := currentState(tx, imageID)
		if err != nil {
			return err
		}
		rev, err = insertState(tx, imageID, src.Text, OriginRestore, 0, head, revisionID)
		if err != nil {
			return err
		}
		if err := write(src.Text); err != nil {
			return fmt.Errorf("writing the caption: %w", err)
		}
		return nil
	})
	if err != nil {
		return Revision{}, db.errf(err, "restoring revision %d of image %d", revisionID, imageID)
	}
	return rev, nil
}

// BeginBatch starts a bulk operation on the dataset; pass its ID to SaveCaption for every
// caption the operation writes.
func (db *DB) BeginBatch(datasetID int64, description string) (Batch, error) {
	b := Batch{DatasetID: datasetID, Description: description}
	var created int64
	err := db.writeTx(func(tx *sql.Tx) error {
		return tx.QueryRow(`INSERT INTO caption_batches (dataset_id, description, created_at) VALUES (?, ?, ?) RETURNING id, created_at`,
			datasetID, description, now()).Scan(&b.ID, &created)
	})
	if err != nil {
		return Batch{}, db.errf(err, "starting a batch on dataset %d", datasetID)
	}
	b.Time = fromNanos(created)
	return b, nil
}

const batchSelect = `SELECT b.id, b.dataset_id, b.description, b.created_at, b.undone_at,
	(SELECT count(DISTINCT r.image_id) FROM caption_revisions r WHERE r.batch_id = b.id AND r.state_id = r.id AND r.origin <> 'undo')
	FROM caption_batches b `

func scanBatch(s rowScanner) (Batch, error) {
	var b Batch
	var created int64
	var undone sql.NullInt64
	if err := s.Scan(&b.ID, &b.DatasetID, &b.Description, &created, &undone, &b.Count); err != nil {
		return Batch{}, err
	}
	b.Time = fromNanos(created)
	b.Undone = undone.Valid
	b.UndoneAt = fromNullNanos(undone)
	return b, nil
}

// Batch returns the batch with the given id, or an error wrapping ErrNotFound.
func (db *DB) Batch(id int64) (Batch, error) {
	b, err := scanBatch(db.sql.QueryRow(batchSelect+`WHERE b.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Batch{}, fmt.Errorf("storage: %s: batch %d: %w", db.path, id, ErrNotFound)
	}
	if err != nil {
		return Batch{}, db.errf(err, "reading batch %d", id)
	}
	return b, nil
}

// LastBatch returns the dataset's most recent batch that is not yet undone, and whether
// there is one.
func (db *DB) LastBatch(datasetID int64) (Batch, bool, error) {
	b, err := scanBatch(db.sql.QueryRow(batchSelect+`WHERE b.dataset_id = ? AND b.undone_at IS NULL ORDER BY b.id DESC LIMIT 1`, datasetID))
	if errors.Is(err, sql.ErrNoRows) {
		return Batch{}, false, nil
	}
	if err != nil {
		return Batch{}, false, db.errf(err, "reading the last batch of dataset %d", datasetID)
	}
	return b, true, nil
}

// Batches returns the dataset's batches, newest first, undone ones included.
func (db *DB) Batches(datasetID int64) ([]Batch, error) {
	rows, err := db.sql.Query(batchSelect+`WHERE b.dataset_id = ? ORDER BY b.id DESC`, datasetID)
	if err != nil {
		return nil, db.errf(err, "listing the batches of dataset %d", datasetID)
	}
	defer rows.Close()
	var out []Batch
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			return nil, db.errf(err, "listing the batches of dataset %d", datasetID)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "listing the batches of dataset %d", datasetID)
	}
	return out, nil
}

// UndoBatch puts every image the batch changed back to the text it had just before the batch
// (the state its first revision in the batch was made on; "" when it had no caption), calling
// write(imageID, text) for each, and then marks the batch undone. It returns how many images
// it changed.
//
// An image still at the batch's last state for it is moved back like Undo (an undo move, so
// Redo can re-apply the batch's edit to it). An image changed again after the batch is still
// restored to its pre-batch text, as a new state with origin undo made on its current state
// (later edits stay in its history and are reachable by Undo). An image already at its
// pre-batch text is left alone and not counted.
//
// Each image is its own transaction, because each write changes a file: if write fails,
// images already done stay done (database and file agree), UndoBatch returns the count so far
// and the error, and the batch stays not undone; calling UndoBatch again finishes the job.
func (db *DB) UndoBatch(batchID int64, write func(imageID int64, text string) error) (int, error) {
	b, err := db.Batch(batchID)
	if err != nil {
		return 0, err
	}
	if b.Undone {
		return 0, fmt.Errorf("storage: %s: undoing batch %d: %w", db.path, batchID, ErrBatchUndone)
	}
	type span struct{ image, first, last int64 }
	var spans []span
	rows, err := db.sql.Query(`SELECT image_id, min(id), max(id) FROM caption_revisions
		WHERE batch_id = ? AND state_id = id AND origin <> 'undo' GROUP BY image_id ORDER BY image_id`, batchID)
	if err != nil {
		return 0, db.errf(err, "reading batch %d", batchID)
	}
	for rows.Next() {
		var s span
		if err := rows.Scan(&s.image, &s.first, &s.last); err != nil {
			rows.Close()
			return 0, db.errf(err, "reading batch %d", batchID)
		}
		spans = append(spans, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, db.errf(err, "reading batch %d", batchID)
	}
	count := 0
	for _, s := range spans {
		changed := false
		err := db.writeTx(func(tx *sql.Tx) error {
			first, err := needRevision(tx, s.first)
			if err != nil {
				return err
			}
			pre, preText := first.ParentID, ""
			if pre != 0 {
				p, err := needRevision(tx, pre)
				if err != nil {
					return err
				}
				preText = p.Text
			}
			head, headText, err := currentState(tx, s.image)
			if err != nil {
				return err
			}
			switch {
			case head == s.last:
				_, err = insertMove(tx, s.image, preText, OriginUndo, pre)
			case headText == preText:
				return nil
			default:
				_, err = insertState(tx, s.image, preText, OriginUndo, 0, head, 0)
			}
			if err != nil {
				return err
			}
			if err := write(s.image, preText); err != nil {
				return fmt.Errorf("writing the caption: %w", err)
			}
			changed = true
			return nil
		})
		if err != nil {
			return count, db.errf(err, "undoing batch %d on image %d", batchID, s.image)
		}
		if changed {
			count++
		}
	}
	err = db.writeTx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`UPDATE caption_batches SET undone_at = ? WHERE id = ?`, now(), batchID)
		return err
	})
	if err != nil {
		return count, db.errf(err, "marking batch %d undone", batchID)
	}
	return count, nil
}

// DiskCaption is one image of a dataset as found on disk, for RecordDiskCaptions.
type DiskCaption struct {
	Rel           string // slash-separated path relative to the dataset root
	Width, Height int    // pixel size from the image header
	Text          string // the caption file's text; "" = no caption file (or an empty one)
	Recordable    bool   // the caption could be read as UTF-8 text; false = only the image row is made
}

// RecordDiskCaptions brings the history of a dataset up to date with its caption files, in
// one transaction. Every image gets a row (a new one with an empty hash, for the caller to
// fill in later with EnsureImage; an existing one keeps its hash and gets the new size). For
// every Recordable caption: an image with no revision and a non-empty text gets an import
// state; an image whose newest revision's text differs from Text gets an external state made
// on its current state. It returns the image ids in the order of caps and how many
// revisions it added; a dataset unchanged since the last call gets none and no writes.
func (db *DB) RecordDiskCaptions(datasetID int64, caps []DiskCaption) ([]int64, int, error) {
	type known struct {
		id            int64
		width, height int
	}
	type latest struct {
		text  string
		state int64
	}
	ids := make([]int64, len(caps))
	added := 0
	err := db.writeTx(func(tx *sql.Tx) error {
		images := map[string]known{}
		rows, err := tx.Query(`SELECT id, rel, width, height FROM images WHERE dataset_id = ?`, datasetID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k known
			var rel string
			if err := rows.Scan(&k.id, &rel, &k.width, &k.height); err != nil {
				rows.Close()
				return err
			}
			images[rel] = k
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		heads := map[int64]latest{}
		rows, err = tx.Query(`SELECT r.image_id, r.text, r.state_id FROM caption_revisions r JOIN images i ON i.id = r.image_id
			WHERE i.dataset_id = ? AND r.id = (SELECT max(id) FROM caption_revisions WHERE image_id = r.image_id)`, datasetID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var l latest
			var state sql.NullInt64
			if err := rows.Scan(&id, &l.text, &state); err != nil {
				rows.Close()
				return err
			}
			l.state = state.Int64
			heads[id] = l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var insert, resize, addRev, setState *sql.Stmt
		defer func() {
			for _, st := range []*sql.Stmt{insert, resize, addRev, setState} {
				if st != nil {
					st.Close()
				}
			}
		}()
		t := now()
		for i, c := range caps {
			if c.Rel == "" {
				return fmt.Errorf("image path in dataset %d is empty", datasetID)
			}
			k, ok := images[c.Rel]
			switch {
			case !ok:
				if insert == nil {
					if insert, err = tx.Prepare(`INSERT INTO images (dataset_id, rel, hash, width, height, created_at)
						VALUES (?, ?, '', ?, ?, ?) RETURNING id`); err != nil {
						return err
					}
				}
				if err := insert.QueryRow(datasetID, c.Rel, c.Width, c.Height, t).Scan(&k.id); err != nil {
					return fmt.Errorf("image %q: %w", c.Rel, err)
				}
				k.width, k.height = c.Width, c.Height
				images[c.Rel] = k
			case k.width != c.Width || k.height != c.Height:
				if resize == nil {
					if resize, err = tx.Prepare(`UPDATE images SET width = ?, height = ? WHERE id = ?`); err != nil {
						return err
					}
				}
				if _, err := resize.Exec(c.Width, c.Height, k.id); err != nil {
					return fmt.Errorf("image %q: %w", c.Rel, err)
				}
				k.width, k.height = c.Width, c.Height
				images[c.Rel] = k
			}
			ids[i] = k.id
			if !c.Recordable || !utf8.ValidString(c.Text) {
				continue
			}
			head, has := heads[k.id]
			var origin Origin
			switch {
			case !has && c.Text != "":
				origin = OriginImport
			case has && head.text != c.Text:
				origin = OriginExternal
			default:
				continue
			}
			// insertState's two statements, prepared once for the whole dataset.
			if addRev == nil {
				if addRev, err = tx.Prepare(`INSERT INTO caption_revisions (image_id, text, origin, created_at, parent_id)
					VALUES (?, ?, ?, ?, ?) RETURNING id`); err != nil {
					return err
				}
				if setState, err = tx.Prepare(`UPDATE caption_revisions SET state_id = id WHERE id = ?`); err != nil {
					return err
				}
			}
			var rev int64
			if err := addRev.QueryRow(k.id, c.Text, string(origin), t, nullID(head.state)).Scan(&rev); err != nil {
				return fmt.Errorf("caption of image %q: %w", c.Rel, err)
			}
			if _, err := setState.Exec(rev); err != nil {
				return fmt.Errorf("caption of image %q: %w", c.Rel, err)
			}
			heads[k.id] = latest{text: c.Text, state: rev}
			added++
		}
		return nil
	})
	if err != nil {
		return nil, 0, db.errf(err, "recording the captions on disk of dataset %d", datasetID)
	}
	return ids, added, nil
}
