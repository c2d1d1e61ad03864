// Package studio is LoRA Studio's headless application layer, shared by the
// GUI and the CLI: it opens dataset folders, keeps their caption files (the
// source of truth) in step with the caption history in SQLite, runs bulk
// edits, and makes cached thumbnails.
package studio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"lorastudio/storage"
)

// DBFileName is the database file inside the data directory.
const DBFileName = "lorastudio.db"

// settingSample is the settings row recording that the sample dataset was written.
const settingSample = "studio.sample_dataset_written"

// Studio is the application: a data directory with its database and
// thumbnail cache. It is safe for concurrent use.
type Studio struct {
	dataDir string
	db      *storage.DB
	thumbs  *Thumbnailer
	cacheMu sync.Mutex // serialises generation cache trimming
}

// Open opens the studio on dataDir: <dataDir>/lorastudio.db and the
// thumbnail cache under <dataDir>/thumbnails.
func Open(dataDir string) (*Studio, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dataDir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", abs, err)
	}
	db, err := storage.Open(filepath.Join(abs, DBFileName))
	if err != nil {
		return nil, err
	}
	th, err := NewThumbnailer(filepath.Join(abs, "thumbnails"), 0)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Studio{dataDir: abs, db: db, thumbs: th}, nil
}

// Close stops the thumbnail workers and closes the database.
func (s *Studio) Close() error {
	s.thumbs.Close()
	return s.db.Close()
}

// DataDir returns the absolute data directory.
func (s *Studio) DataDir() string { return s.dataDir }

// DB returns the studio's database, for other parts of the application layer.
func (s *Studio) DB() *storage.DB { return s.db }

// Thumbnails returns the studio's thumbnail maker.
func (s *Studio) Thumbnails() *Thumbnailer { return s.thumbs }

// OpenDataset scans a dataset folder (either layout), registers it and its
// images in the database, records every caption the history does not hold
// yet (import, or external when changed since) and remembers it as the last
// dataset.
func (s *Studio) OpenDataset(dir string) (*Dataset, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset folder %s: %w", dir, err)
	}
	res, err := scanDataset(abs)
	if err != nil {
		return nil, err
	}
	rec, err := s.db.EnsureDataset(abs, string(res.layout))
	if err != nil {
		return nil, err
	}
	if err := s.db.SetLastDataset(rec.ID); err != nil {
		return nil, err
	}
	d := &Dataset{st: s, db: s.db, root: abs, id: rec.ID}
	d.install(res)
	// Files an interrupted bulk edit wrote are its own, not external changes.
	if err := d.reconcileIntent(); err != nil {
		return nil, err
	}
	if err := d.recordAll(); err != nil {
		return nil, err
	}
	return d, nil
}

// LastDataset returns the folder of the last dataset opened, if it still exists.
func (s *Studio) LastDataset() (string, bool) {
	id, ok, err := s.db.LastDataset()
	if err != nil || !ok {
		return "", false
	}
	rec, err := s.db.DatasetByID(id)
	if err != nil {
		return "", false
	}
	v := rec.Root
	if st, err := os.Stat(v); err != nil || !st.IsDir() {
		return "", false
	}
	return v, true
}

// errDatasetGone is wrapped into errors about a dataset folder that vanished.
var errDatasetGone = errors.New("dataset folder no longer exists")
