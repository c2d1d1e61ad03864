package studio

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"lorastudio/storage"
)

// BulkKind is what a bulk edit does to every caption.
type BulkKind int

const (
	// BulkPrepend puts Text (a trigger word) in front of every caption that lacks it.
	BulkPrepend BulkKind = iota
	// BulkAppend puts Text at the end of every caption that lacks it.
	BulkAppend
	// BulkReplace replaces every occurrence of Old with New.
	BulkReplace
)

// String names the kind as the CLI spells it.
func (k BulkKind) String() string {
	switch k {
	case BulkPrepend:
		return "prepend"
	case BulkAppend:
		return "append"
	case BulkReplace:
		return "replace"
	}
	return fmt.Sprintf("BulkKind(%d)", int(k))
}

// BulkOp is one bulk edit over all captions of a dataset. Prepend and append
// touch only images that have a caption file.
type BulkOp struct {
	Kind BulkKind
	Text string // for prepend and append
	Old  string // for replace
	New  string // for replace; "" removes Old (and the empty tag it leaves)
}

// BulkChange is the effect of a bulk edit on one caption.
type BulkChange struct {
	Rel    string // the image
	Before string // caption now
	After  string // caption after the edit
}

// BulkResult is what ApplyBulk did.
type BulkResult struct {
	BatchID int64   // the batch in the history (0 when nothing changed)
	Changed int     // captions written
	Failed  []error // captions not written, each error naming its file
}

// describe is the batch description stored in the history.
func (op BulkOp) describe() string {
	if op.Kind == BulkReplace {
		return fmt.Sprintf("replace %q with %q", op.Old, op.New)
	}
	return fmt.Sprintf("%s %q", op.Kind, op.Text)
}

// validate checks an op before it runs.
func (op BulkOp) validate() error {
	for _, s := range []string{op.Text, op.Old, op.New} {
		if !utf8.ValidString(s) {
			return fmt.Errorf("bulk %s: %w", op.Kind, ErrNotUTF8)
		}
	}
	switch op.Kind {
	case BulkPrepend, BulkAppend:
		if strings.TrimSpace(op.Text) == "" {
			return fmt.Errorf("bulk %s: the text to add is empty", op.Kind)
		}
	case BulkReplace:
		if op.Old == "" {
			return errors.New("bulk replace: the text to replace is empty")
		}
	default:
		return fmt.Errorf("unknown bulk operation %d", int(op.Kind))
	}
	return nil
}

// hasTag reports whether caption already contains tag (or each tag of a
// comma-separated list) as a whole tag, ignoring case.
func hasTag(caption, text string) bool {
	have := map[string]bool{}
	for _, t := range splitTags(caption) {
		have[strings.ToLower(t)] = true
	}
	want := splitTags(text)
	for _, t := range want {
		if !have[strings.ToLower(t)] {
			return false
		}
	}
	return len(want) > 0
}

// apply returns the caption after the op.
func (op BulkOp) apply(caption string) string {
	// Keep a trailing newline (or other trailing space) where it was.
	core := strings.TrimRightFunc(caption, unicode.IsSpace)
	tail := caption[len(core):]
	core = strings.TrimLeftFunc(core, unicode.IsSpace)
	text := strings.TrimSpace(op.Text)
	switch op.Kind {
	case BulkPrepend, BulkAppend:
		if hasTag(core, text) {
			return caption
		}
		if core == "" {
			return text + tail
		}
		if op.Kind == BulkPrepend {
			return text + ", " + strings.TrimLeft(core, ", ") + tail
		}
		return strings.TrimRight(core, ", ") + ", " + text + tail
	case BulkReplace:
		if !strings.Contains(caption, op.Old) {
			return caption
		}
		out := strings.ReplaceAll(caption, op.Old, op.New)
		if op.New == "" && strings.Contains(caption, ",") {
			// Removing a tag: drop the empty tags it leaves behind.
			out = strings.Join(splitTags(out), ", ") + tail
		}
		return out
	}
	return caption
}

// preview computes the changes of op; the caller holds d.mu.
func (d *Dataset) preview(op BulkOp) ([]BulkChange, error) {
	if err := op.validate(); err != nil {
		return nil, err
	}
	var out []BulkChange
	for _, rel := range d.order {
		it := d.items[rel].item
		if it.CaptionErr != nil {
			continue
		}
		if op.Kind != BulkReplace && !it.HasCaption {
			continue
		}
		if after := op.apply(it.Caption); after != it.Caption {
			out = append(out, BulkChange{Rel: rel, Before: it.Caption, After: after})
		}
	}
	return out, nil
}

// PreviewBulk lists what op would change (only captions that change), in path order.
func (d *Dataset) PreviewBulk(op BulkOp) ([]BulkChange, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.preview(op)
}

// ApplyBulk runs op over the dataset as one batch in the history, so
// UndoLastBulk reverts it in one step. A caption changed on disk since it was
// loaded is not written (a *ConflictError in Failed).
func (d *Dataset) ApplyBulk(op BulkOp) (BulkResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var res BulkResult
	changes, err := d.preview(op)
	if err != nil || len(changes) == 0 {
		return res, err
	}
	if err := d.checkRoot(); err != nil {
		return res, err
	}
	batch, err := d.db.BeginBatch(d.id, op.describe())
	if err != nil {
		return res, err
	}
	res.BatchID = batch.ID
	for _, c := range changes {
		e := d.items[c.Rel]
		id, _, err := d.prepare(e, true)
		if err == nil {
			err = d.save(e, id, c.After, storage.OriginBulk, batch.ID)
		}
		if err != nil {
			if errors.Is(err, errDatasetGone) {
				return res, err
			}
			res.Failed = append(res.Failed, err)
			continue
		}
		res.Changed++
	}
	return res, nil
}

// UndoLastBulk reverts the dataset's last bulk edit in one step and returns
// how many captions it restored. It refuses (*ConflictError) when a caption
// file changed on disk since it was loaded: reload it first.
func (d *Dataset) UndoLastBulk() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	batch, ok, err := d.db.LastBatch(d.id)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("dataset %s: %w", d.root, storage.ErrNothingToUndo)
	}
	if err := d.checkRoot(); err != nil {
		return 0, err
	}
	known, err := d.db.Images(d.id)
	if err != nil {
		return 0, err
	}
	byID := map[int64]*entry{}
	for _, img := range known {
		e, ok := d.items[img.Rel]
		if !ok {
			continue // the image left the folder; UndoBatch reports it if the batch needs it
		}
		e.imageID = img.ID
		byID[img.ID] = e
		cur, err := d.readDisk(e)
		if err != nil {
			return 0, err
		}
		if err := d.conflict(e, cur); err != nil {
			return 0, err
		}
		// A caption edited by another program between sessions goes into
		// the history before the undo touches it.
		if err := d.record(img.ID, e.disk, cur); err != nil {
			return 0, err
		}
	}
	n, err := d.db.UndoBatch(batch.ID, func(imageID int64, text string) error {
		e, ok := byID[imageID]
		if !ok {
			return fmt.Errorf("image id %d of batch %d is not in dataset %s (rescan the folder)", imageID, batch.ID, d.root)
		}
		return d.writeText(e, text)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
