package storage

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// bulkIntentMigration is the schema step behind crash-safe multi-file caption writes: before
// the first file of a bulk edit (or of the undo of one) changes, the whole plan — every file
// with its old and new text — is one committed transaction, so a process killed half-way
// leaves a record of what it was doing and the next open can finish or roll it back.
const bulkIntentMigration = `
CREATE TABLE caption_intents (
	id          INTEGER PRIMARY KEY,
	dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
	batch_id    INTEGER NOT NULL REFERENCES caption_batches(id) ON DELETE CASCADE,
	kind        TEXT    NOT NULL CHECK (kind IN ('bulk', 'undo')),
	description TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	finished_at INTEGER,
	outcome     TEXT    CHECK (outcome IN ('complete', 'rolled_back')),
	CHECK ((finished_at IS NULL) = (outcome IS NULL))
);
-- At most one unfinished multi-file write per dataset.
CREATE UNIQUE INDEX caption_intents_unfinished ON caption_intents (dataset_id) WHERE finished_at IS NULL;
CREATE INDEX caption_intents_batch ON caption_intents (batch_id);

CREATE TABLE caption_intent_files (
	intent_id INTEGER NOT NULL REFERENCES caption_intents(id) ON DELETE CASCADE,
	image_id  INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	rel       TEXT    NOT NULL,
	old_text  TEXT    NOT NULL,
	new_text  TEXT    NOT NULL,
	old_state INTEGER REFERENCES caption_revisions(id),
	new_state INTEGER REFERENCES caption_revisions(id),
	state     TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'reverted', 'skipped')),
	PRIMARY KEY (intent_id, image_id)
) WITHOUT ROWID;
`

// IntentKind is what a multi-file caption write does.
type IntentKind string

// The kinds of intents.
const (
	IntentBulk IntentKind = "bulk" // a bulk edit: writes a new batch
	IntentUndo IntentKind = "undo" // the undo of a batch: puts its images back to their pre-batch text
)

// IntentFileState is where one file of an intent stands, as far as the history knows.
type IntentFileState string

// The states of an intent's file. The history holds the file's New text exactly when its
// state is done.
const (
	FilePending  IntentFileState = "pending"  // not yet written: the history holds Old
	FileDone     IntentFileState = "done"     // New written and recorded
	FileReverted IntentFileState = "reverted" // rolled back: the history holds Old again
	FileSkipped  IntentFileState = "skipped"  // edited by hand since the intent was made: left as it is
)

// IntentOutcome is how an intent ended; "" while it is unfinished.
type IntentOutcome string

// The outcomes of a finished intent.
const (
	OutcomeComplete   IntentOutcome = "complete"
	OutcomeRolledBack IntentOutcome = "rolled_back"
)

// ErrUnfinishedIntent is returned (wrapped) when a dataset already has an unfinished
// multi-file write: finish it or roll it back first.
var ErrUnfinishedIntent = errors.New("the dataset has an unfinished bulk edit")

// IntentFile is one caption file of an intent.
//
// OldState and NewState are the revisions that hold Old and New (0 = the empty state, or,
// for NewState of a bulk intent, not yet written). For a bulk intent OldState is the image's
// state when the intent was made and NewState the bulk revision once done. For an undo
// intent OldState is the batch's last state of the image and NewState the state before the
// batch, which the undo returns to.
type IntentFile struct {
	ImageID            int64
	Rel                string // slash-separated path of the image relative to the dataset root
	Old, New           string // caption text before and after the write ("" = no caption)
	OldState, NewState int64
	State              IntentFileState
}

// Intent is a multi-file caption write recorded before its first file changed.
type Intent struct {
	ID, DatasetID int64
	BatchID       int64 // bulk: the batch it writes; undo: the batch it undoes
	Kind          IntentKind
	Description   string
	Time          time.Time
	FinishedAt    time.Time     // zero while unfinished
	Outcome       IntentOutcome // "" while unfinished
	Files         []IntentFile  // in path order
}

// Unfinished reports whether the intent is neither complete nor rolled back.
func (in Intent) Unfinished() bool { return in.Outcome == "" }

// Count returns how many of the intent's files are in state s.
func (in Intent) Count(s IntentFileState) int {
	n := 0
	for _, f := range in.Files {
		if f.State == s {
			n++
		}
	}
	return n
}

// unfinishedIntentID returns the dataset's unfinished intent, 0 when none.
func unfinishedIntentID(q queryRower, datasetID int64) (int64, error) {
	var id int64
	err := q.QueryRow(`SELECT id FROM caption_intents WHERE dataset_id = ? AND finished_at IS NULL`, datasetID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// checkIntentFiles checks the files of a new intent against the dataset and the history:
// every image belongs to the dataset, appears once, has UTF-8 texts that differ, and its
// current caption in the history is Old (the caller records what is on disk first, so the
// plan starts from what the history knows). It fills in OldState from the history when
// fillOld is set.
func checkIntentFiles(tx *sql.Tx, datasetID int64, files []IntentFile, fillOld bool) error {
	seen := map[int64]bool{}
	for i := range files {
		f := &files[i]
		if seen[f.ImageID] {
			return fmt.Errorf("image %q is in the plan twice", f.Rel)
		}
		seen[f.ImageID] = true
		if !utf8.ValidString(f.Old) || !utf8.ValidString(f.New) {
			return fmt.Errorf("caption of image %q is not valid UTF-8", f.Rel)
		}
		if f.Old == f.New {
			return fmt.Errorf("caption of image %q does not change", f.Rel)
		}
		ds, err := imageDataset(tx, f.ImageID)
		if err != nil {
			return fmt.Errorf("image %q: %w", f.Rel, err)
		}
		if ds != datasetID {
			return fmt.Errorf("image %q (id %d) belongs to dataset %d, not %d", f.Rel, f.ImageID, ds, datasetID)
		}
		head, text, err := currentState(tx, f.ImageID)
		if err != nil {
			return err
		}
		if text != f.Old {
			return fmt.Errorf("image %q: the history holds %q, the plan starts from %q (record the caption on disk first)", f.Rel, text, f.Old)
		}
		if fillOld {
			f.OldState = head
		}
	}
	return nil
}

// insertIntent writes an intent row and its files.
func insertIntent(tx *sql.Tx, in *Intent) error {
	var created int64
	err := tx.QueryRow(`INSERT INTO caption_intents (dataset_id, batch_id, kind, description, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id, created_at`,
		in.DatasetID, in.BatchID, string(in.Kind), in.Description, now()).Scan(&in.ID, &created)
	if err != nil {
		return err
	}
	in.Time = fromNanos(created)
	st, err := tx.Prepare(`INSERT INTO caption_intent_files (intent_id, image_id, rel, old_text, new_text, old_state, new_state, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')`)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range in.Files {
		f := &in.Files[i]
		f.State = FilePending
		if _, err := st.Exec(in.ID, f.ImageID, f.Rel, f.Old, f.New, nullID(f.OldState), nullID(f.NewState)); err != nil {
			return fmt.Errorf("image %q: %w", f.Rel, err)
		}
	}
	return nil
}

// refuseUnfinished returns an error wrapping ErrUnfinishedIntent when the dataset has one.
func refuseUnfinished(tx *sql.Tx, datasetID int64) error {
	open, err := unfinishedIntentID(tx, datasetID)
	if err != nil {
		return err
	}
	if open != 0 {
		return fmt.Errorf("intent %d: %w", open, ErrUnfinishedIntent)
	}
	return nil
}

// CreateBulkIntent records, in one transaction, a new batch on the dataset and the intent to
// write it: every file with its old and new text. Each image's current caption in the
// history must be its Old text. Nothing is written to disk; the caller writes each file and
// then calls ForwardIntentFiles. It refuses (ErrUnfinishedIntent) while the dataset has an
// unfinished intent.
func (db *DB) CreateBulkIntent(datasetID int64, description string, files []IntentFile) (Intent, error) {
	in := Intent{DatasetID: datasetID, Kind: IntentBulk, Description: description,
		Files: append([]IntentFile(nil), files...)}
	err := db.writeTx(func(tx *sql.Tx) error {
		if err := refuseUnfinished(tx, datasetID); err != nil {
			return err
		}
		for i := range in.Files {
			in.Files[i].NewState = 0 // set when the file is written
		}
		if err := checkIntentFiles(tx, datasetID, in.Files, true); err != nil {
			return err
		}
		if err := tx.QueryRow(`INSERT INTO caption_batches (dataset_id, description, created_at) VALUES (?, ?, ?) RETURNING id`,
			datasetID, description, now()).Scan(&in.BatchID); err != nil {
			return err
		}
		return insertIntent(tx, &in)
	})
	if err != nil {
		return Intent{}, db.errf(err, "recording the bulk edit %q of dataset %d", description, datasetID)
	}
	return in, nil
}

// BatchImage is one image a batch changed, for planning its undo.
type BatchImage struct {
	ImageID   int64
	Rel       string
	Text      string // the caption the batch left (its last state of the image)
	State     int64  // that state
	PreText   string // the caption just before the batch ("" = none)
	PreState  int64  // that state (0 = the empty state)
	HeadState int64  // the image's current state
	HeadText  string // the image's current caption in the history
}

// BatchImages lists the images a batch changed, in path order, with the text it left and the
// text from before it. It works for batches written before intents existed too.
func (db *DB) BatchImages(batchID int64) ([]BatchImage, error) {
	rows, err := db.sql.Query(`SELECT r.image_id, i.rel, min(r.id), max(r.id) FROM caption_revisions r JOIN images i ON i.id = r.image_id
		WHERE r.batch_id = ? AND r.state_id = r.id AND r.origin <> 'undo' GROUP BY r.image_id ORDER BY i.rel`, batchID)
	if err != nil {
		return nil, db.errf(err, "reading batch %d", batchID)
	}
	type span struct {
		img         BatchImage
		first, last int64
	}
	var spans []span
	for rows.Next() {
		var s span
		if err := rows.Scan(&s.img.ImageID, &s.img.Rel, &s.first, &s.last); err != nil {
			rows.Close()
			return nil, db.errf(err, "reading batch %d", batchID)
		}
		spans = append(spans, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "reading batch %d", batchID)
	}
	out := make([]BatchImage, 0, len(spans))
	for _, s := range spans {
		b := s.img
		first, err := needRevision(db.sql, s.first)
		if err != nil {
			return nil, db.errf(err, "reading batch %d", batchID)
		}
		last, err := needRevision(db.sql, s.last)
		if err != nil {
			return nil, db.errf(err, "reading batch %d", batchID)
		}
		b.Text, b.State, b.PreState = last.Text, last.ID, first.ParentID
		if first.ParentID != 0 {
			p, err := needRevision(db.sql, first.ParentID)
			if err != nil {
				return nil, db.errf(err, "reading batch %d", batchID)
			}
			b.PreText = p.Text
		}
		head, ok, err := latestRevision(db.sql, b.ImageID)
		if err != nil {
			return nil, db.errf(err, "reading batch %d", batchID)
		}
		if ok {
			b.HeadState, b.HeadText = head.StateID, head.Text
		}
		out = append(out, b)
	}
	return out, nil
}

// CreateUndoIntent records the intent to undo a batch: for every file, Old is the text the
// batch left and New the text from before it, OldState and NewState their states (from
// BatchImages). Images the undo leaves alone (already back, or edited by hand since) are
// simply not in files. Each image's current caption in the history must be its Old text. It
// refuses an undone batch (ErrBatchUndone) and a dataset with an unfinished intent.
func (db *DB) CreateUndoIntent(batchID int64, description string, files []IntentFile) (Intent, error) {
	in := Intent{BatchID: batchID, Kind: IntentUndo, Description: description,
		Files: append([]IntentFile(nil), files...)}
	err := db.writeTx(func(tx *sql.Tx) error {
		var undone sql.NullInt64
		err := tx.QueryRow(`SELECT dataset_id, undone_at FROM caption_batches WHERE id = ?`, batchID).Scan(&in.DatasetID, &undone)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("batch %d: %w", batchID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if undone.Valid {
			return fmt.Errorf("batch %d: %w", batchID, ErrBatchUndone)
		}
		if err := refuseUnfinished(tx, in.DatasetID); err != nil {
			return err
		}
		if err := checkIntentFiles(tx, in.DatasetID, in.Files, false); err != nil {
			return err
		}
		return insertIntent(tx, &in)
	})
	if err != nil {
		return Intent{}, db.errf(err, "recording the undo of batch %d", batchID)
	}
	return in, nil
}

const intentCols = `id, dataset_id, batch_id, kind, description, created_at, finished_at, outcome`

// readIntent reads an intent and its files; ok is false when it does not exist.
func readIntent(q interface {
	queryRower
	Query(string, ...any) (*sql.Rows, error)
}, id int64) (Intent, bool, error) {
	var in Intent
	var kind string
	var created int64
	var finished sql.NullInt64
	var outcome sql.NullString
	err := q.QueryRow(`SELECT `+intentCols+` FROM caption_intents WHERE id = ?`, id).
		Scan(&in.ID, &in.DatasetID, &in.BatchID, &kind, &in.Description, &created, &finished, &outcome)
	if errors.Is(err, sql.ErrNoRows) {
		return Intent{}, false, nil
	}
	if err != nil {
		return Intent{}, false, err
	}
	in.Kind, in.Time, in.FinishedAt, in.Outcome = IntentKind(kind), fromNanos(created), fromNullNanos(finished), IntentOutcome(outcome.String)
	rows, err := q.Query(`SELECT image_id, rel, old_text, new_text, old_state, new_state, state FROM caption_intent_files
		WHERE intent_id = ? ORDER BY rel`, id)
	if err != nil {
		return Intent{}, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var f IntentFile
		var oldS, newS sql.NullInt64
		var state string
		if err := rows.Scan(&f.ImageID, &f.Rel, &f.Old, &f.New, &oldS, &newS, &state); err != nil {
			return Intent{}, false, err
		}
		f.OldState, f.NewState, f.State = oldS.Int64, newS.Int64, IntentFileState(state)
		in.Files = append(in.Files, f)
	}
	return in, true, rows.Err()
}

// Intent returns the intent with the given id and its files, or an error wrapping ErrNotFound.
func (db *DB) Intent(id int64) (Intent, error) {
	in, ok, err := readIntent(db.sql, id)
	if err != nil {
		return Intent{}, db.errf(err, "reading intent %d", id)
	}
	if !ok {
		return Intent{}, fmt.Errorf("storage: %s: intent %d: %w", db.path, id, ErrNotFound)
	}
	return in, nil
}

// UnfinishedIntent returns the dataset's unfinished intent with its files, and whether it has one.
func (db *DB) UnfinishedIntent(datasetID int64) (Intent, bool, error) {
	id, err := unfinishedIntentID(db.sql, datasetID)
	if err != nil {
		return Intent{}, false, db.errf(err, "looking for an unfinished bulk edit of dataset %d", datasetID)
	}
	if id == 0 {
		return Intent{}, false, nil
	}
	in, err := db.Intent(id)
	return in, err == nil, err
}

// UnfinishedIntents returns every unfinished intent of every dataset, oldest first (files not
// read), for a check at startup.
func (db *DB) UnfinishedIntents() ([]Intent, error) {
	rows, err := db.sql.Query(`SELECT ` + intentCols + ` FROM caption_intents WHERE finished_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, db.errf(err, "listing unfinished bulk edits")
	}
	defer rows.Close()
	var out []Intent
	for rows.Next() {
		var in Intent
		var kind string
		var created int64
		var finished sql.NullInt64
		var outcome sql.NullString
		if err := rows.Scan(&in.ID, &in.DatasetID, &in.BatchID, &kind, &in.Description, &created, &finished, &outcome); err != nil {
			return nil, db.errf(err, "listing unfinished bulk edits")
		}
		in.Kind, in.Time = IntentKind(kind), fromNanos(created)
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "listing unfinished bulk edits")
	}
	return out, nil
}

// readUnfinishedIntent reads intent id, which must exist and be unfinished.
func readUnfinishedIntent(tx *sql.Tx, id int64) (Intent, error) {
	in, ok, err := readIntent(tx, id)
	if err != nil {
		return Intent{}, err
	}
	if !ok {
		return Intent{}, fmt.Errorf("intent %d: %w", id, ErrNotFound)
	}
	if !in.Unfinished() {
		return Intent{}, fmt.Errorf("intent %d is already %s", id, strings.ReplaceAll(string(in.Outcome), "_", " "))
	}
	return in, nil
}

// intentFileTx loads the intent (which must be unfinished) and calls fn for each listed image
// with its file row, inside one write transaction.
func (db *DB) intentFileTx(intentID int64, imageIDs []int64, what string, fn func(tx *sql.Tx, in Intent, f IntentFile) error) error {
	if len(imageIDs) == 0 {
		return nil
	}
	err := db.writeTx(func(tx *sql.Tx) error {
		in, err := readUnfinishedIntent(tx, intentID)
		if err != nil {
			return err
		}
		byID := make(map[int64]IntentFile, len(in.Files))
		for _, f := range in.Files {
			byID[f.ImageID] = f
		}
		for _, id := range imageIDs {
			f, ok := byID[id]
			if !ok {
				return fmt.Errorf("image %d is not part of intent %d", id, intentID)
			}
			if err := fn(tx, in, f); err != nil {
				return fmt.Errorf("image %q: %w", f.Rel, err)
			}
		}
		return nil
	})
	if err != nil {
		return db.errf(err, "%s (intent %d)", what, intentID)
	}
	return nil
}

// setFileState records a file's new state (and, when newState is not nil, its NewState).
func setFileState(tx *sql.Tx, intentID, imageID int64, s IntentFileState, newState *int64) error {
	if newState != nil {
		_, err := tx.Exec(`UPDATE caption_intent_files SET state = ?, new_state = ? WHERE intent_id = ? AND image_id = ?`,
			string(s), nullID(*newState), intentID, imageID)
		return err
	}
	_, err := tx.Exec(`UPDATE caption_intent_files SET state = ? WHERE intent_id = ? AND image_id = ?`, string(s), intentID, imageID)
	return err
}

// ForwardIntentFiles records, in one transaction, that the listed files now hold their New
// text on disk: each gets its revision and the state done (a file already done is left as
// it is). A bulk intent's revision is a bulk state in its batch; an undo intent's is an undo
// move back to the pre-batch state when the image is still at the batch's state, else a new
// undo state. Call it after writing the files, or for files found holding their New text
// after a crash.
func (db *DB) ForwardIntentFiles(intentID int64, imageIDs []int64) error {
	return db.intentFileTx(intentID, imageIDs, "recording written files", func(tx *sql.Tx, in Intent, f IntentFile) error {
		if f.State == FileDone {
			return nil
		}
		head, _, err := currentState(tx, f.ImageID)
		if err != nil {
			return err
		}
		if in.Kind == IntentBulk {
			rev, err := insertState(tx, f.ImageID, f.New, OriginBulk, in.BatchID, head, 0)
			if err != nil {
				return err
			}
			return setFileState(tx, in.ID, f.ImageID, FileDone, &rev.ID)
		}
		if head == f.OldState {
			_, err = insertMove(tx, f.ImageID, f.New, OriginUndo, f.NewState)
		} else {
			_, err = insertState(tx, f.ImageID, f.New, OriginUndo, 0, head, 0)
		}
		if err != nil {
			return err
		}
		return setFileState(tx, in.ID, f.ImageID, FileDone, nil)
	})
}

// BackwardIntentFiles records, in one transaction, that the listed files hold their Old text
// on disk again: a done file gets a revision back to Old (an undo move for a bulk intent, a
// redo move for an undo intent, when the image is still where the intent put it; else a new
// state); a pending or skipped file needs none. Each becomes reverted.
func (db *DB) BackwardIntentFiles(intentID int64, imageIDs []int64) error {
	return db.intentFileTx(intentID, imageIDs, "recording rolled back files", func(tx *sql.Tx, in Intent, f IntentFile) error {
		if f.State == FileReverted {
			return nil
		}
		if f.State == FileDone {
			head, _, err := currentState(tx, f.ImageID)
			if err != nil {
				return err
			}
			switch {
			case head == f.NewState && in.Kind == IntentBulk:
				_, err = insertMove(tx, f.ImageID, f.Old, OriginUndo, f.OldState)
			case head == f.NewState:
				_, err = insertMove(tx, f.ImageID, f.Old, OriginRedo, f.OldState)
			case in.Kind == IntentBulk:
				_, err = insertState(tx, f.ImageID, f.Old, OriginUndo, 0, head, 0)
			default:
				_, err = insertState(tx, f.ImageID, f.Old, OriginRestore, 0, head, f.OldState)
			}
			if err != nil {
				return err
			}
		}
		return setFileState(tx, in.ID, f.ImageID, FileReverted, nil)
	})
}

// SkipIntentFiles marks the listed files skipped: they were edited by hand since the intent
// was made (the caller records the hand edit in the history) and are left as the user made
// them, whichever way the intent then ends.
func (db *DB) SkipIntentFiles(intentID int64, imageIDs []int64) error {
	return db.intentFileTx(intentID, imageIDs, "skipping files edited by hand", func(tx *sql.Tx, in Intent, f IntentFile) error {
		return setFileState(tx, in.ID, f.ImageID, FileSkipped, nil)
	})
}

// FinishIntent ends an intent. OutcomeComplete needs every file done or skipped; a complete
// undo intent marks the batch it undid undone. OutcomeRolledBack needs every file reverted,
// pending (never written) or skipped; a rolled back bulk intent marks its batch undone, so it
// is not offered for undo again.
func (db *DB) FinishIntent(intentID int64, outcome IntentOutcome) error {
	err := db.writeTx(func(tx *sql.Tx) error {
		in, err := readUnfinishedIntent(tx, intentID)
		if err != nil {
			return err
		}
		for _, f := range in.Files {
			ok := f.State == FileSkipped
			switch outcome {
			case OutcomeComplete:
				ok = ok || f.State == FileDone
			case OutcomeRolledBack:
				ok = ok || f.State == FileReverted || f.State == FilePending
			default:
				return fmt.Errorf("unknown outcome %q", outcome)
			}
			if !ok {
				return fmt.Errorf("image %q is %s", f.Rel, f.State)
			}
		}
		t := now()
		if _, err := tx.Exec(`UPDATE caption_intents SET finished_at = ?, outcome = ? WHERE id = ?`, t, string(outcome), intentID); err != nil {
			return err
		}
		if (in.Kind == IntentUndo) == (outcome == OutcomeComplete) {
			_, err = tx.Exec(`UPDATE caption_batches SET undone_at = ? WHERE id = ? AND undone_at IS NULL`, t, in.BatchID)
		}
		return err
	})
	if err != nil {
		return db.errf(err, "finishing intent %d as %s", intentID, outcome)
	}
	return nil
}
