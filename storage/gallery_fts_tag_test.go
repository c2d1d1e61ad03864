//go:build sqlite_fts5

package storage

// builtWithFTS5 is true when the tests are built with the sqlite_fts5 tag, so they know
// whether a search must work or must fail with ErrNoFullTextSearch.
const builtWithFTS5 = true
