package storage

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Generation is one generated image with every parameter that made it.
type Generation struct {
	ID         int64
	Model      string // the base model (path or name)
	LorasJSON  string // the LoRAs and their weights, as JSON; "" is stored as "[]"
	Prompt     string
	Negative   *string // the negative prompt; nil = none (NULL), distinct from an empty one
	Sampler    string
	Steps      int
	CFG        float64
	Width      int
	Height     int
	Seed       int64
	Device     string // the backend/device that ran it, e.g. "gl:NVIDIA H100" or "cpu"
	OutputPath string
	DurationMS int64
	CacheKey   string // the generation cache key of this request; "" = not cacheable
	FromCache  bool   // the image was copied from the generation cache, not generated
	CreatedAt  time.Time
}

// CacheEntry is a generation cache record: a request's key and the image it produced.
type CacheEntry struct {
	Key        string
	OutputPath string
	CreatedAt  time.Time
	LastUsed   time.Time
	Hits       int64 // how many times CacheGet found it
}

const genCols = `id, model, loras_json, prompt, negative, sampler, steps, cfg, width, height, seed, device, output_path, duration_ms, cache_key, from_cache, created_at`

func scanGeneration(s rowScanner) (Generation, error) {
	var g Generation
	var neg sql.NullString
	var created int64
	if err := s.Scan(&g.ID, &g.Model, &g.LorasJSON, &g.Prompt, &neg, &g.Sampler, &g.Steps, &g.CFG, &g.Width, &g.Height,
		&g.Seed, &g.Device, &g.OutputPath, &g.DurationMS, &g.CacheKey, &g.FromCache, &created); err != nil {
		return Generation{}, err
	}
	if neg.Valid {
		g.Negative = &neg.String
	}
	g.CreatedAt = fromNanos(created)
	return g, nil
}

// AddGeneration records a generated image and returns it with its ID and CreatedAt.
func (db *DB) AddGeneration(g Generation) (Generation, error) {
	if g.LorasJSON == "" {
		g.LorasJSON = "[]"
	}
	if !json.Valid([]byte(g.LorasJSON)) {
		return Generation{}, fmt.Errorf("storage: %s: the LoRA list of generation %q is not valid JSON", db.path, g.OutputPath)
	}
	var neg sql.NullString
	if g.Negative != nil {
		neg = sql.NullString{String: *g.Negative, Valid: true}
	}
	var out Generation
	err := db.writeTx(func(tx *sql.Tx) error {
		var err error
		out, err = scanGeneration(tx.QueryRow(`INSERT INTO generations (model, loras_json, prompt, negative, sampler, steps, cfg,
			width, height, seed, device, output_path, duration_ms, cache_key, from_cache, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+genCols,
			g.Model, g.LorasJSON, g.Prompt, neg, g.Sampler, g.Steps, g.CFG, g.Width, g.Height, g.Seed, g.Device,
			g.OutputPath, g.DurationMS, g.CacheKey, g.FromCache, now()))
		return err
	})
	if err != nil {
		return Generation{}, db.errf(err, "recording generation %s", g.OutputPath)
	}
	return out, nil
}

// Generations returns up to limit generations (all when limit <= 0), newest first.
func (db *DB) Generations(limit int) ([]Generation, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.sql.Query(`SELECT `+genCols+` FROM generations ORDER BY created_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, db.errf(err, "listing generations")
	}
	defer rows.Close()
	var out []Generation
	for rows.Next() {
		g, err := scanGeneration(rows)
		if err != nil {
			return nil, db.errf(err, "listing generations")
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "listing generations")
	}
	return out, nil
}

// Generation returns the generation with the given id, or an error wrapping ErrNotFound.
func (db *DB) Generation(id int64) (Generation, error) {
	g, err := scanGeneration(db.sql.QueryRow(`SELECT `+genCols+` FROM generations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Generation{}, fmt.Errorf("storage: %s: generation %d: %w", db.path, id, ErrNotFound)
	}
	if err != nil {
		return Generation{}, db.errf(err, "reading generation %d", id)
	}
	return g, nil
}

// CacheGet looks key up in the generation cache. A hit is counted: its hit count goes up by
// one and LastUsed becomes now (the returned entry shows both). The caller should check that
// OutputPath still exists and CacheDelete the key if it does not.
func (db *DB) CacheGet(key string) (CacheEntry, bool, error) {
	var e CacheEntry
	found := false
	err := db.writeTx(func(tx *sql.Tx) error {
		var created, used int64
		err := tx.QueryRow(`UPDATE generation_cache SET hits = hits + 1, last_used = ? WHERE key = ?
			RETURNING key, output_path, created_at, last_used, hits`, now(), key).
			Scan(&e.Key, &e.OutputPath, &created, &used, &e.Hits)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		e.CreatedAt, e.LastUsed = fromNanos(created), fromNanos(used)
		found = true
		return nil
	})
	if err != nil {
		return CacheEntry{}, false, db.errf(err, "looking up cache key %q", key)
	}
	return e, found, nil
}

// CachePut records that the request with this key produced the image at path, replacing any
// earlier entry for the key (its hit count starts again at zero).
func (db *DB) CachePut(key, path string) error {
	if key == "" {
		return fmt.Errorf("storage: %s: empty generation cache key for %s", db.path, path)
	}
	t := now()
	err := db.writeTx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO generation_cache (key, output_path, created_at, last_used, hits) VALUES (?, ?, ?, ?, 0)
			ON CONFLICT (key) DO UPDATE SET output_path = excluded.output_path, created_at = excluded.created_at,
			last_used = excluded.last_used, hits = 0`, key, path, t, t)
		return err
	})
	if err != nil {
		return db.errf(err, "storing cache key %q", key)
	}
	return nil
}

// CacheDelete removes key from the generation cache (for example when its file is gone);
// a missing key is not an error.
func (db *DB) CacheDelete(key string) error {
	err := db.writeTx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM generation_cache WHERE key = ?`, key)
		return err
	})
	if err != nil {
		return db.errf(err, "deleting cache key %q", key)
	}
	return nil
}

// CacheEntries returns the whole generation cache, least recently used first (the order in
// which to evict).
func (db *DB) CacheEntries() ([]CacheEntry, error) {
	rows, err := db.sql.Query(`SELECT key, output_path, created_at, last_used, hits FROM generation_cache ORDER BY last_used, key`)
	if err != nil {
		return nil, db.errf(err, "listing the generation cache")
	}
	defer rows.Close()
	var out []CacheEntry
	for rows.Next() {
		var e CacheEntry
		var created, used int64
		if err := rows.Scan(&e.Key, &e.OutputPath, &created, &used, &e.Hits); err != nil {
			return nil, db.errf(err, "listing the generation cache")
		}
		e.CreatedAt, e.LastUsed = fromNanos(created), fromNanos(used)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "listing the generation cache")
	}
	return out, nil
}
