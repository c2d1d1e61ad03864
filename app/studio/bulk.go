package studio

import (
	"errors"
	"fmt"
	"strconv"
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
//
// The text to prepend or append is a list of comma-separated tags, the way
// kohya users write a trigger ("mytrigger, "): each tag is trimmed, empty
// tags are dropped, and a tag the caption already holds (ignoring case) is
// not added twice. The tags meet the caption with one ", " whatever
// separators and spaces stood at the joint, so no edit makes an empty tag
// or a doubled comma.
type BulkOp struct {
	Kind BulkKind
	Text string // for prepend and append: one tag or several, comma-separated
	Old  string // for replace
	New  string // for replace; "" removes Old (and the empty tag it leaves)
}

// BulkChange is the effect of a bulk edit on one caption.
type BulkChange struct {
	Rel    string // the image
	Before string // caption now
	After  string // caption after the edit
}

// BulkPreview is what a bulk edit would do.
type BulkPreview struct {
	Changes []BulkChange // the captions that change, in path order
	// Already counts the captions a prepend or append leaves as they are
	// because they hold every tag to add already.
	Already int
	// Tags are the tags a prepend or append adds: trimmed, without empty
	// or repeated ones.
	Tags []string
}

// Note says what a prepend or append leaves alone, for the preview's count:
// "" when nothing, else for example `1 caption already holds "mytrigger"
// and is left as it is`.
func (p BulkPreview) Note() string {
	if p.Already == 0 {
		return ""
	}
	what := strconv.Quote(strings.Join(p.Tags, ", "))
	if len(p.Tags) > 1 {
		what = "every tag of " + what
	}
	if p.Already == 1 {
		return fmt.Sprintf("1 caption already holds %s and is left as it is", what)
	}
	return fmt.Sprintf("%d captions already hold %s and are left as they are", p.Already, what)
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
	return fmt.Sprintf("%s %q", op.Kind, strings.Join(op.tags(), ", "))
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
		if len(op.tags()) == 0 {
			return fmt.Errorf("bulk %s: %q holds no tag, only separators", op.Kind, op.Text)
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

// tags are the tags a prepend or append adds: Text split at commas, each
// trimmed, without empty tags or repeats (ignoring case), in order.
func (op BulkOp) tags() []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range splitTags(op.Text) {
		if k := strings.ToLower(t); !seen[k] {
			seen[k] = true
			out = append(out, t)
		}
	}
	return out
}

// missingTags returns the tags of add that caption does not hold as whole
// tags, ignoring case.
func missingTags(caption string, add []string) []string {
	have := map[string]bool{}
	for _, t := range splitTags(caption) {
		have[strings.ToLower(t)] = true
	}
	var out []string
	for _, t := range add {
		if !have[strings.ToLower(t)] {
			out = append(out, t)
		}
	}
	return out
}

// isSeparator reports whether r may stand between tags: a comma or white space.
func isSeparator(r rune) bool { return r == ',' || unicode.IsSpace(r) }

// lineEnd splits a caption's final line ending ("\r\n" or "\n") from the rest.
func lineEnd(caption string) (body, eol string) {
	for _, e := range []string{"\r\n", "\n"} {
		if strings.HasSuffix(caption, e) {
			return caption[:len(caption)-len(e)], e
		}
	}
	return caption, ""
}

// apply returns the caption after the op.
func (op BulkOp) apply(caption string) string {
	switch op.Kind {
	case BulkPrepend, BulkAppend:
		add := missingTags(caption, op.tags())
		if len(add) == 0 {
			return caption
		}
		text := strings.Join(add, ", ")
		// The caption keeps its line ending; its own separators and spaces
		// at the joint give way to one ", ".
		body, eol := lineEnd(caption)
		switch {
		case strings.TrimFunc(body, isSeparator) == "":
			return text + eol
		case op.Kind == BulkPrepend:
			return text + ", " + strings.TrimLeftFunc(body, isSeparator) + eol
		default:
			return strings.TrimRightFunc(body, isSeparator) + ", " + text + eol
		}
	case BulkReplace:
		if !strings.Contains(caption, op.Old) {
			return caption
		}
		out := strings.ReplaceAll(caption, op.Old, op.New)
		if op.New == "" && strings.Contains(caption, ",") {
			// Removing a tag: drop the empty tags it leaves behind, keeping
			// the trailing newline (or other trailing space) where it was.
			tail := caption[len(strings.TrimRightFunc(caption, unicode.IsSpace)):]
			out = strings.Join(splitTags(out), ", ") + tail
		}
		return out
	}
	return caption
}

// preview computes what op would do; the caller holds d.mu.
func (d *Dataset) preview(op BulkOp) (BulkPreview, error) {
	if err := op.validate(); err != nil {
		return BulkPreview{}, err
	}
	var p BulkPreview
	if op.Kind != BulkReplace {
		p.Tags = op.tags()
	}
	for _, rel := range d.order {
		it := d.items[rel].item
		if it.CaptionErr != nil {
			continue
		}
		if op.Kind != BulkReplace && !it.HasCaption {
			continue
		}
		after := op.apply(it.Caption)
		switch {
		case after != it.Caption:
			p.Changes = append(p.Changes, BulkChange{Rel: rel, Before: it.Caption, After: after})
		case op.Kind != BulkReplace:
			p.Already++
		}
	}
	return p, nil
}

// PreviewBulk lists what op would change (only captions that change), in
// path order: the very captions ApplyBulk writes.
func (d *Dataset) PreviewBulk(op BulkOp) ([]BulkChange, error) {
	p, err := d.PlanBulk(op)
	return p.Changes, err
}

// PlanBulk is PreviewBulk with what the edit leaves alone: how many captions
// hold the tags to add already (see BulkPreview.Note).
func (d *Dataset) PlanBulk(op BulkOp) (BulkPreview, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.preview(op)
}

// ApplyBulk runs op over the dataset as one batch in the history, so
// UndoLastBulk reverts it in one step. The whole plan is recorded before the
// first file changes (see bulkintent.go), so a crash part-way leaves a batch
// the next open finishes or rolls back. A caption changed on disk since it
// was loaded is not written (a *ConflictError in Failed). It refuses
// (ErrUnfinishedBatch) while an earlier bulk edit is unfinished.
func (d *Dataset) ApplyBulk(op BulkOp) (BulkResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var res BulkResult
	plan, err := d.preview(op)
	if err != nil || len(plan.Changes) == 0 {
		return res, err
	}
	if err := d.checkRoot(); err != nil {
		return res, err
	}
	if in, ok, err := d.db.UnfinishedIntent(d.id); err != nil {
		return res, err
	} else if ok {
		return res, d.unfinishedError(in)
	}
	files := make([]storage.IntentFile, 0, len(plan.Changes))
	for _, c := range plan.Changes {
		e := d.items[c.Rel]
		// The history must hold what the plan starts from: planFile records a
		// caption it has not seen yet, and refuses one changed since loaded.
		id, err := d.planFile(e)
		if err != nil {
			if errors.Is(err, errDatasetGone) {
				return res, err
			}
			res.Failed = append(res.Failed, err)
			continue
		}
		files = append(files, storage.IntentFile{ImageID: id, Rel: c.Rel, Old: c.Before, New: c.After})
	}
	if len(files) == 0 {
		return res, nil
	}
	in, err := d.db.CreateBulkIntent(d.id, op.describe(), files)
	if err != nil {
		return res, err
	}
	res.BatchID = in.BatchID
	out, err := d.endIntent(in, true)
	res.Changed = out.Written
	for _, c := range out.Conflicts {
		res.Failed = append(res.Failed, &ConflictError{Rel: c.Rel, Path: c.Path, DiskText: c.Disk, DiskExists: c.Disk != ""})
	}
	return res, err
}

// planFile is prepare for a bulk edit's plan: it refuses a caption changed
// on disk since loaded (or not UTF-8) and records the caption in the history
// when it is not there yet, but takes the image id recordAll registered
// rather than hashing the image, so planning 1,000 captions costs no
// database write per image. The caller holds d.mu.
func (d *Dataset) planFile(e *entry) (int64, error) {
	if e.imageID == 0 {
		id, _, err := d.prepare(e, true)
		return id, err
	}
	cur, err := d.readDisk(e)
	if err != nil {
		return 0, err
	}
	if err := d.conflict(e, cur); err != nil {
		return 0, err
	}
	return e.imageID, d.record(e.imageID, e.disk, cur)
}

// UndoLastBulk takes back the dataset's last bulk edit in one step, as a
// batch of its own recorded before its first file changes (so a crash
// part-way is finished on the next open). Every image the batch changed
// returns to its caption from before the batch; a caption edited by hand
// since is left as it is and listed in Conflicts. With an unfinished bulk
// edit, that one is rolled back instead; with an unfinished undo, the undo
// is finished. ErrNothingToUndo (wrapped) when there is no bulk edit to undo.
func (d *Dataset) UndoLastBulk() (BatchOutcome, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if in, ok, err := d.db.UnfinishedIntent(d.id); err != nil {
		return BatchOutcome{}, err
	} else if ok {
		out, err := d.endIntent(in, in.Kind == storage.IntentUndo)
		out.Action = BatchRolledBack
		if in.Kind == storage.IntentUndo {
			out.Action = BatchFinished
		}
		return out, err
	}
	batch, ok, err := d.db.LastBatch(d.id)
	if err != nil {
		return BatchOutcome{}, err
	}
	if !ok {
		return BatchOutcome{}, fmt.Errorf("dataset %s: %w", d.root, storage.ErrNothingToUndo)
	}
	if err := d.checkRoot(); err != nil {
		return BatchOutcome{}, err
	}
	imgs, err := d.db.BatchImages(batch.ID)
	if err != nil {
		return BatchOutcome{}, err
	}
	pre := BatchOutcome{BatchID: batch.ID, Description: batch.Description, Undo: true, Action: BatchUndone}
	var files []storage.IntentFile
	for _, b := range imgs {
		e, ok := d.items[b.Rel]
		if !ok {
			pre.Conflicts = append(pre.Conflicts, BatchConflict{Rel: b.Rel, Want: b.PreText, Gone: true})
			continue
		}
		cur, err := d.readDisk(e)
		if err != nil {
			return BatchOutcome{}, err
		}
		// A caption edited by another program goes into the history first.
		if err := d.record(b.ImageID, e.disk, cur); err != nil {
			return BatchOutcome{}, err
		}
		e.setDisk(cur)
		switch {
		case !utf8.ValidString(cur.data) || (cur.data != b.Text && cur.data != b.PreText):
			pre.Conflicts = append(pre.Conflicts, BatchConflict{Rel: b.Rel, Path: e.item.CaptionPath, Disk: cur.data, Want: b.PreText})
		case cur.data == b.PreText:
			pre.Already++
		default:
			files = append(files, storage.IntentFile{ImageID: b.ImageID, Rel: b.Rel, Old: b.Text, New: b.PreText,
				OldState: b.State, NewState: b.PreState})
		}
	}
	in, err := d.db.CreateUndoIntent(batch.ID, "undo of "+batch.Description, files)
	if err != nil {
		return pre, err
	}
	out, err := d.endIntent(in, true)
	out.Action, out.Already = BatchUndone, out.Already+pre.Already
	out.Conflicts = append(pre.Conflicts, out.Conflicts...)
	return out, err
}
