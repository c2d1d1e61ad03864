package storage

import (
	"database/sql"
	"errors"
	"sync"
)

// ErrNoFullTextSearch is returned (wrapped) by a gallery search in a build whose SQLite lacks
// FTS5. go-sqlite3 compiles it in only with the sqlite_fts5 build tag, which `make build`
// and `make test` set (TAGS in the Makefile).
var ErrNoFullTextSearch = errors.New("full-text search is not available: this build's SQLite has no FTS5 " +
	"(build LoRA Studio with -tags sqlite_fts5, as `make build` does)")

var (
	ftsOnce sync.Once
	ftsOK   bool
)

// FullTextSearch reports whether this build's SQLite has FTS5. It is a property of the
// compiled library, the same for every database of the process.
func FullTextSearch() bool {
	ftsOnce.Do(func() {
		sdb, err := sql.Open("sqlite3", ":memory:")
		if err != nil {
			return
		}
		defer sdb.Close()
		var used int
		if err := sdb.QueryRow(`SELECT sqlite_compileoption_used('ENABLE_FTS5')`).Scan(&used); err == nil {
			ftsOK = used == 1
		}
	})
	return ftsOK
}

// syncFTS brings the full-text index of prompts up to date before a search for text (nothing
// to do for an empty search). The index is a separate FTS5 table, generations_fts, whose
// rowid is the generation's id; it is created on the first search and then gets the rows
// added since the last one. Keeping it in step here rather than with triggers means a build
// without FTS5 can still record generations in a database that has the index.
func (db *DB) syncFTS(text string) error {
	if ftsQuery(text) == "" {
		return nil
	}
	if !FullTextSearch() {
		return db.errf(ErrNoFullTextSearch, "searching the gallery for %q", text)
	}
	err := db.writeTx(func(tx *sql.Tx) error {
		if _, err := tx.Exec(`CREATE VIRTUAL TABLE IF NOT EXISTS generations_fts USING fts5(prompt, negative, tokenize = 'unicode61')`); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO generations_fts (rowid, prompt, negative)
			SELECT id, prompt, coalesce(negative, '') FROM generations
			WHERE id > (SELECT coalesce(max(rowid), 0) FROM generations_fts) ORDER BY id`)
		return err
	})
	if err != nil {
		return db.errf(err, "updating the prompt search index")
	}
	return nil
}
