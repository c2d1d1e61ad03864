// Package storage keeps LoRA Studio's history in one SQLite database: datasets and their
// images, every caption revision with undo/redo and bulk batches, training runs with their
// metrics and samples, generated images with their parameters, the generation cache and a
// small settings store. The schema is described in README.md beside this file.
package storage

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" database/sql driver
)

// ErrNewerSchema is returned (wrapped, test with errors.Is) by Open when the database was
// written by a newer LoRA Studio than this build; the file is left untouched.
var ErrNewerSchema = errors.New("database schema is newer than this build of LoRA Studio")

// ErrNotFound is returned (wrapped) when a requested row does not exist.
var ErrNotFound = errors.New("not found")

// ApplicationID is the SQLite application_id stamped into every LoRA Studio database
// ("LoRA" in ASCII), so a foreign SQLite file is recognised and refused.
const ApplicationID = 0x4c6f5241

// DB is an open LoRA Studio database. It is safe for concurrent use by many goroutines:
// reads run in parallel (WAL mode), writes are serialised.
type DB struct {
	sql  *sql.DB
	path string
	// wmu serialises this process's write transactions so goroutines queue in Go instead
	// of spinning in SQLite's busy handler; other processes are covered by busy_timeout.
	wmu sync.Mutex
}

// busyTimeoutMS is how long a connection waits for another writer's lock before SQLITE_BUSY.
const busyTimeoutMS = 5000

// dsn builds the go-sqlite3 data source name for path. The path goes through a file: URI
// with its special characters percent-escaped, so names containing '?', '#' or '%' work.
// Every pooled connection gets WAL, foreign keys, the busy timeout and synchronous=FULL
// (go-sqlite3 applies these parameters on each new connection).
func dsn(path string, readOnly bool) string {
	u := url.URL{Path: filepath.ToSlash(path)}
	p := u.EscapedPath()
	if runtime.GOOS == "windows" && len(p) > 0 && p[0] != '/' {
		p = "/" + p // file:/C:/... as SQLite expects on Windows
	}
	q := fmt.Sprintf("_foreign_keys=on&_busy_timeout=%d&_synchronous=FULL", busyTimeoutMS)
	if readOnly {
		return "file:" + p + "?mode=ro&" + q
	}
	return "file:" + p + "?_journal_mode=WAL&_txlock=immediate&" + q
}

// Open opens (creating it and its parent directory if needed) the database at path and
// migrates it to SchemaVersion, one transaction per migration. A database written by a newer
// build is refused with an error wrapping ErrNewerSchema that names the file and both
// versions; such a file is checked without being opened for writing and is left untouched.
func Open(path string) (*DB, error) { return openTo(path, len(migrations)) }

// openTo is Open migrating only up to version target; tests use it to build older databases.
func openTo(path string, target int) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("storage: database path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("storage: creating the directory for %s: %w", abs, err)
	}
	if err := precheck(abs); err != nil {
		return nil, err
	}
	sdb, err := sql.Open("sqlite3", dsn(abs, false))
	if err != nil {
		return nil, fmt.Errorf("storage: opening %s: %w", abs, err)
	}
	sdb.SetMaxOpenConns(8)
	sdb.SetMaxIdleConns(4)
	db := &DB{sql: sdb, path: abs}
	if err := db.migrate(target); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// precheck reads the version of an existing database without letting SQLite touch it, so a
// newer or foreign file is refused before anything is written. Without a -wal file the
// SQLite header holds the truth and is read as plain bytes; with one (another process has it
// open, or it crashed) a read-only connection reads the version through the WAL.
func precheck(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: opening %s: %w", path, err)
	}
	defer f.Close()
	hdr := make([]byte, 100)
	n, err := io.ReadFull(f, hdr)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil // an empty file is a new database
	}
	if err != nil {
		return fmt.Errorf("storage: %s is not a SQLite database (only %d header bytes): %w", path, n, err)
	}
	if string(hdr[:16]) != "SQLite format 3\x00" {
		return fmt.Errorf("storage: %s is not a SQLite database (bad header)", path)
	}
	version := int(int32(binary.BigEndian.Uint32(hdr[60:64])))
	appID := binary.BigEndian.Uint32(hdr[68:72])
	if st, err := os.Stat(path + "-wal"); err == nil && st.Size() > 0 {
		version, appID, err = readOnlyVersion(path)
		if err != nil {
			return err
		}
	}
	if appID != 0 && appID != ApplicationID {
		return fmt.Errorf("storage: %s is a SQLite database of another application (application_id %#x), not a LoRA Studio database", path, appID)
	}
	if version > SchemaVersion {
		return newerError(path, version)
	}
	return nil
}

// readOnlyVersion asks SQLite, through a read-only connection, for user_version and
// application_id of path.
func readOnlyVersion(path string) (int, uint32, error) {
	sdb, err := sql.Open("sqlite3", dsn(path, true))
	if err != nil {
		return 0, 0, fmt.Errorf("storage: opening %s read-only: %w", path, err)
	}
	defer sdb.Close()
	var v int
	var app int64
	if err := sdb.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return 0, 0, fmt.Errorf("storage: reading the schema version of %s: %w", path, err)
	}
	if err := sdb.QueryRow("PRAGMA application_id").Scan(&app); err != nil {
		return 0, 0, fmt.Errorf("storage: reading the application id of %s: %w", path, err)
	}
	return v, uint32(app), nil
}

func newerError(path string, found int) error {
	return fmt.Errorf("storage: %s has schema version %d but this build of LoRA Studio understands up to version %d; update LoRA Studio to open it (the file was not modified): %w",
		path, found, SchemaVersion, ErrNewerSchema)
}

// Close closes the database; the last connection checkpoints the WAL into the main file.
func (db *DB) Close() error {
	if err := db.sql.Close(); err != nil {
		return fmt.Errorf("storage: closing %s: %w", db.path, err)
	}
	return nil
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Version returns the schema version stored in the database (PRAGMA user_version).
func (db *DB) Version() (int, error) {
	var v int
	if err := db.sql.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return 0, db.errf(err, "reading the schema version")
	}
	return v, nil
}

// errf wraps err with the database file and what was being done.
func (db *DB) errf(err error, format string, args ...any) error {
	return fmt.Errorf("storage: %s: %s: %w", db.path, fmt.Sprintf(format, args...), err)
}

// writeTx runs fn in one write transaction (BEGIN IMMEDIATE), committing if fn returns nil
// and rolling back otherwise. Write transactions of this process are serialised. Errors are
// returned as they are (not yet naming the database file); callers wrap them with db.errf.
func (db *DB) writeTx(fn func(tx *sql.Tx) error) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.sql.BeginTx(context.Background(), nil)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return errors.Join(err, fmt.Errorf("rolling back: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// now returns the current time as stored: unix nanoseconds, UTC.
func now() int64 { return time.Now().UnixNano() }

// fromNanos turns a stored unix-nanosecond timestamp into a UTC time.Time.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// fromNullNanos is fromNanos for nullable columns; NULL gives the zero time.
func fromNullNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNanos(n.Int64)
}

// nullID turns 0 into SQL NULL for optional foreign keys.
func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }
