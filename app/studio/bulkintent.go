package studio

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"lorastudio/storage"
)

// A multi-file caption write (a bulk edit, or the undo of one) goes through an intent: the
// plan — every file with its old and new text — is committed to the database before the
// first file changes; each file is then written atomically and recorded (in groups of
// intentFlush) as done; the intent is marked complete at the end. A process killed anywhere
// in between leaves every file at its old or its new text and the intent unfinished. The next
// open recognises the files that reached their new text as part of the batch (never as an
// external change), and the user finishes the batch or rolls it back. See README.md,
// "After a crash".

// ErrUnfinishedBatch is returned (wrapped, with the notice naming the batch) when a bulk edit
// is asked for while an earlier one is unfinished.
var ErrUnfinishedBatch = storage.ErrUnfinishedIntent

// ErrNoUnfinishedBatch is returned (wrapped) by FinishBatch and RollBackBatch when the
// dataset has no unfinished batch.
var ErrNoUnfinishedBatch = errors.New("no unfinished bulk edit")

// intentFlush is how many written files are recorded as done in one transaction: fewer
// commits (each an fsync) for a big batch; files written but not yet recorded when the
// process dies are recognised by their text on the next open.
const intentFlush = 64

// BulkWriteDelayEnv names a test hook: a Go duration ("3ms") slept before each caption file
// a bulk edit, its undo or their recovery writes, so a test that kills the process can land
// its kill in the middle of a batch on a fast disk. Unset in normal use.
const BulkWriteDelayEnv = "LORASTUDIO_TEST_BULK_WRITE_DELAY"

// bulkWriteDelay reads BulkWriteDelayEnv; 0 when unset or not a duration.
func bulkWriteDelay() time.Duration {
	d, err := time.ParseDuration(os.Getenv(BulkWriteDelayEnv))
	if err != nil || d < 0 {
		return 0
	}
	return d
}

// BatchConflict is a caption file a batch left alone because it holds neither the batch's
// old nor its new text: it was edited by hand (or the image left the folder).
type BatchConflict struct {
	Rel  string // the image
	Path string // the caption file
	Disk string // what the file holds now ("" = no caption)
	Want string // what the batch would have written
	Gone bool   // the image is no longer in the dataset
}

// String describes the conflict in one line, naming the file.
func (c BatchConflict) String() string {
	if c.Gone {
		return fmt.Sprintf("%s: the image is no longer in the folder", c.Rel)
	}
	return fmt.Sprintf("%s: edited by hand since the bulk edit (holds %q), left as it is", c.Path, c.Disk)
}

// BatchAction is what FinishBatch, RollBackBatch or UndoLastBulk did.
type BatchAction int

const (
	// BatchFinished: an unfinished batch (or undo) was completed.
	BatchFinished BatchAction = iota
	// BatchRolledBack: an unfinished batch was rolled back (or an unfinished undo taken back).
	BatchRolledBack
	// BatchUndone: a complete batch was undone.
	BatchUndone
)

// BatchOutcome is what finishing, rolling back or undoing a batch did.
type BatchOutcome struct {
	BatchID     int64
	Description string // the batch's description ("append \"sks\"")
	Undo        bool   // the write was the undo of the batch
	Action      BatchAction
	Written     int             // caption files written
	Already     int             // files found at the wanted text already (recorded, not written)
	Conflicts   []BatchConflict // files edited by hand, left as they are
	Failed      []error         // files that could not be written, each error naming its file
}

// Restored is how many captions ended at the wanted text.
func (o BatchOutcome) Restored() int { return o.Written + o.Already }

// UnfinishedBatch describes a multi-file caption write that did not complete (the process
// was killed, or a write failed), as found on disk now.
type UnfinishedBatch struct {
	IntentID    int64
	BatchID     int64  // the batch written, or (Undo) the batch being undone
	Undo        bool   // the unfinished write is the undo of batch BatchID
	Description string // the batch's description
	Started     time.Time
	Total       int             // caption files in the plan
	AtNew       int             // files holding the text the write puts there
	AtOld       int             // files still at the text from before
	Conflicts   []BatchConflict // files holding neither: edited by hand
}

// Summary says in one sentence what was cut short and how far it got.
func (u UnfinishedBatch) Summary() string {
	what := fmt.Sprintf("bulk edit %d (%s)", u.BatchID, u.Description)
	done := "written"
	if u.Undo {
		what = fmt.Sprintf("undo of bulk edit %d (%s)", u.BatchID, u.Description)
		done = "restored"
	}
	s := fmt.Sprintf("The %s started %s did not finish: %d of %d captions %s, %d still as before",
		what, u.Started.Local().Format("2006-01-02 15:04:05"), u.AtNew, u.Total, done, u.AtOld)
	if n := len(u.Conflicts); n > 0 {
		s += fmt.Sprintf(", %d edited by hand since (left as they are)", n)
	}
	return s + "."
}

// Notice is the CLI's notice about the unfinished batch in root, naming the two commands.
func (u UnfinishedBatch) Notice(root string) string {
	if u.Undo {
		return fmt.Sprintf("notice: %s\n  finish the undo:  lorastudio caption undo-bulk %s   (or: lorastudio caption bulk %s --resume)\n",
			u.Summary(), root, root)
	}
	return fmt.Sprintf("notice: %s\n  finish it:        lorastudio caption bulk %s --resume\n  or roll it back:  lorastudio caption undo-bulk %s\n",
		u.Summary(), root, root)
}

// UnfinishedBatch reports the dataset's unfinished bulk edit (or undo of one), if any, with
// where each of its files stands on disk now.
func (d *Dataset) UnfinishedBatch() (UnfinishedBatch, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, ok, err := d.db.UnfinishedIntent(d.id)
	if err != nil || !ok {
		return UnfinishedBatch{}, false, err
	}
	return d.describeIntent(in), true, nil
}

// describeIntent compares an intent's files with the disk; the caller holds d.mu.
func (d *Dataset) describeIntent(in storage.Intent) UnfinishedBatch {
	u := UnfinishedBatch{IntentID: in.ID, BatchID: in.BatchID, Undo: in.Kind == storage.IntentUndo,
		Description: in.Description, Started: in.Time, Total: len(in.Files)}
	if u.Undo {
		if b, err := d.db.Batch(in.BatchID); err == nil {
			u.Description = b.Description
		}
	}
	for _, f := range in.Files {
		e, ok := d.items[f.Rel]
		if !ok {
			u.Conflicts = append(u.Conflicts, BatchConflict{Rel: f.Rel, Want: f.New, Gone: true})
			continue
		}
		cur, err := readCaptionFile(e.item.CaptionPath)
		switch {
		case err == nil && cur.data == f.New:
			u.AtNew++
		case err == nil && cur.data == f.Old:
			u.AtOld++
		default:
			u.Conflicts = append(u.Conflicts, BatchConflict{Rel: f.Rel, Path: e.item.CaptionPath, Disk: cur.data, Want: f.New})
		}
	}
	return u
}

// reconcileIntent brings the history of an unfinished intent in step with the caption files
// just scanned, before recordAll looks at them: a file found at its new text that the history
// does not have yet (the process died between writing it and recording it) is recorded as
// part of the batch, and a file found back at its old text is recorded as rolled back. So
// neither is ever taken for an external change. Files at neither text are left to recordAll
// (they were edited by hand). The caller holds d.mu.
func (d *Dataset) reconcileIntent() error {
	in, ok, err := d.db.UnfinishedIntent(d.id)
	if err != nil || !ok {
		return err
	}
	var fwd, back []int64
	for _, f := range in.Files {
		e, ok := d.items[f.Rel]
		if !ok || e.item.CaptionErr != nil {
			continue
		}
		cur := e.disk.data
		switch {
		case cur == f.New && (f.State == storage.FilePending || f.State == storage.FileReverted):
			fwd = append(fwd, f.ImageID)
		case cur == f.Old && f.State == storage.FileDone:
			back = append(back, f.ImageID)
		}
	}
	if err := d.db.ForwardIntentFiles(in.ID, fwd); err != nil {
		return fmt.Errorf("dataset %s: %w", d.root, err)
	}
	if err := d.db.BackwardIntentFiles(in.ID, back); err != nil {
		return fmt.Errorf("dataset %s: %w", d.root, err)
	}
	return nil
}

// runIntent takes every file of an unfinished intent to its new text (forward) or back to
// its old text: a file at the text wanted is only recorded, a file at the other text is
// written atomically and recorded, a file at neither is a conflict (recorded as the external
// change it is, and skipped). Records are committed every intentFlush files. The caller
// holds d.mu.
func (d *Dataset) runIntent(in storage.Intent, forward bool) (BatchOutcome, error) {
	out := BatchOutcome{BatchID: in.BatchID, Description: in.Description, Undo: in.Kind == storage.IntentUndo}
	delay := bulkWriteDelay()
	var moved, skipped []int64
	flush := func() error {
		record := d.db.BackwardIntentFiles
		if forward {
			record = d.db.ForwardIntentFiles
		}
		if err := record(in.ID, moved); err != nil {
			return err
		}
		if err := d.db.SkipIntentFiles(in.ID, skipped); err != nil {
			return err
		}
		moved, skipped = moved[:0], skipped[:0]
		return nil
	}
	for _, f := range in.Files {
		want, from := f.New, f.Old
		if !forward {
			want, from = f.Old, f.New
		}
		e, ok := d.items[f.Rel]
		if !ok {
			out.Conflicts = append(out.Conflicts, BatchConflict{Rel: f.Rel, Want: want, Gone: true})
			if f.State != storage.FileSkipped {
				skipped = append(skipped, f.ImageID)
			}
			continue
		}
		cur, err := d.readDisk(e)
		if err != nil {
			if errors.Is(err, errDatasetGone) {
				return out, errors.Join(err, flush())
			}
			out.Failed = append(out.Failed, err)
			continue
		}
		text := cur.data
		if !utf8.ValidString(text) {
			text = "\x00not UTF-8" // matches neither text of the plan
		}
		switch {
		case f.State == storage.FileSkipped:
			if text != want {
				out.Conflicts = append(out.Conflicts, BatchConflict{Rel: f.Rel, Path: e.item.CaptionPath, Disk: cur.data, Want: want})
			}
			continue
		case text == want:
			e.setDisk(cur)
			if (forward && f.State != storage.FileDone) || (!forward && f.State != storage.FileReverted) {
				moved = append(moved, f.ImageID)
			}
			out.Already++
		case text == from:
			if delay > 0 {
				time.Sleep(delay)
			}
			if err := d.putText(e, want, in.Kind == storage.IntentBulk && forward); err != nil {
				out.Failed = append(out.Failed, err)
				continue
			}
			moved = append(moved, f.ImageID)
			out.Written++
		default:
			// Edited by hand since the plan was made: the history gets the hand edit (as
			// the external change it is) and the file is left as the user made it.
			if err := d.record(f.ImageID, e.disk, cur); err != nil {
				out.Failed = append(out.Failed, err)
				continue
			}
			out.Conflicts = append(out.Conflicts, BatchConflict{Rel: f.Rel, Path: e.item.CaptionPath, Disk: cur.data, Want: want})
			skipped = append(skipped, f.ImageID)
		}
		if len(moved)+len(skipped) >= intentFlush {
			if err := flush(); err != nil {
				return out, err
			}
		}
	}
	return out, flush()
}

// putText writes a caption file of a batch atomically. "" removes the file, except for a
// bulk edit's own new text (keepEmpty), which is written as an empty file as a save would.
func (d *Dataset) putText(e *entry, text string, keepEmpty bool) error {
	if text == "" && keepEmpty {
		if err := d.ensureCaptionDir(e); err != nil {
			return err
		}
		if err := d.writeCaption(e, ""); err != nil {
			return err
		}
		e.setDisk(diskState{exists: true})
		return nil
	}
	return d.writeText(e, text)
}

// endIntent runs an unfinished intent to its end, forward (complete) or backward (rolled
// back), and records the outcome. When files could not be written the intent stays
// unfinished and the error says so. The caller holds d.mu.
func (d *Dataset) endIntent(in storage.Intent, forward bool) (BatchOutcome, error) {
	if err := d.checkRoot(); err != nil {
		return BatchOutcome{}, err
	}
	out, err := d.runIntent(in, forward)
	if in.Kind == storage.IntentUndo {
		if b, berr := d.db.Batch(in.BatchID); berr == nil {
			out.Description = b.Description
		}
	}
	if err != nil {
		return out, err
	}
	if n := len(out.Failed); n > 0 {
		return out, fmt.Errorf("%d caption file(s) of bulk edit %d in %s could not be written, so it stays unfinished (fix the cause and run it again): %w",
			n, in.BatchID, d.root, errors.Join(out.Failed...))
	}
	outcome := storage.OutcomeComplete
	if !forward {
		outcome = storage.OutcomeRolledBack
	}
	return out, d.db.FinishIntent(in.ID, outcome)
}

// unfinished returns the dataset's unfinished intent or an error wrapping ErrNoUnfinishedBatch.
func (d *Dataset) unfinished() (storage.Intent, error) {
	in, ok, err := d.db.UnfinishedIntent(d.id)
	if err != nil {
		return storage.Intent{}, err
	}
	if !ok {
		return storage.Intent{}, fmt.Errorf("dataset %s: %w", d.root, ErrNoUnfinishedBatch)
	}
	return in, nil
}

// FinishBatch completes the dataset's unfinished bulk edit (or undo of one): every file still
// at its old text gets its new text; files edited by hand since are left as they are and
// listed in Conflicts.
func (d *Dataset) FinishBatch() (BatchOutcome, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, err := d.unfinished()
	if err != nil {
		return BatchOutcome{}, err
	}
	out, err := d.endIntent(in, true)
	out.Action = BatchFinished
	return out, err
}

// RollBackBatch takes the dataset's unfinished bulk edit (or undo of one) back: every file
// that reached its new text returns to its old text; files edited by hand since are left as
// they are and listed in Conflicts. A rolled back bulk edit is marked undone.
func (d *Dataset) RollBackBatch() (BatchOutcome, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	in, err := d.unfinished()
	if err != nil {
		return BatchOutcome{}, err
	}
	out, err := d.endIntent(in, false)
	out.Action = BatchRolledBack
	return out, err
}

// unfinishedError is the error refusing a new bulk edit while one is unfinished.
func (d *Dataset) unfinishedError(in storage.Intent) error {
	return fmt.Errorf("%s: %w", strings.TrimSpace(d.describeIntent(in).Notice(d.root)), ErrUnfinishedBatch)
}
