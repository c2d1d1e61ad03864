package storage

import (
	"database/sql"
	"fmt"
)

// SchemaVersion is the schema version this build writes: the number of migrations.
const SchemaVersion = 7

// migration is one step of the schema. Migration i (0-based) takes user_version i to i+1.
// Once released a migration is never edited: a change to the schema is a new entry at the end.
type migration struct {
	name string
	sql  string
}

// migrations is the ordered schema history; README.md documents the resulting tables.
var migrations = []migration{
	{name: "captions: datasets, images, caption revisions, bulk batches, settings", sql: `
PRAGMA application_id = 1282363969; -- ApplicationID, "LoRA"

CREATE TABLE datasets (
	id         INTEGER PRIMARY KEY,
	root       TEXT    NOT NULL UNIQUE,
	layout     TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
);

CREATE TABLE images (
	id         INTEGER PRIMARY KEY,
	dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
	rel        TEXT    NOT NULL,
	hash       TEXT    NOT NULL DEFAULT '',
	width      INTEGER NOT NULL DEFAULT 0,
	height     INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	UNIQUE (dataset_id, rel)
);

CREATE TABLE caption_batches (
	id          INTEGER PRIMARY KEY,
	dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
	description TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	undone_at   INTEGER
);
CREATE INDEX caption_batches_dataset ON caption_batches (dataset_id, id);

CREATE TABLE caption_revisions (
	id         INTEGER PRIMARY KEY,
	image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	text       TEXT    NOT NULL,
	origin     TEXT    NOT NULL CHECK (origin IN ('manual', 'bulk', 'undo', 'redo', 'restore', 'import', 'external')),
	created_at INTEGER NOT NULL,
	batch_id   INTEGER REFERENCES caption_batches(id) ON DELETE SET NULL,
	parent_id  INTEGER REFERENCES caption_revisions(id),
	state_id   INTEGER REFERENCES caption_revisions(id),
	source_id  INTEGER REFERENCES caption_revisions(id)
);
CREATE INDEX caption_revisions_image ON caption_revisions (image_id, id);
CREATE INDEX caption_revisions_batch ON caption_revisions (batch_id, image_id) WHERE batch_id IS NOT NULL;

CREATE TABLE settings (
	key        TEXT    PRIMARY KEY,
	value      TEXT    NOT NULL,
	updated_at INTEGER NOT NULL
);
`},
	{name: "training: runs, metrics, samples", sql: `
CREATE TABLE runs (
	id              INTEGER PRIMARY KEY,
	dataset_id      INTEGER NOT NULL REFERENCES datasets(id),
	base_model      TEXT    NOT NULL,
	config_json     TEXT    NOT NULL CHECK (json_valid(config_json)),
	status          TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'stopped', 'failed', 'done')),
	output_path     TEXT    NOT NULL DEFAULT '',
	checkpoint_path TEXT    NOT NULL DEFAULT '',
	checkpoint_step INTEGER NOT NULL DEFAULT 0,
	error           TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	started_at      INTEGER,
	finished_at     INTEGER
);
CREATE INDEX runs_dataset ON runs (dataset_id, id);

CREATE TABLE run_metrics (
	run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	step   INTEGER NOT NULL,
	loss   REAL    NOT NULL,
	lr     REAL    NOT NULL,
	time   INTEGER NOT NULL,
	PRIMARY KEY (run_id, step)
) WITHOUT ROWID;

CREATE TABLE run_samples (
	id         INTEGER PRIMARY KEY,
	run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	step       INTEGER NOT NULL,
	prompt     TEXT    NOT NULL,
	seed       INTEGER NOT NULL,
	image_path TEXT    NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX run_samples_run ON run_samples (run_id, step);
`},
	{name: "generation: generations, generation cache", sql: `
CREATE TABLE generations (
	id          INTEGER PRIMARY KEY,
	model       TEXT    NOT NULL,
	loras_json  TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(loras_json)),
	prompt      TEXT    NOT NULL,
	negative    TEXT,
	sampler     TEXT    NOT NULL,
	steps       INTEGER NOT NULL,
	cfg         REAL    NOT NULL,
	width       INTEGER NOT NULL,
	height      INTEGER NOT NULL,
	seed        INTEGER NOT NULL,
	device      TEXT    NOT NULL DEFAULT '',
	output_path TEXT    NOT NULL,
	duration_ms INTEGER NOT NULL DEFAULT 0,
	cache_key   TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
);
CREATE INDEX generations_created ON generations (created_at, id);
CREATE INDEX generations_cache_key ON generations (cache_key) WHERE cache_key <> '';

CREATE TABLE generation_cache (
	key         TEXT    PRIMARY KEY,
	output_path TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	last_used   INTEGER NOT NULL,
	hits        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX generation_cache_last_used ON generation_cache (last_used);
`},
	{name: "generation: file hash cache, generations from the cache", sql: `
CREATE TABLE file_hashes (
	path      TEXT    NOT NULL,
	algo      TEXT    NOT NULL,
	size      INTEGER NOT NULL,
	mtime     INTEGER NOT NULL,
	hash      TEXT    NOT NULL,
	hashed_at INTEGER NOT NULL,
	PRIMARY KEY (path, algo)
) WITHOUT ROWID;

ALTER TABLE generations ADD COLUMN from_cache INTEGER NOT NULL DEFAULT 0 CHECK (from_cache IN (0, 1));
`},
	{name: "training: run names, dataset, model and progress; seconds per step; run files", sql: `
ALTER TABLE runs ADD COLUMN name         TEXT    NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN dataset_path TEXT    NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN model_name   TEXT    NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN model_hash   TEXT    NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN run_dir      TEXT    NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN steps_done   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN steps_total  INTEGER NOT NULL DEFAULT 0;
-- Runs from before version 5 recorded no progress column: their last metric is the best guess.
UPDATE runs SET steps_done = coalesce((SELECT max(step) FROM run_metrics WHERE run_id = runs.id), 0);

ALTER TABLE run_metrics ADD COLUMN seconds REAL NOT NULL DEFAULT 0;

CREATE TABLE run_files (
	id         INTEGER PRIMARY KEY,
	run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	kind       TEXT    NOT NULL CHECK (kind IN ('checkpoint', 'state', 'output')),
	path       TEXT    NOT NULL,
	step       INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (run_id, kind, path)
);
CREATE INDEX run_files_run ON run_files (run_id, step);
`},
	{name: "gallery: favourites, soft delete to the trash", sql: galleryMigration},
	{name: "captions: intents of multi-file caption writes (bulk edits and their undo)", sql: bulkIntentMigration},
}

// migrate brings the database up to version target (≤ len(migrations)), applying each
// missing migration in its own write transaction. The version is re-read inside each
// transaction, so two processes opening the same file at once cannot apply a step twice,
// and a database that became newer than this build meanwhile is refused.
func (db *DB) migrate(target int) error {
	// The common case, an up-to-date database, needs no write lock.
	var v int
	if err := db.sql.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return db.errf(err, "reading the schema version")
	}
	if v > SchemaVersion {
		return newerError(db.path, v)
	}
	if v == target {
		return nil
	}
	for {
		done, newer := false, 0
		err := db.writeTx(func(tx *sql.Tx) error {
			var v int
			if err := tx.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
				return fmt.Errorf("reading the schema version: %w", err)
			}
			if v > SchemaVersion {
				newer = v
				return ErrNewerSchema
			}
			if v < 0 {
				return fmt.Errorf("invalid schema version %d", v)
			}
			if v >= target {
				done = true
				return nil
			}
			m := migrations[v]
			if _, err := tx.Exec(m.sql); err != nil {
				return fmt.Errorf("migrating schema version %d to %d (%s): %w", v, v+1, m.name, err)
			}
			// PRAGMA takes no placeholders; the value is an integer computed here.
			if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
				return fmt.Errorf("recording schema version %d: %w", v+1, err)
			}
			return nil
		})
		if newer != 0 {
			return newerError(db.path, newer)
		}
		if err != nil {
			return db.errf(err, "migrating the schema")
		}
		if done {
			return nil
		}
	}
}
