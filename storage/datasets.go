package storage

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Dataset is a folder of images on disk that LoRA Studio has opened.
type Dataset struct {
	ID        int64
	Root      string // absolute, cleaned path of the folder; unique
	Layout    string // how captions sit beside images (e.g. "sidecar-txt"); set by the caller
	CreatedAt time.Time
}

// Image is one image of a dataset, identified by its path relative to the dataset root.
type Image struct {
	ID, DatasetID int64
	Rel           string // slash-separated path relative to the dataset root
	Hash          string // content hash of the image file, as computed by the caller
	Width, Height int
}

// EnsureDataset returns the dataset whose root is the absolute path root, creating it if it
// does not exist, and records layout as its current layout.
func (db *DB) EnsureDataset(root, layout string) (Dataset, error) {
	if !filepath.IsAbs(root) {
		return Dataset{}, fmt.Errorf("storage: dataset root %q is not an absolute path", root)
	}
	root = filepath.Clean(root)
	var d Dataset
	var created int64
	err := db.writeTx(func(tx *sql.Tx) error {
		return tx.QueryRow(`INSERT INTO datasets (root, layout, created_at) VALUES (?, ?, ?)
			ON CONFLICT (root) DO UPDATE SET layout = excluded.layout
			RETURNING id, root, layout, created_at`, root, layout, now()).
			Scan(&d.ID, &d.Root, &d.Layout, &created)
	})
	if err != nil {
		return Dataset{}, db.errf(err, "recording dataset %s", root)
	}
	d.CreatedAt = fromNanos(created)
	return d, nil
}

// DatasetByID returns the dataset with the given id, or an error wrapping ErrNotFound.
func (db *DB) DatasetByID(id int64) (Dataset, error) {
	return db.scanDataset(db.sql.QueryRow(`SELECT id, root, layout, created_at FROM datasets WHERE id = ?`, id),
		fmt.Sprintf("dataset %d", id))
}

// DatasetByRoot returns the dataset whose root is root, or an error wrapping ErrNotFound.
func (db *DB) DatasetByRoot(root string) (Dataset, error) {
	root = filepath.Clean(root)
	return db.scanDataset(db.sql.QueryRow(`SELECT id, root, layout, created_at FROM datasets WHERE root = ?`, root),
		fmt.Sprintf("dataset %s", root))
}

// Datasets returns every known dataset, most recently created first.
func (db *DB) Datasets() ([]Dataset, error) {
	rows, err := db.sql.Query(`SELECT id, root, layout, created_at FROM datasets ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, db.errf(err, "listing datasets")
	}
	defer rows.Close()
	var out []Dataset
	for rows.Next() {
		var d Dataset
		var created int64
		if err := rows.Scan(&d.ID, &d.Root, &d.Layout, &created); err != nil {
			return nil, db.errf(err, "listing datasets")
		}
		d.CreatedAt = fromNanos(created)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "listing datasets")
	}
	return out, nil
}

func (db *DB) scanDataset(row *sql.Row, what string) (Dataset, error) {
	var d Dataset
	var created int64
	err := row.Scan(&d.ID, &d.Root, &d.Layout, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Dataset{}, fmt.Errorf("storage: %s: %s: %w", db.path, what, ErrNotFound)
	}
	if err != nil {
		return Dataset{}, db.errf(err, "reading %s", what)
	}
	d.CreatedAt = fromNanos(created)
	return d, nil
}

// EnsureImage returns the image rel of the dataset, creating it if needed, and records hash,
// width and height as its current content.
func (db *DB) EnsureImage(datasetID int64, rel, hash string, width, height int) (Image, error) {
	if rel == "" {
		return Image{}, fmt.Errorf("storage: %s: image path in dataset %d is empty", db.path, datasetID)
	}
	im := Image{}
	err := db.writeTx(func(tx *sql.Tx) error {
		return tx.QueryRow(`INSERT INTO images (dataset_id, rel, hash, width, height, created_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (dataset_id, rel) DO UPDATE SET hash = excluded.hash, width = excluded.width, height = excluded.height
			RETURNING id, dataset_id, rel, hash, width, height`, datasetID, rel, hash, width, height, now()).
			Scan(&im.ID, &im.DatasetID, &im.Rel, &im.Hash, &im.Width, &im.Height)
	})
	if err != nil {
		return Image{}, db.errf(err, "recording image %q of dataset %d", rel, datasetID)
	}
	return im, nil
}

// ImageByRel returns the image rel of the dataset, or an error wrapping ErrNotFound.
func (db *DB) ImageByRel(datasetID int64, rel string) (Image, error) {
	var im Image
	err := db.sql.QueryRow(`SELECT id, dataset_id, rel, hash, width, height FROM images WHERE dataset_id = ? AND rel = ?`,
		datasetID, rel).Scan(&im.ID, &im.DatasetID, &im.Rel, &im.Hash, &im.Width, &im.Height)
	if errors.Is(err, sql.ErrNoRows) {
		return Image{}, fmt.Errorf("storage: %s: image %q of dataset %d: %w", db.path, rel, datasetID, ErrNotFound)
	}
	if err != nil {
		return Image{}, db.errf(err, "reading image %q of dataset %d", rel, datasetID)
	}
	return im, nil
}

// Images returns every image recorded for the dataset, ordered by relative path.
func (db *DB) Images(datasetID int64) ([]Image, error) {
	rows, err := db.sql.Query(`SELECT id, dataset_id, rel, hash, width, height FROM images WHERE dataset_id = ? ORDER BY rel`, datasetID)
	if err != nil {
		return nil, db.errf(err, "listing images of dataset %d", datasetID)
	}
	defer rows.Close()
	var out []Image
	for rows.Next() {
		var im Image
		if err := rows.Scan(&im.ID, &im.DatasetID, &im.Rel, &im.Hash, &im.Width, &im.Height); err != nil {
			return nil, db.errf(err, "listing images of dataset %d", datasetID)
		}
		out = append(out, im)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "listing images of dataset %d", datasetID)
	}
	return out, nil
}
