package storage

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// galleryMigration is the schema step behind the gallery: a favourite flag and a soft delete
// (the image file moved to the trash, the row kept so that undo can put it back), with
// indexes for the newest-first listing of what is not deleted and its favourites filter.
// The full-text index of the prompts is not part of it: FTS5 is a compile-time option of
// SQLite, so the index is created at Open when the build has it (see gallery_fts.go) and a
// build without it still opens and writes the same database.
const galleryMigration = `
ALTER TABLE generations ADD COLUMN favourite  INTEGER NOT NULL DEFAULT 0 CHECK (favourite IN (0, 1));
ALTER TABLE generations ADD COLUMN deleted_at INTEGER;
ALTER TABLE generations ADD COLUMN trash_path TEXT    NOT NULL DEFAULT '';
CREATE INDEX generations_live ON generations (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX generations_favourite ON generations (created_at, id) WHERE deleted_at IS NULL AND favourite = 1;
CREATE INDEX generations_model ON generations (model, created_at);
`

// GalleryItem is a generation as the gallery shows it: the history row with its favourite
// flag and soft-delete state.
type GalleryItem struct {
	Generation
	Favourite bool
	DeletedAt time.Time // zero while the image is in the gallery
	TrashPath string    // where the file was moved when deleted; "" when it was already gone
}

// GalleryQuery selects gallery rows. The zero value lists everything not deleted.
type GalleryQuery struct {
	// Search is full-text search over prompt and negative prompt: every word must occur, the
	// last one as a prefix ("red ca" finds "a red car"). "" matches everything.
	Search     string
	Model      string    // exact model path; "" = any
	LoRA       string    // a LoRA path the generation used; "" = any
	Since      time.Time // created at or after; zero = no lower bound
	Until      time.Time // created before; zero = no upper bound
	Favourites bool      // only favourites
	Trash      bool      // list the deleted generations instead of the live ones
}

const galleryCols = genCols + `, favourite, deleted_at, trash_path`

func scanGalleryItem(s rowScanner) (GalleryItem, error) {
	var it GalleryItem
	var neg sql.NullString
	var created int64
	var deleted sql.NullInt64
	g := &it.Generation
	if err := s.Scan(&g.ID, &g.Model, &g.LorasJSON, &g.Prompt, &neg, &g.Sampler, &g.Steps, &g.CFG, &g.Width, &g.Height,
		&g.Seed, &g.Device, &g.OutputPath, &g.DurationMS, &g.CacheKey, &g.FromCache, &created,
		&it.Favourite, &deleted, &it.TrashPath); err != nil {
		return GalleryItem{}, err
	}
	if neg.Valid {
		g.Negative = &neg.String
	}
	g.CreatedAt = fromNanos(created)
	it.DeletedAt = fromNullNanos(deleted)
	return it, nil
}

// where builds the WHERE clause and arguments of q.
func (q GalleryQuery) where(fts bool) (string, []any, error) {
	var conds []string
	var args []any
	if q.Trash {
		conds = append(conds, "deleted_at IS NOT NULL")
	} else {
		conds = append(conds, "deleted_at IS NULL")
	}
	if q.Favourites {
		conds = append(conds, "favourite = 1")
	}
	if q.Model != "" {
		conds = append(conds, "model = ?")
		args = append(args, q.Model)
	}
	if q.LoRA != "" {
		conds = append(conds, "EXISTS (SELECT 1 FROM json_each(loras_json) WHERE json_extract(value, '$.path') = ?)")
		args = append(args, q.LoRA)
	}
	if !q.Since.IsZero() {
		conds = append(conds, "created_at >= ?")
		args = append(args, q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		conds = append(conds, "created_at < ?")
		args = append(args, q.Until.UnixNano())
	}
	if m := ftsQuery(q.Search); m != "" {
		if !fts {
			return "", nil, ErrNoFullTextSearch
		}
		conds = append(conds, "id IN (SELECT rowid FROM generations_fts WHERE generations_fts MATCH ?)")
		args = append(args, m)
	}
	return strings.Join(conds, " AND "), args, nil
}

// ftsQuery turns what a user types into an FTS5 query: each word a quoted string (so
// punctuation and FTS5 operators are plain text), all required, the last one a prefix.
func ftsQuery(text string) string {
	words := strings.Fields(text)
	for i, w := range words {
		words[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
	}
	if len(words) > 0 {
		words[len(words)-1] += "*"
	}
	return strings.Join(words, " ")
}

// GalleryPage returns up to limit rows matching q, newest first, skipping the first offset.
// A search in a build without FTS5 fails with an error wrapping ErrNoFullTextSearch.
func (db *DB) GalleryPage(q GalleryQuery, offset, limit int) ([]GalleryItem, error) {
	if limit <= 0 {
		limit = -1
	}
	if offset < 0 {
		offset = 0
	}
	if err := db.syncFTS(q.Search); err != nil {
		return nil, err
	}
	where, args, err := q.where(FullTextSearch())
	if err != nil {
		return nil, db.errf(err, "searching the gallery for %q", q.Search)
	}
	rows, err := db.sql.Query(`SELECT `+galleryCols+` FROM generations WHERE `+where+
		` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, db.errf(err, "listing the gallery")
	}
	defer rows.Close()
	var out []GalleryItem
	for rows.Next() {
		it, err := scanGalleryItem(rows)
		if err != nil {
			return nil, db.errf(err, "listing the gallery")
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "listing the gallery")
	}
	return out, nil
}

// GalleryCount returns how many rows match q.
func (db *DB) GalleryCount(q GalleryQuery) (int, error) {
	if err := db.syncFTS(q.Search); err != nil {
		return 0, err
	}
	where, args, err := q.where(FullTextSearch())
	if err != nil {
		return 0, db.errf(err, "searching the gallery for %q", q.Search)
	}
	var n int
	if err := db.sql.QueryRow(`SELECT count(*) FROM generations WHERE `+where, args...).Scan(&n); err != nil {
		return 0, db.errf(err, "counting the gallery")
	}
	return n, nil
}

// GalleryItem returns one generation with its gallery state, or an error wrapping ErrNotFound.
func (db *DB) GalleryItem(id int64) (GalleryItem, error) {
	it, err := scanGalleryItem(db.sql.QueryRow(`SELECT `+galleryCols+` FROM generations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return GalleryItem{}, fmt.Errorf("storage: %s: generation %d: %w", db.path, id, ErrNotFound)
	}
	if err != nil {
		return GalleryItem{}, db.errf(err, "reading generation %d", id)
	}
	return it, nil
}

// updateGeneration runs one UPDATE on generation id, failing with ErrNotFound when no row has it.
func (db *DB) updateGeneration(id int64, what, query string, args ...any) error {
	err := db.writeTx(func(tx *sql.Tx) error {
		res, err := tx.Exec(query, append(args, id)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("generation %d: %w", id, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return db.errf(err, "%s generation %d", what, id)
	}
	return nil
}

// SetFavourite marks or unmarks generation id as a favourite.
func (db *DB) SetFavourite(id int64, fav bool) error {
	return db.updateGeneration(id, "marking the favourite", `UPDATE generations SET favourite = ? WHERE id = ?`, fav)
}

// MarkDeleted records that generation id was deleted and its file moved to trashPath ("" when
// there was no file to move). The row stays, so RestoreDeleted can undo it.
func (db *DB) MarkDeleted(id int64, trashPath string) error {
	return db.updateGeneration(id, "deleting", `UPDATE generations SET deleted_at = ?, trash_path = ? WHERE id = ?`, now(), trashPath)
}

// RestoreDeleted puts generation id back in the gallery (its file is back at OutputPath).
func (db *DB) RestoreDeleted(id int64) error {
	return db.updateGeneration(id, "restoring", `UPDATE generations SET deleted_at = NULL, trash_path = '' WHERE id = ?`)
}

// GalleryModels returns every model the live gallery holds, most used first.
func (db *DB) GalleryModels() ([]string, error) {
	return db.strings("listing the gallery's models", `SELECT model FROM generations WHERE deleted_at IS NULL
		GROUP BY model ORDER BY count(*) DESC, model`)
}

// RecentModels returns up to n models, most recently generated with first.
func (db *DB) RecentModels(n int) ([]string, error) {
	return db.strings("listing recent models", `SELECT model FROM generations GROUP BY model
		ORDER BY max(created_at) DESC, model LIMIT ?`, n)
}

// GalleryLoRAs returns every LoRA path the live gallery's generations used, most used first.
func (db *DB) GalleryLoRAs() ([]string, error) {
	return db.strings("listing the gallery's LoRAs", `SELECT json_extract(j.value, '$.path') AS p
		FROM generations, json_each(generations.loras_json) AS j
		WHERE generations.deleted_at IS NULL AND p IS NOT NULL GROUP BY p ORDER BY count(*) DESC, p`)
}

// strings runs a query of one text column.
func (db *DB) strings(what, query string, args ...any) ([]string, error) {
	rows, err := db.sql.Query(query, args...)
	if err != nil {
		return nil, db.errf(err, "%s", what)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, db.errf(err, "%s", what)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "%s", what)
	}
	return out, nil
}

// AddGenerations records many generations in one transaction (an import, a restored
// backup); a zero CreatedAt is now. It returns the new ids in order.
func (db *DB) AddGenerations(gs []Generation) ([]int64, error) {
	ids := make([]int64, 0, len(gs))
	err := db.writeTx(func(tx *sql.Tx) error {
		st, err := tx.Prepare(`INSERT INTO generations (model, loras_json, prompt, negative, sampler, steps, cfg,
			width, height, seed, device, output_path, duration_ms, cache_key, from_cache, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, g := range gs {
			if g.LorasJSON == "" {
				g.LorasJSON = "[]"
			}
			var neg sql.NullString
			if g.Negative != nil {
				neg = sql.NullString{String: *g.Negative, Valid: true}
			}
			t := now()
			if !g.CreatedAt.IsZero() {
				t = g.CreatedAt.UnixNano()
			}
			res, err := st.Exec(g.Model, g.LorasJSON, g.Prompt, neg, g.Sampler, g.Steps, g.CFG, g.Width, g.Height, g.Seed,
				g.Device, g.OutputPath, g.DurationMS, g.CacheKey, g.FromCache, t)
			if err != nil {
				return fmt.Errorf("generation %s: %w", g.OutputPath, err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, db.errf(err, "recording %d generations", len(gs))
	}
	return ids, nil
}
