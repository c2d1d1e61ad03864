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
// UndoLastBulk reverts it in one step. A caption changed on disk since it was
// loaded is not written (a *ConflictError in Failed).
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
	batch, err := d.db.BeginBatch(d.id, op.describe())
	if err != nil {
		return res, err
	}
	res.BatchID = batch.ID
	for _, c := range plan.Changes {
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
