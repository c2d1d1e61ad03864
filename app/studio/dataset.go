package studio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"lorastudio/storage"
)

// Dataset is an open dataset folder. Its caption files are the source of
// truth; every change it makes is also a revision in the database. It is safe
// for concurrent use.
type Dataset struct {
	st   *Studio
	db   *storage.DB
	root string
	id   int64 // storage dataset id

	mu     sync.Mutex
	layout Layout
	items  map[string]*entry
	order  []string // rels, sorted
	others []string
}

// entry is a Dataset's private state for one image.
type entry struct {
	item    *Item
	disk    diskState // caption file content as last read or written by us
	imageID int64     // storage image id, 0 until first needed
}

// ConflictError is returned when a caption file changed on disk (another
// program wrote it) since the Dataset last read or wrote it, or when the file
// on disk is not UTF-8 text. Nothing was written.
type ConflictError struct {
	Rel        string // the image
	Path       string // the caption file
	DiskText   string // what the file holds now (raw bytes)
	DiskExists bool   // whether the file exists now
	NotUTF8    bool   // the file on disk is not valid UTF-8 text
}

// Error explains the conflict and names the file.
func (e *ConflictError) Error() string {
	if e.NotUTF8 {
		return fmt.Sprintf("caption %s is not valid UTF-8 text; it was left untouched (replace it explicitly to overwrite it; a byte-for-byte copy is kept under the data directory's caption-backups folder)", e.Path)
	}
	if !e.DiskExists {
		return fmt.Sprintf("caption %s was deleted by another program since it was loaded; nothing was written", e.Path)
	}
	return fmt.Sprintf("caption %s was changed by another program since it was loaded; nothing was written", e.Path)
}

// install replaces the dataset's contents with a scan result, keeping the
// image ids already known.
func (d *Dataset) install(res *scanResult) {
	old := d.items
	d.layout = res.layout
	d.items = make(map[string]*entry, len(res.items))
	d.order = d.order[:0]
	for _, it := range res.items {
		e := &entry{item: it, disk: res.disk[it.Rel]}
		if o, ok := old[it.Rel]; ok {
			e.imageID = o.imageID
			if it.Hash == "" {
				it.Hash = o.item.Hash
			}
		}
		d.items[it.Rel] = e
		d.order = append(d.order, it.Rel)
	}
	d.others = res.others
}

// Rescan reads the folder again, picking up added and removed files, and
// records in the history every caption not yet in it or changed on disk
// since (see recordAll).
func (d *Dataset) Rescan() error {
	res, err := scanDataset(d.root)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.install(res)
	if err := d.reconcileIntent(); err != nil {
		return err
	}
	return d.recordAll()
}

// recordAll registers every image in the database and records, in one
// transaction, each caption on disk the history does not hold yet: as
// import when the image has no revision, as external when it differs from
// the newest one. So a caption is in the history from the moment the
// dataset is opened, and another program rewriting it later cannot lose
// it. Captions that cannot be read as UTF-8 text are left out (they stay
// warned about and untouched). Image hashes are not computed here: track
// fills them in on first use, keeping opening fast.
func (d *Dataset) recordAll() error {
	caps := make([]storage.DiskCaption, len(d.order))
	for i, rel := range d.order {
		e := d.items[rel]
		caps[i] = storage.DiskCaption{Rel: rel, Width: e.item.Width, Height: e.item.Height,
			Text: e.disk.data, Recordable: e.item.CaptionErr == nil && utf8.ValidString(e.disk.data)}
	}
	ids, _, err := d.db.RecordDiskCaptions(d.id, caps)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", d.root, err)
	}
	for i, rel := range d.order {
		d.items[rel].imageID = ids[i]
	}
	return nil
}

// Root returns the dataset's absolute folder.
func (d *Dataset) Root() string { return d.root }

// ID returns the dataset's id in the database.
func (d *Dataset) ID() int64 { return d.id }

// Layout returns how the dataset pairs images with captions.
func (d *Dataset) Layout() Layout {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.layout
}

// Items returns a snapshot of all items, sorted by Rel.
func (d *Dataset) Items() []*Item {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*Item, 0, len(d.order))
	for _, rel := range d.order {
		out = append(out, d.items[rel].item.clone())
	}
	return out
}

// Item returns a snapshot of one item.
func (d *Dataset) Item(rel string) (*Item, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.items[rel]
	if !ok {
		return nil, false
	}
	return e.item.clone(), true
}

// Others returns the files that are neither images nor their captions.
func (d *Dataset) Others() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.others...)
}

// Progress returns how many images have a non-empty caption, and the total.
func (d *Dataset) Progress() (captioned, total int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.items {
		if !e.item.NeedsCaption() {
			captioned++
		}
	}
	return captioned, len(d.items)
}

// lookup finds an entry; the error names the image.
func (d *Dataset) lookup(rel string) (*entry, error) {
	e, ok := d.items[rel]
	if !ok {
		return nil, fmt.Errorf("image %s is not in dataset %s", rel, d.root)
	}
	return e, nil
}

// checkRoot returns a clear error when the dataset folder has vanished.
func (d *Dataset) checkRoot() error {
	st, err := os.Stat(d.root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s (moved or deleted while open)", errDatasetGone, d.root)
		}
		return fmt.Errorf("dataset folder %s: %w", d.root, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is no longer a folder", errDatasetGone, d.root)
	}
	return nil
}

// readDisk reads the entry's caption file as it is now.
func (d *Dataset) readDisk(e *entry) (diskState, error) {
	if err := d.checkRoot(); err != nil {
		return diskState{}, err
	}
	return readCaptionFile(e.item.CaptionPath)
}

// conflict returns a *ConflictError when the file on disk is not what we last
// saw, or is not UTF-8; nil otherwise.
func (d *Dataset) conflict(e *entry, cur diskState) error {
	if cur != e.disk {
		return &ConflictError{Rel: e.item.Rel, Path: e.item.CaptionPath, DiskText: cur.data, DiskExists: cur.exists}
	}
	if cur.exists && !utf8.ValidString(cur.data) {
		return &ConflictError{Rel: e.item.Rel, Path: e.item.CaptionPath, DiskText: cur.data, DiskExists: true, NotUTF8: true}
	}
	return nil
}

// track registers the image in the database on first use and fills in its
// content hash the first time this Dataset needs the image (opening a
// dataset registers images without hashing them).
func (d *Dataset) track(e *entry) (int64, error) {
	if e.imageID != 0 && e.item.Hash != "" {
		return e.imageID, nil
	}
	hash := e.item.Hash
	if hash == "" {
		h, err := hashFile(e.item.ImagePath)
		if err != nil {
			return 0, err
		}
		hash = h
	}
	img, err := d.db.EnsureImage(d.id, e.item.Rel, hash, e.item.Width, e.item.Height)
	if err != nil {
		return 0, err
	}
	e.imageID = img.ID
	e.item.Hash = hash
	return img.ID, nil
}

// noWrite is the write callback for revisions that record what is already on disk.
func noWrite() error { return nil }

// record makes sure the history's latest revision equals the caption on disk
// (cur): a caption never seen before is recorded as imported, one changed by
// another program as external. seen is what this Dataset loaded, recorded
// first if the file changed before it reached the history. Nothing on disk
// is touched.
func (d *Dataset) record(id int64, seen, cur diskState) error {
	latest, ok, err := d.db.LatestRevision(id)
	if err != nil {
		return err
	}
	if !ok && seen != cur && seen.data != "" && utf8.ValidString(seen.data) {
		// The caption we loaded was replaced before it ever reached the
		// history: keep it as the imported text, then the replacement.
		if latest, err = d.db.SaveCaption(id, seen.data, storage.OriginImport, 0, noWrite); err != nil {
			return err
		}
		ok = true
	}
	if !utf8.ValidString(cur.data) {
		return nil // the history holds text only; ForceSave backs such a file up first
	}
	switch {
	case !ok:
		if cur.data == "" {
			return nil // no caption and no history: nothing to remember
		}
		_, err = d.db.SaveCaption(id, cur.data, storage.OriginImport, 0, noWrite)
	case latest.Text != cur.data:
		_, err = d.db.SaveCaption(id, cur.data, storage.OriginExternal, 0, noWrite)
	}
	return err
}

// prepare reads the caption file, registers the image and records the disk
// content in the history; with strict it refuses (ConflictError) when the file
// changed since we last saw it or is not UTF-8.
func (d *Dataset) prepare(e *entry, strict bool) (int64, diskState, error) {
	cur, err := d.readDisk(e)
	if err != nil {
		return 0, cur, err
	}
	if strict {
		if err := d.conflict(e, cur); err != nil {
			return 0, cur, err
		}
	}
	id, err := d.track(e)
	if err != nil {
		return 0, cur, err
	}
	if err := d.record(id, e.disk, cur); err != nil {
		return 0, cur, err
	}
	return id, cur, nil
}

// setDisk updates an entry after we read or wrote its caption file.
func (e *entry) setDisk(ds diskState) {
	e.disk = ds
	applyCaption(e.item, ds, nil)
}

// writeText writes (or, for "", removes) the caption file of an entry: the
// callback given to storage for undo, redo and restore.
func (d *Dataset) writeText(e *entry, text string) error {
	if err := d.checkRoot(); err != nil {
		return err
	}
	if text == "" {
		if err := removeFileDurable(e.item.CaptionPath); err != nil {
			return err
		}
		e.setDisk(diskState{})
		return nil
	}
	if err := d.ensureCaptionDir(e); err != nil {
		return err
	}
	if err := d.writeCaption(e, text); err != nil {
		return err
	}
	e.setDisk(diskState{exists: true, data: text})
	return nil
}

// ErrLinkOutside is wrapped by the error refusing to write a caption whose
// file is a symbolic link (or sits in a linked folder) leading out of the
// dataset folder: writing there would change a file of another folder
// without the user knowing. Replace the link with a file, or open the
// folder it leads to as the dataset.
var ErrLinkOutside = errors.New("the caption file is reached through a symbolic link leading out of the dataset folder")

// captionTarget is the file a caption write replaces: the caption path
// itself or, when links lead to it, the real file, so the atomic rename
// updates what the link points to and keeps the link (renaming onto the
// link would replace it and leave its target stale). A target outside the
// dataset's real folder is refused with ErrLinkOutside.
func (d *Dataset) captionTarget(e *entry) (string, error) {
	p := e.item.CaptionPath
	real, err := realPath(p)
	if err != nil {
		if isLoop(err) {
			return "", fmt.Errorf("caption %s: %w", p, ErrLinkLoop)
		}
		return "", fmt.Errorf("caption %s: a symbolic link that cannot be followed: %w", p, err)
	}
	root, err := realPath(d.root)
	if err != nil {
		return "", fmt.Errorf("dataset folder %s: %w", d.root, err)
	}
	if !within(root, real) {
		return "", fmt.Errorf("caption %s: not written: %w (it leads to %s, outside %s)", p, ErrLinkOutside, real, root)
	}
	if lexical, err := filepath.Abs(p); err == nil && filepath.Clean(lexical) == real {
		return p, nil
	}
	return real, nil
}

// writeCaption writes a caption file atomically at captionTarget.
func (d *Dataset) writeCaption(e *entry, text string) error {
	target, err := d.captionTarget(e)
	if err != nil {
		return err
	}
	return writeCaptionFile(target, text)
}

// ensureCaptionDir creates captions/ (and sub-folders) of the tutorial layout
// when the first caption is written; the dataset root itself must exist.
func (d *Dataset) ensureCaptionDir(e *entry) error {
	dir := filepath.Dir(e.item.CaptionPath)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := d.checkRoot(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("caption folder %s: %w", dir, err)
	}
	return nil
}

// save writes text as a new revision of the given origin.
func (d *Dataset) save(e *entry, id int64, text string, origin storage.Origin, batchID int64) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("caption for %s: %w", e.item.Rel, ErrNotUTF8)
	}
	if err := d.ensureCaptionDir(e); err != nil {
		return err
	}
	if _, err := d.captionTarget(e); err != nil {
		return err // refused before a revision is recorded
	}
	_, err := d.db.SaveCaption(id, text, origin, batchID, func() error {
		return d.writeCaption(e, text)
	})
	if err != nil {
		return err
	}
	e.setDisk(diskState{exists: true, data: text})
	return nil
}

// Save writes a caption (atomically) and records it as a revision. It
// returns a *ConflictError, writing nothing, when the file changed on disk
// since it was loaded or last saved here, or is not UTF-8 text.
func (d *Dataset) Save(rel, text string) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("caption for %s: %w", rel, ErrNotUTF8)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.lookup(rel)
	if err != nil {
		return err
	}
	id, cur, err := d.prepare(e, true)
	if err != nil {
		return err
	}
	if (cur.exists && cur.data == text) || (!cur.exists && text == "") {
		return nil // unchanged (or still no caption): no new revision, no empty file
	}
	return d.save(e, id, text, storage.OriginManual, 0)
}

// ForceSave writes a caption although the file changed on disk (the user
// chose "keep mine"): the disk text is first recorded as an external
// revision, so it can be restored.
func (d *Dataset) ForceSave(rel, text string) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("caption for %s: %w", rel, ErrNotUTF8)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.lookup(rel)
	if err != nil {
		return err
	}
	id, cur, err := d.prepare(e, false)
	if err != nil {
		return err
	}
	if (cur.exists && cur.data == text) || (!cur.exists && text == "") {
		e.setDisk(cur)
		return nil
	}
	if cur.exists && !utf8.ValidString(cur.data) {
		if _, err := d.backupRaw(e, cur.data); err != nil {
			return err
		}
	}
	return d.save(e, id, text, storage.OriginManual, 0)
}

// BackupDir is the folder under the data directory where caption files that
// are not UTF-8 text are copied, byte for byte, before they are replaced.
const BackupDir = "caption-backups"

// backupRaw copies a caption file's raw bytes (which the text-only history
// cannot hold) to <dataDir>/caption-backups/<dataset id>/ and returns the copy's path.
func (d *Dataset) backupRaw(e *entry, data string) (string, error) {
	name := strings.ReplaceAll(strings.TrimSuffix(e.item.Rel, filepath.Ext(e.item.Rel)), "/", "__")
	dir := filepath.Join(d.st.dataDir, BackupDir, fmt.Sprint(d.id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("backing up %s: %w", e.item.CaptionPath, err)
	}
	p := filepath.Join(dir, fmt.Sprintf("%s.%s.txt", name, time.Now().UTC().Format("20060102T150405.000000000")))
	if err := writeFileAtomic(p, []byte(data), 0o644); err != nil {
		return "", fmt.Errorf("backing up %s: %w", e.item.CaptionPath, err)
	}
	return p, nil
}

// CheckDisk reports whether the caption file changed on disk since it was
// loaded or saved here, and what it holds now.
func (d *Dataset) CheckDisk(rel string) (changed bool, diskText string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.lookup(rel)
	if err != nil {
		return false, "", err
	}
	cur, err := d.readDisk(e)
	if err != nil {
		return false, "", err
	}
	return cur != e.disk, cur.data, nil
}

// ReloadFromDisk accepts the caption file as it is now (the user chose the
// disk version); it is recorded as an external revision.
func (d *Dataset) ReloadFromDisk(rel string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.lookup(rel)
	if err != nil {
		return err
	}
	_, cur, err := d.prepare(e, false)
	if err != nil {
		return err
	}
	e.setDisk(cur)
	return nil
}

// historyOp runs one of storage's undo/redo/restore calls for rel, after
// refusing a file changed behind our back; it returns the text now on disk.
func (d *Dataset) historyOp(rel string, op func(id int64, write func(string) error) (storage.Revision, error)) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.lookup(rel)
	if err != nil {
		return "", err
	}
	id, _, err := d.prepare(e, true)
	if err != nil {
		return "", err
	}
	rev, err := op(id, func(text string) error { return d.writeText(e, text) })
	if err != nil {
		return "", fmt.Errorf("%s: %w", rel, err)
	}
	return rev.Text, nil
}

// Undo goes back one caption revision of rel and returns the caption now on
// disk ("" means the image has no caption file). ErrNothingToUndo
// (wrapped) when there is nothing to undo.
func (d *Dataset) Undo(rel string) (string, error) {
	return d.historyOp(rel, func(id int64, w func(string) error) (storage.Revision, error) { return d.db.Undo(id, w) })
}

// Redo re-applies the caption revision last undone. ErrNothingToRedo
// (wrapped) when there is nothing to redo.
func (d *Dataset) Redo(rel string) (string, error) {
	return d.historyOp(rel, func(id int64, w func(string) error) (storage.Revision, error) { return d.db.Redo(id, w) })
}

// Restore makes an older revision the current caption (a new revision).
func (d *Dataset) Restore(rel string, revisionID int64) error {
	_, err := d.historyOp(rel, func(id int64, w func(string) error) (storage.Revision, error) {
		return d.db.Restore(id, revisionID, w)
	})
	return err
}

// History returns the caption revisions of rel, oldest first; a caption on
// disk not yet in the history is recorded first.
func (d *Dataset) History(rel string) ([]storage.Revision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.lookup(rel)
	if err != nil {
		return nil, err
	}
	id, _, err := d.prepare(e, false)
	if err != nil {
		return nil, err
	}
	return d.db.Revisions(id)
}

// TagCount is how many captions contain a tag.
type TagCount struct {
	Tag   string // the tag, trimmed
	Count int    // number of images whose caption has it
}

// splitTags splits a caption into its trimmed, non-empty comma-separated tags.
func splitTags(caption string) []string {
	var out []string
	for _, t := range strings.Split(caption, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// TagCounts counts the comma-separated tags over all captions (once per
// image), most frequent first, then by tag.
func (d *Dataset) TagCounts() []TagCount {
	d.mu.Lock()
	counts := map[string]int{}
	for _, e := range d.items {
		seen := map[string]bool{}
		for _, t := range splitTags(e.item.Caption) {
			if !seen[t] {
				seen[t] = true
				counts[t]++
			}
		}
	}
	d.mu.Unlock()
	out := make([]TagCount, 0, len(counts))
	for t, n := range counts {
		out = append(out, TagCount{Tag: t, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Tag < out[j].Tag
	})
	return out
}

// selectItems returns snapshots of the items (in order) that keep says yes to.
func (d *Dataset) selectItems(keep func(*Item) bool) []*Item {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*Item
	for _, rel := range d.order {
		if it := d.items[rel].item; keep(it) {
			out = append(out, it.clone())
		}
	}
	return out
}

// Filter returns the items whose caption or path contains query,
// ignoring case; an empty query gives all items.
func (d *Dataset) Filter(query string) []*Item {
	q := strings.ToLower(strings.TrimSpace(query))
	return d.selectItems(func(it *Item) bool {
		return q == "" || strings.Contains(strings.ToLower(it.Caption), q) || strings.Contains(strings.ToLower(it.Rel), q)
	})
}

// Uncaptioned returns the items with no caption or an empty one.
func (d *Dataset) Uncaptioned() []*Item {
	return d.selectItems((*Item).NeedsCaption)
}

// NextUncaptioned returns the first uncaptioned item after afterRel in path
// order, wrapping around to the start ("" starts at the beginning).
func (d *Dataset) NextUncaptioned(afterRel string) (*Item, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(d.order)
	start := sort.SearchStrings(d.order, afterRel)
	if start < n && d.order[start] == afterRel {
		start++
	}
	for k := 0; k < n; k++ {
		it := d.items[d.order[(start+k)%n]].item
		if it.NeedsCaption() {
			return it.clone(), true
		}
	}
	return nil, false
}

// SmallImages returns the readable items whose shorter side is below resolution.
func (d *Dataset) SmallImages(resolution int) []*Item {
	return d.selectItems(func(it *Item) bool {
		return it.Err == nil && min(it.Width, it.Height) < resolution
	})
}
