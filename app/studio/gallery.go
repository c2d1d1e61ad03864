package studio

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"lorastudio/engine/sdxl/demo"
	"lorastudio/storage"
)

// TrashDir is the folder under the data directory that deleted gallery images move to, so
// that a delete can be undone.
const TrashDir = "trash"

// ErrNoFullTextSearch is returned (wrapped) by a gallery search in a build without SQLite's
// FTS5 (see storage.ErrNoFullTextSearch).
var ErrNoFullTextSearch = storage.ErrNoFullTextSearch

// GalleryFilter selects gallery images. The zero value is every image not deleted.
type GalleryFilter struct {
	Search     string    // words of the prompt or negative prompt, the last one a prefix; "" = any
	Model      string    // the model path exactly; "" = any
	LoRA       string    // a LoRA path the image used; "" = any
	Since      time.Time // made at or after; zero = no bound
	Until      time.Time // made before; zero = no bound
	Favourites bool      // only favourites
	Trash      bool      // the deleted images instead of the live ones
}

func (f GalleryFilter) query() storage.GalleryQuery {
	return storage.GalleryQuery{Search: f.Search, Model: f.Model, LoRA: f.LoRA, Since: f.Since, Until: f.Until,
		Favourites: f.Favourites, Trash: f.Trash}
}

// GalleryItem is one generated image with every parameter that made it.
type GalleryItem struct {
	ID        int64
	Time      time.Time
	Prompt    string
	Negative  *string // nil = no negative prompt, distinct from ""
	Model     string  // the model path
	LoRAs     []LoRASpec
	Seed      uint64
	Steps     int
	CFG       float64
	Sampler   string
	Width     int
	Height    int
	File      string        // the PNG as written (for a deleted image: where it will be restored to)
	Cached    bool          // the image was copied from the generation cache
	Favourite bool          //
	Deleted   bool          // in the trash
	Device    string        // what ran it ("cpu", "gl:<renderer>", "cache")
	Duration  time.Duration // how long the request took
}

// galleryItem converts a storage row.
func galleryItem(r storage.GalleryItem) (GalleryItem, error) {
	it := GalleryItem{ID: r.ID, Time: r.CreatedAt, Prompt: r.Prompt, Negative: r.Negative, Model: r.Model,
		Seed: uint64(r.Seed), Steps: r.Steps, CFG: r.CFG, Sampler: r.Sampler, Width: r.Width, Height: r.Height,
		File: r.OutputPath, Cached: r.FromCache, Favourite: r.Favourite, Deleted: !r.DeletedAt.IsZero(),
		Device: r.Device, Duration: time.Duration(r.DurationMS) * time.Millisecond}
	var loras []struct {
		Path   string  `json:"path"`
		Weight float32 `json:"weight"`
	}
	if err := json.Unmarshal([]byte(r.LorasJSON), &loras); err != nil {
		return GalleryItem{}, fmt.Errorf("generation %d: its LoRA list %q: %w", r.ID, r.LorasJSON, err)
	}
	for _, l := range loras {
		it.LoRAs = append(it.LoRAs, LoRASpec{Path: l.Path, Weight: l.Weight})
	}
	return it, nil
}

// Gallery returns up to limit images matching f (all when limit <= 0), newest first,
// skipping the first offset. A search fails with ErrNoFullTextSearch in a build without FTS5.
func (s *Studio) Gallery(f GalleryFilter, offset, limit int) ([]GalleryItem, error) {
	rows, err := s.db.GalleryPage(f.query(), offset, limit)
	if err != nil {
		return nil, err
	}
	out := make([]GalleryItem, 0, len(rows))
	for _, r := range rows {
		it, err := galleryItem(r)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

// GalleryCount returns how many images match f.
func (s *Studio) GalleryCount(f GalleryFilter) (int, error) { return s.db.GalleryCount(f.query()) }

// GalleryItem returns one image of the history by id.
func (s *Studio) GalleryItem(id int64) (GalleryItem, error) {
	r, err := s.db.GalleryItem(id)
	if err != nil {
		return GalleryItem{}, err
	}
	return galleryItem(r)
}

// GalleryModels returns the models of the gallery's images, most used first.
func (s *Studio) GalleryModels() ([]string, error) { return s.db.GalleryModels() }

// GalleryLoRAs returns the LoRA files the gallery's images used, most used first.
func (s *Studio) GalleryLoRAs() ([]string, error) { return s.db.GalleryLoRAs() }

// RecentModels returns up to n models, the most recently used first.
func (s *Studio) RecentModels(n int) ([]string, error) { return s.db.RecentModels(n) }

// SetFavourite marks or unmarks image id as a favourite.
func (s *Studio) SetFavourite(id int64, fav bool) error { return s.db.SetFavourite(id, fav) }

// trashPath is where image id's file goes when deleted.
func (s *Studio) trashPath(id int64, file string) string {
	return filepath.Join(s.dataDir, TrashDir, strconv.FormatInt(id, 10)+"-"+filepath.Base(file))
}

// DeleteGeneration deletes image id softly: its file moves to <data>/trash and the image
// leaves the gallery; RestoreGeneration undoes both. An image whose file is already gone is
// deleted all the same.
func (s *Studio) DeleteGeneration(id int64) error {
	it, err := s.db.GalleryItem(id)
	if err != nil {
		return err
	}
	if !it.DeletedAt.IsZero() {
		return nil
	}
	trash := s.trashPath(id, it.OutputPath)
	if _, err := os.Stat(it.OutputPath); errors.Is(err, fs.ErrNotExist) {
		trash = ""
	} else if err != nil {
		return fmt.Errorf("deleting %s: %w", it.OutputPath, err)
	} else {
		if err := os.MkdirAll(filepath.Dir(trash), 0o755); err != nil {
			return fmt.Errorf("trash folder %s: %w", filepath.Dir(trash), err)
		}
		if err := moveFile(it.OutputPath, trash); err != nil {
			return fmt.Errorf("deleting %s: %w", it.OutputPath, err)
		}
	}
	if err := s.db.MarkDeleted(id, trash); err != nil {
		if trash != "" {
			if merr := moveFile(trash, it.OutputPath); merr != nil {
				return errors.Join(err, fmt.Errorf("putting %s back: %w", it.OutputPath, merr))
			}
		}
		return err
	}
	return nil
}

// RestoreGeneration undoes DeleteGeneration: the file moves back from the trash to where it
// was and the image returns to the gallery. It refuses to overwrite a file that has since
// appeared at that path.
func (s *Studio) RestoreGeneration(id int64) error {
	it, err := s.db.GalleryItem(id)
	if err != nil {
		return err
	}
	if it.DeletedAt.IsZero() {
		return nil
	}
	if it.TrashPath != "" {
		if _, err := os.Stat(it.OutputPath); err == nil {
			return fmt.Errorf("restoring %s: a file of that name exists again; move it away first (the deleted image is %s)", it.OutputPath, it.TrashPath)
		}
		if err := os.MkdirAll(filepath.Dir(it.OutputPath), 0o755); err != nil {
			return fmt.Errorf("restoring %s: %w", it.OutputPath, err)
		}
		if err := moveFile(it.TrashPath, it.OutputPath); err != nil {
			return fmt.Errorf("restoring %s: %w", it.OutputPath, err)
		}
	}
	if err := s.db.RestoreDeleted(id); err != nil {
		if it.TrashPath != "" {
			if merr := moveFile(it.OutputPath, it.TrashPath); merr != nil {
				return errors.Join(err, merr)
			}
		}
		return err
	}
	return nil
}

// moveFile renames src to dst, copying (and syncing) then removing src when they are on
// different file systems.
func moveFile(src, dst string) error {
	err := os.Rename(src, dst)
	if err == nil {
		syncDir(filepath.Dir(dst))
		return nil
	}
	var le *os.LinkError
	if !errors.As(err, &le) {
		return err
	}
	in, oerr := os.Open(src)
	if oerr != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".moving"
	out, cerr := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if cerr != nil {
		return fmt.Errorf("%w (and copying: %v)", err, cerr)
	}
	_, werr := io.Copy(out, in)
	if werr == nil {
		werr = out.Sync()
	}
	if cerr := out.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, dst)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("copying %s to %s: %w", src, dst, werr)
	}
	syncDir(filepath.Dir(dst))
	return removeFileDurable(src)
}

// Request returns a generation request with every parameter of the image, so generating it
// again gives the same picture (from the cache when it still holds it).
func (it GalleryItem) Request() GenerateRequest {
	r := DefaultGenerateRequest()
	r.Model, r.Prompt, r.Steps, r.CFG, r.Sampler, r.Width, r.Height = it.Model, it.Prompt, it.Steps, it.CFG, it.Sampler, it.Width, it.Height
	if it.Negative != nil {
		n := *it.Negative
		r.Negative = &n
	}
	r.LoRAs = append([]LoRASpec(nil), it.LoRAs...)
	seed := it.Seed
	r.Seed = &seed
	return r
}

// ModelLabel is a model path as a person reads it: the demo model's name, else the file or
// folder name without .safetensors.
func ModelLabel(path string) string {
	if path == "" {
		return demo.Name
	}
	base := filepath.Base(path)
	if base == demo.DirName {
		return demo.Name
	}
	if strings.EqualFold(filepath.Ext(base), ".safetensors") {
		base = base[:len(base)-len(".safetensors")]
	}
	return base
}

// GalleryThumbnail returns the thumbnail (longest side size pixels) of an image at once when
// the memory or disk cache holds it; otherwise it returns false and makes it in the
// background. The in-memory cache is the studio's bounded LRU (see Thumbnailer).
func (s *Studio) GalleryThumbnail(it GalleryItem, size int) (image.Image, bool) {
	return s.thumbs.Get(&Item{ImagePath: it.File}, size)
}

// RequestGalleryThumbnail makes the thumbnail of an image on a background worker and calls
// done, from that worker, with it or an error naming the file.
func (s *Studio) RequestGalleryThumbnail(it GalleryItem, size int, done func(image.Image, error)) {
	s.thumbs.Request(&Item{ImagePath: it.File}, size, done)
}

// ImportGenerations records images made elsewhere (or restored from a backup) in the
// history in one transaction, with the parameters each item gives; a zero Time is now. It
// returns the new ids in order.
func (s *Studio) ImportGenerations(items []GalleryItem) ([]int64, error) {
	gs := make([]storage.Generation, len(items))
	for i, it := range items {
		type rec struct {
			Path   string  `json:"path"`
			Weight float32 `json:"weight"`
		}
		loras := []rec{}
		for _, l := range it.LoRAs {
			loras = append(loras, rec{l.Path, l.Weight})
		}
		lj, err := json.Marshal(loras)
		if err != nil {
			return nil, fmt.Errorf("importing %s: %w", it.File, err)
		}
		if it.Seed > math.MaxInt64 {
			return nil, fmt.Errorf("importing %s: seed %d is larger than %d", it.File, it.Seed, int64(math.MaxInt64))
		}
		gs[i] = storage.Generation{Model: it.Model, LorasJSON: string(lj), Prompt: it.Prompt, Negative: it.Negative,
			Sampler: it.Sampler, Steps: it.Steps, CFG: it.CFG, Width: it.Width, Height: it.Height, Seed: int64(it.Seed),
			Device: it.Device, OutputPath: it.File, DurationMS: it.Duration.Milliseconds(), FromCache: it.Cached, CreatedAt: it.Time}
	}
	return s.db.AddGenerations(gs)
}
