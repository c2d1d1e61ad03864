//go:build !sqlite_fts5

package storage

// builtWithFTS5 is false without the sqlite_fts5 tag: searches must fail clearly.
const builtWithFTS5 = false
