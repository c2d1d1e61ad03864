package storage

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// FileHash is a remembered content hash of a file, valid while the file keeps
// the size and modification time it had when it was hashed.
type FileHash struct {
	Path     string // absolute path
	Algo     string // which hash, e.g. "sha256" (the whole file) or "addnet" (safetensors data)
	Size     int64
	MTime    time.Time
	Hash     string // lowercase hex
	HashedAt time.Time
}

// FileHash returns the stored hash of path under algo if it was recorded for
// this exact size and modification time; ok is false otherwise (never hashed,
// or the file changed since).
func (db *DB) FileHash(path, algo string, size int64, mtime time.Time) (hash string, ok bool, err error) {
	var storedSize, storedMtime int64
	err = db.sql.QueryRow(`SELECT size, mtime, hash FROM file_hashes WHERE path = ? AND algo = ?`, path, algo).
		Scan(&storedSize, &storedMtime, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, db.errf(err, "reading the %s hash of %s", algo, path)
	}
	if storedSize != size || storedMtime != mtime.UnixNano() {
		return "", false, nil
	}
	return hash, true, nil
}

// PutFileHash records the hash of path under algo for the given size and
// modification time, replacing an earlier record of the same path and algo.
func (db *DB) PutFileHash(h FileHash) error {
	if h.Path == "" || h.Algo == "" || h.Hash == "" {
		return fmt.Errorf("storage: %s: file hash record needs a path, an algorithm and a hash (got %q, %q, %q)", db.path, h.Path, h.Algo, h.Hash)
	}
	err := db.writeTx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO file_hashes (path, algo, size, mtime, hash, hashed_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (path, algo) DO UPDATE SET size = excluded.size, mtime = excluded.mtime, hash = excluded.hash,
			hashed_at = excluded.hashed_at`, h.Path, h.Algo, h.Size, h.MTime.UnixNano(), h.Hash, now())
		return err
	})
	if err != nil {
		return db.errf(err, "storing the %s hash of %s", h.Algo, h.Path)
	}
	return nil
}
