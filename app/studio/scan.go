package studio

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Layout is how a dataset folder pairs images with caption files.
type Layout string

const (
	// LayoutTutorial is images/NAME.png with captions/NAME.txt.
	LayoutTutorial Layout = "images+captions"
	// LayoutKohya is NAME.png with NAME.txt beside it, optionally in N_name repeat folders.
	LayoutKohya Layout = "kohya"
)

// Item is one image of a dataset and its caption, as last seen on disk.
type Item struct {
	Rel         string    // path of the image relative to the dataset root, forward slashes
	ImagePath   string    // absolute path of the image
	CaptionPath string    // absolute path of the caption file (which may not exist yet)
	Width       int       // pixels, from the image header
	Height      int       // pixels, from the image header
	Format      string    // "png", "jpeg" or "webp"
	Caption     string    // caption text ("" when there is none)
	HasCaption  bool      // whether the caption file exists
	Hash        string    // hex sha256 of the image file; filled lazily ("" until known)
	Repeats     int       // kohya N_name folder repeat count (1 otherwise)
	Err         error     // why the image cannot be read; nil when it can
	CaptionErr  error     // why the caption file cannot be used (unreadable, not UTF-8); its bytes are left alone
	Warnings    []Warning // problems that do not stop training: CMYK, 16-bit, small, truncated JPEG ...
}

// clone returns a deep copy of the item for handing out of a Dataset.
func (it *Item) clone() *Item {
	cp := *it
	cp.Warnings = append([]Warning(nil), it.Warnings...)
	return &cp
}

// scanResult is what reading a dataset folder produced.
type scanResult struct {
	layout Layout
	items  []*Item // sorted by Rel
	others []string
	disk   map[string]diskState // by Rel: caption file content as read
}

// diskState is the caption file content a Dataset last read or wrote.
type diskState struct {
	exists bool
	data   string // raw bytes (may be invalid UTF-8)
}

// detectLayout decides the layout: an images/ folder means the tutorial layout.
func detectLayout(root string) Layout {
	if st, err := os.Stat(filepath.Join(root, "images")); err == nil && st.IsDir() {
		return LayoutTutorial
	}
	return LayoutKohya
}

// repeatsOf returns the kohya repeat count from the first folder of rel
// ("10_mychar/img.png" -> 10), or 1.
func repeatsOf(rel string) int {
	first, _, ok := strings.Cut(rel, "/")
	if !ok {
		return 1
	}
	num, name, ok := strings.Cut(first, "_")
	if !ok || name == "" {
		return 1
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// stemRel is rel without its extension.
func stemRel(rel string) string {
	return strings.TrimSuffix(rel, path.Ext(rel))
}

// captionRelFor maps an image's rel path to its caption file's rel path.
func captionRelFor(layout Layout, rel string) string {
	if layout == LayoutTutorial {
		return "captions/" + stemRel(strings.TrimPrefix(rel, "images/")) + ".txt"
	}
	return stemRel(rel) + ".txt"
}

// scanDataset lists a dataset folder: images (headers only, read in
// parallel), their captions, and every other file.
func scanDataset(root string) (*scanResult, error) {
	st, err := os.Stat(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("dataset folder %s does not exist", root)
		}
		return nil, fmt.Errorf("dataset folder %s: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("dataset %s is not a folder", root)
	}
	res := &scanResult{layout: detectLayout(root), disk: map[string]diskState{}}
	var files []string
	// Links are followed: a dataset folder given as a link, or with linked
	// sub-folders or images, lists what they lead to.
	err = walkFiles(root, walkOptions{}, func(rel string) error {
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dataset folder %s: %w", root, err)
	}
	isFile := make(map[string]bool, len(files))
	for _, f := range files {
		isFile[f] = true
	}
	used := map[string]bool{}
	captionOwner := map[string]string{} // caption rel -> first image rel claiming it
	for _, rel := range files {
		if !isImageName(rel) {
			continue
		}
		if res.layout == LayoutTutorial && !strings.HasPrefix(rel, "images/") {
			continue
		}
		capRel := captionRelFor(res.layout, rel)
		it := &Item{
			Rel:         rel,
			ImagePath:   filepath.Join(root, filepath.FromSlash(rel)),
			CaptionPath: filepath.Join(root, filepath.FromSlash(capRel)),
			Repeats:     1,
		}
		if res.layout == LayoutKohya {
			it.Repeats = repeatsOf(rel)
		}
		if owner, dup := captionOwner[capRel]; dup {
			it.Warnings = append(it.Warnings, Warning{WarnSharedCaption, fmt.Sprintf("shares its caption file %s with %s", capRel, owner)})
		} else {
			captionOwner[capRel] = rel
		}
		used[rel] = true
		if isFile[capRel] {
			used[capRel] = true
		}
		res.items = append(res.items, it)
	}
	for _, rel := range files {
		if !used[rel] {
			res.others = append(res.others, rel)
		}
	}
	sort.Slice(res.items, func(i, j int) bool { return res.items[i].Rel < res.items[j].Rel })
	sort.Strings(res.others)

	// Headers and captions, in parallel: opening 5,000 images must stay quick.
	disk := make([]diskState, len(res.items))
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < max(4, 2*runtime.GOMAXPROCS(0)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				disk[i] = loadItem(res.items[i])
			}
		}()
	}
	for i := range res.items {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, it := range res.items {
		res.disk[it.Rel] = disk[i]
	}
	return res, nil
}

// loadItem fills an item's header fields and caption, returning the caption
// file's raw content.
func loadItem(it *Item) diskState {
	h, err := readImageHeader(it.ImagePath)
	it.Width, it.Height, it.Format = h.width, h.height, h.format
	it.Warnings = append(it.Warnings, h.warnings...)
	it.Err = err
	ds, err := readCaptionFile(it.CaptionPath)
	applyCaption(it, ds, err)
	return ds
}

// applyCaption sets an item's caption fields from a caption file's content.
func applyCaption(it *Item, ds diskState, err error) {
	it.CaptionErr = nil
	it.Warnings = dropCaptionWarnings(it.Warnings)
	it.HasCaption = ds.exists
	it.Caption = ""
	switch {
	case err != nil:
		it.CaptionErr = err
	case ds.exists && !utf8.ValidString(ds.data):
		it.CaptionErr = fmt.Errorf("caption %s: %w (left untouched; save to replace it)", it.CaptionPath, ErrNotUTF8)
	default:
		it.Caption = ds.data
	}
	if it.CaptionErr != nil {
		it.Warnings = append(it.Warnings, Warning{WarnCaptionFile, "caption file: " + it.CaptionErr.Error()})
	}
}

// dropCaptionWarnings removes warnings added by applyCaption.
func dropCaptionWarnings(ws []Warning) []Warning {
	out := ws[:0]
	for _, w := range ws {
		if w.Kind != WarnCaptionFile {
			out = append(out, w)
		}
	}
	return out
}

// readCaptionFile reads a caption file; a missing file is not an error.
func readCaptionFile(p string) (diskState, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return diskState{}, nil
		}
		return diskState{}, fmt.Errorf("caption %s: %w", p, err)
	}
	return diskState{exists: true, data: string(b)}, nil
}
