package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openTest opens a fresh database in t.TempDir and closes it when the test ends.
func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "studio.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// rawOpen opens path with plain go-sqlite3, bypassing this package (no migrations).
func rawOpen(t *testing.T, path string) *sql.DB {
	t.Helper()
	r, err := sql.Open("sqlite3", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOpenCreatesDirectoryAndMigrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "studio.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	v, err := db.Version()
	if err != nil {
		t.Fatal(err)
	}
	if v != SchemaVersion || SchemaVersion != len(migrations) {
		t.Errorf("version %d, SchemaVersion %d, %d migrations", v, SchemaVersion, len(migrations))
	}
	var app int64
	var mode string
	if err := db.sql.QueryRow("PRAGMA application_id").Scan(&app); err != nil {
		t.Fatal(err)
	}
	if err := db.sql.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if app != ApplicationID || mode != "wal" {
		t.Errorf("application_id %#x journal_mode %q, want %#x wal", app, mode, ApplicationID)
	}
	if _, err := os.Stat(path); err != nil {
		t.Error(err)
	}
}

func TestRelativePathAndSpecialCharacters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "we?ird #name 100%.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnsureDataset("/data/x", "sidecar-txt"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "we?ird #name 100%.db" {
		t.Errorf("files in dir = %q, want exactly the database", names)
	}
}

// TestEveryConnectionHasPragmas holds several pooled connections at once (so they are
// distinct) and checks foreign keys, WAL, busy timeout and synchronous on each, and that a
// dangling foreign key is refused on each.
func TestEveryConnectionHasPragmas(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	var conns []*sql.Conn
	for i := 0; i < 6; i++ {
		c, err := db.sql.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		var fk, busy, syncMode int
		var mode string
		for _, q := range []struct {
			sql string
			dst any
		}{{"PRAGMA foreign_keys", &fk}, {"PRAGMA busy_timeout", &busy}, {"PRAGMA synchronous", &syncMode}, {"PRAGMA journal_mode", &mode}} {
			if err := c.QueryRowContext(ctx, q.sql).Scan(q.dst); err != nil {
				t.Fatalf("conn %d %s: %v", i, q.sql, err)
			}
		}
		if fk != 1 || busy != busyTimeoutMS || syncMode != 2 || mode != "wal" {
			t.Errorf("conn %d: foreign_keys=%d busy_timeout=%d synchronous=%d journal_mode=%s", i, fk, busy, syncMode, mode)
		}
		_, err := c.ExecContext(ctx, `INSERT INTO images (dataset_id, rel, created_at) VALUES (?, ?, 0)`, 4242+i, "x.png")
		if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Errorf("conn %d: insert with a dangling dataset_id: err = %v, want a FOREIGN KEY error", i, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// seeds[v] inserts rows into a database at schema version v+1 (using only the tables that
// version has); checks[v] verifies, through the public API of the current build, that those
// rows survived the migration to SchemaVersion; from is the version the database was opened at.
var seeds = []func(r *sql.DB) error{
	func(r *sql.DB) error {
		_, err := r.Exec(`
INSERT INTO datasets (id, root, layout, created_at) VALUES (7, '/data/cats', 'sidecar-txt', 1000);
INSERT INTO images (id, dataset_id, rel, hash, width, height, created_at) VALUES (70, 7, 'a.png', 'h1', 64, 32, 1000);
INSERT INTO caption_revisions (id, image_id, text, origin, created_at, parent_id, state_id) VALUES (700, 70, 'a cat', 'import', 1000, NULL, 700);
INSERT INTO caption_revisions (id, image_id, text, origin, created_at, parent_id, state_id) VALUES (701, 70, 'a cat, sitting', 'manual', 2000, 700, 701);
INSERT INTO settings (key, value, updated_at) VALUES ('last_dataset_id', '7', 1000);`)
		return err
	},
	func(r *sql.DB) error {
		_, err := r.Exec(`
INSERT INTO runs (id, dataset_id, base_model, config_json, status, created_at) VALUES (5, 7, 'sdxl-base', '{"rank":8}', 'running', 3000);
INSERT INTO run_metrics (run_id, step, loss, lr, time) VALUES (5, 1, 0.5, 0.0001, 3100), (5, 2, 0.25, 0.0001, 3200);`)
		return err
	},
	func(r *sql.DB) error {
		_, err := r.Exec(`
INSERT INTO generation_cache (key, output_path, created_at, last_used, hits) VALUES ('k1', '/out/1.png', 4000, 4000, 3);
INSERT INTO generations (id, model, prompt, negative, sampler, steps, cfg, width, height, seed, output_path, cache_key, created_at)
	VALUES (9, 'base', 'a cat', NULL, 'euler', 5, 1, 64, 64, 3, '/out/1.png', 'k1', 4000);`)
		return err
	},
	func(r *sql.DB) error {
		_, err := r.Exec(`
INSERT INTO file_hashes (path, algo, size, mtime, hash, hashed_at) VALUES ('/m/unet.safetensors', 'sha256', 10, 5000, 'ab12', 5000);
INSERT INTO generations (id, model, prompt, negative, sampler, steps, cfg, width, height, seed, output_path, cache_key, from_cache, created_at)
	VALUES (10, 'base', 'a cat', '', 'euler', 5, 1, 64, 64, 3, '/out/2.png', 'k1', 1, 5000);`)
		return err
	},
	func(r *sql.DB) error {
		_, err := r.Exec(`
INSERT INTO runs (id, dataset_id, name, dataset_path, base_model, model_name, model_hash, run_dir, config_json, status,
	steps_done, steps_total, output_path, created_at, started_at, finished_at)
	VALUES (6, 7, 'cats', '/data/cats', '/m/base', 'base', 'cafe', '/d/runs/6-cats', '{}', 'done', 4, 4, '/out/cats.safetensors', 6000, 6000, 6100);
INSERT INTO run_metrics (run_id, step, loss, lr, seconds, time) VALUES (6, 4, 0.125, 0.0001, 1.5, 6050);
INSERT INTO run_files (id, run_id, kind, path, step, created_at) VALUES (60, 6, 'output', '/out/cats.safetensors', 4, 6100);`)
		return err
	},
	func(r *sql.DB) error {
		_, err := r.Exec(`
INSERT INTO generations (id, model, prompt, sampler, steps, cfg, width, height, seed, output_path, favourite, deleted_at, trash_path, created_at)
	VALUES (11, 'base', 'a gallery cat', 'euler', 5, 1, 64, 64, 3, '/out/3.png', 1, 7000, '/d/trash/11-3.png', 7000);`)
		return err
	},
	func(r *sql.DB) error {
		_, err := r.Exec(`
INSERT INTO caption_batches (id, dataset_id, description, created_at) VALUES (80, 7, 'append "pass"', 8000);
INSERT INTO caption_intents (id, dataset_id, batch_id, kind, description, created_at) VALUES (81, 7, 80, 'bulk', 'append "pass"', 8000);
INSERT INTO caption_intent_files (intent_id, image_id, rel, old_text, new_text, old_state, state)
	VALUES (81, 70, 'a.png', 'a cat, sitting', 'a cat, sitting, pass', 701, 'pending');`)
		return err
	},
}

var checks = []func(t *testing.T, db *DB, from int){
	func(t *testing.T, db *DB, from int) {
		im, err := db.ImageByRel(7, "a.png")
		if err != nil {
			t.Fatal(err)
		}
		if im.ID != 70 || im.Hash != "h1" || im.Width != 64 || im.Height != 32 {
			t.Errorf("image = %+v", im)
		}
		revs, err := db.Revisions(70)
		if err != nil {
			t.Fatal(err)
		}
		if len(revs) != 2 || revs[1].Text != "a cat, sitting" || revs[0].Origin != OriginImport {
			t.Errorf("revisions = %+v", revs)
		}
		// The undo model works on migrated rows.
		rev, err := db.Undo(70, func(string) error { return nil })
		if err != nil || rev.Text != "a cat" {
			t.Errorf("Undo on migrated image = %+v, %v", rev, err)
		}
		if id, ok, err := db.LastDataset(); err != nil || !ok || id != 7 {
			t.Errorf("LastDataset = %d %v %v", id, ok, err)
		}
	},
	func(t *testing.T, db *DB, from int) {
		ms, err := db.Metrics(5)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 2 || ms[1].Loss != 0.25 {
			t.Errorf("metrics = %+v", ms)
		}
		r, err := db.Run(5)
		if err != nil || r.Status != RunRunning || r.ConfigJSON != `{"rank":8}` {
			t.Errorf("run = %+v, %v", r, err)
		}
		// Runs from before version 5 take their steps done from their metrics.
		if from < 5 {
			r, err := db.Run(5)
			if err != nil || r.StepsDone != 2 || r.StepsTotal != 0 || r.Name != "" {
				t.Errorf("run 5 after the version 5 migration = %+v, %v", r, err)
			}
			ms, err := db.Metrics(5)
			if err != nil || len(ms) != 2 || ms[0].Seconds != 0 {
				t.Errorf("metrics of run 5 = %+v, %v", ms, err)
			}
		}
	},
	func(t *testing.T, db *DB, from int) {
		e, ok, err := db.CacheGet("k1")
		if err != nil || !ok || e.OutputPath != "/out/1.png" || e.Hits != 4 {
			t.Errorf("CacheGet = %+v %v %v", e, ok, err)
		}
		// Generations from before version 4 were all generated, not copied from the cache.
		g, err := db.Generation(9)
		if err != nil || g.FromCache || g.Negative != nil || g.CacheKey != "k1" {
			t.Errorf("generation 9 = %+v, %v", g, err)
		}
	},
	func(t *testing.T, db *DB, from int) {
		h, ok, err := db.FileHash("/m/unet.safetensors", "sha256", 10, time.Unix(0, 5000))
		if err != nil || !ok || h != "ab12" {
			t.Errorf("FileHash = %q %v %v", h, ok, err)
		}
		g, err := db.Generation(10)
		if err != nil || !g.FromCache || g.Negative == nil || *g.Negative != "" {
			t.Errorf("generation 10 = %+v, %v", g, err)
		}
	},
	func(t *testing.T, db *DB, from int) {
		sums, err := db.RunSummaries(0)
		if err != nil {
			t.Fatal(err)
		}
		var s *RunSummary
		for i := range sums {
			if sums[i].ID == 6 {
				s = &sums[i]
			}
		}
		if s == nil || s.Name != "cats" || s.DatasetPath != "/data/cats" || s.ModelName != "base" || s.ModelHash != "cafe" ||
			s.RunDir != "/d/runs/6-cats" || s.Status != RunDone || s.StepsDone != 4 || s.StepsTotal != 4 ||
			s.LastLoss == nil || *s.LastLoss != 0.125 || len(s.Outputs) != 1 || s.Outputs[0].Path != "/out/cats.safetensors" {
			t.Errorf("run 6 summary = %+v", s)
		}
		ms, err := db.Metrics(6)
		if err != nil || len(ms) != 1 || ms[0].Seconds != 1.5 {
			t.Errorf("metrics of run 6 = %+v, %v", ms, err)
		}
	},
	func(t *testing.T, db *DB, from int) {
		it, err := db.GalleryItem(11)
		if err != nil || !it.Favourite || it.DeletedAt.IsZero() || it.TrashPath != "/d/trash/11-3.png" {
			t.Errorf("generation 11 = %+v, %v", it, err)
		}
		// A generation from before version 6 is live and not a favourite.
		if it, err := db.GalleryItem(10); err != nil || it.Favourite || !it.DeletedAt.IsZero() {
			t.Errorf("generation 10 = %+v, %v", it, err)
		}
	},
	func(t *testing.T, db *DB, from int) {
		in, ok, err := db.UnfinishedIntent(7)
		if err != nil || !ok || in.ID != 81 || in.BatchID != 80 || in.Kind != IntentBulk || len(in.Files) != 1 ||
			in.Files[0].New != "a cat, sitting, pass" || in.Files[0].State != FilePending || in.Files[0].OldState != 701 {
			t.Errorf("unfinished intent of dataset 7 = %+v %v %v", in, ok, err)
		}
	},
}

// TestMigrateFromEveryVersion builds a database at every earlier schema version (a missing
// file, an empty file, then the first k migrations with rows in them, up to the current version), opens it with Open and
// checks the version is current, the old rows survived and every table is usable.
func TestMigrateFromEveryVersion(t *testing.T) {
	if len(seeds) != SchemaVersion || len(checks) != SchemaVersion {
		t.Fatalf("add a seed and a check for each migration: %d seeds, %d checks, %d migrations", len(seeds), len(checks), SchemaVersion)
	}
	for k := -1; k <= SchemaVersion; k++ {
		name := fmt.Sprintf("from-v%d", k)
		if k < 0 {
			name = "from-missing-file"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "studio.db")
			if k == 0 {
				if err := os.WriteFile(path, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if k > 0 {
				old, err := openTo(path, k)
				if err != nil {
					t.Fatal(err)
				}
				if v, _ := old.Version(); v != k {
					t.Fatalf("built version %d, want %d", v, k)
				}
				for i := 0; i < k; i++ {
					if err := seeds[i](old.sql); err != nil {
						t.Fatalf("seeding version %d: %v", i+1, err)
					}
				}
				// The next migration's tables must not exist yet.
				var n int
				if err := old.sql.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					t.Fatal("no tables at version", k)
				}
				if err := old.Close(); err != nil {
					t.Fatal(err)
				}
			}
			db, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if v, err := db.Version(); err != nil || v != SchemaVersion {
				t.Fatalf("version after Open = %d, %v; want %d", v, err, SchemaVersion)
			}
			for i := 0; i < k; i++ {
				checks[i](t, db, k)
			}
			exerciseAllTables(t, db)
		})
	}
}

// exerciseAllTables writes and reads one row of every kind through the public API.
func exerciseAllTables(t *testing.T, db *DB) {
	t.Helper()
	ds, err := db.EnsureDataset("/data/exercise", "sidecar-txt")
	if err != nil {
		t.Fatal(err)
	}
	im, err := db.EnsureImage(ds.ID, "x.png", "h", 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.BeginBatch(ds.ID, "exercise")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveCaption(im.ID, "x", OriginBulk, b.ID, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	run, err := db.CreateRun(NewRun{DatasetID: ds.ID, BaseModel: "base", ConfigJSON: `{}`, OutputPath: "/out/x.safetensors", StepsTotal: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddMetric(Metric{RunID: run.ID, Step: 1, Loss: 1, LR: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddSample(Sample{RunID: run.ID, Step: 1, Prompt: "p", Seed: 1, ImagePath: "/s.png"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddRunFile(RunFile{RunID: run.ID, Kind: FileOutput, Path: "/out/x.safetensors", Step: 1}); err != nil {
		t.Fatal(err)
	}
	if sums, err := db.RunSummaries(1); err != nil || len(sums) != 1 || sums[0].ID != run.ID || len(sums[0].Outputs) != 1 || sums[0].StepsDone != 1 {
		t.Fatalf("RunSummaries = %+v, %v", sums, err)
	}
	if _, err := db.AddGeneration(Generation{Model: "m", Prompt: "p", Sampler: "euler", Steps: 1, CFG: 1, Width: 8, Height: 8, OutputPath: "/g.png"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CachePut("exercise", "/g.png"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSetting("exercise", "1"); err != nil {
		t.Fatal(err)
	}
}

// TestNewerSchemaRefused checks that a database from a newer build is refused with
// ErrNewerSchema, a message naming the file and both versions, and that the file is left
// byte-identical with no -wal or -shm files created beside it. The rollback-journal variant
// matters: merely connecting with journal_mode=WAL would rewrite such a file's header.
func TestNewerSchemaRefused(t *testing.T) {
	for _, journal := range []string{"wal", "delete"} {
		t.Run(journal, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "studio.db")
			db, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.EnsureDataset("/data/keep", "sidecar-txt"); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			newer := SchemaVersion + 4
			r, err := sql.Open("sqlite3", path) // plain DSN: keeps the file's journal mode
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Exec(fmt.Sprintf("PRAGMA journal_mode = %s; PRAGMA user_version = %d", journal, newer)); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			for _, suffix := range []string{"-wal", "-shm", "-journal"} {
				if _, err := os.Stat(path + suffix); err == nil {
					t.Fatalf("%s exists after a clean close", suffix)
				}
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(path)
			_, err = Open(path)
			if !errors.Is(err, ErrNewerSchema) {
				t.Fatalf("Open of a newer database: err = %v, want ErrNewerSchema", err)
			}
			msg := err.Error()
			for _, want := range []string{path, fmt.Sprint(newer), fmt.Sprint(SchemaVersion)} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("the refused database file changed")
			}
			st2, _ := os.Stat(path)
			if !st2.ModTime().Equal(st.ModTime()) {
				t.Error("the refused database file's modification time changed")
			}
			for _, suffix := range []string{"-wal", "-shm", "-journal"} {
				if _, err := os.Stat(path + suffix); err == nil {
					t.Errorf("refused Open left %s%s", path, suffix)
				}
			}
		})
	}
}

// TestNewerSchemaRefusedThroughWAL covers a newer database whose version change still sits
// in the WAL (another process has it open): the check must read through the WAL, and the main
// file must not change.
func TestNewerSchemaRefusedThroughWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "studio.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	r := rawOpen(t, path)
	defer r.Close()
	r.SetMaxOpenConns(1)
	if _, err := r.Exec("PRAGMA wal_autocheckpoint = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path + "-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("expected a non-empty WAL: %v", err)
	}
	before, _ := os.ReadFile(path)
	_, err = Open(path)
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("err = %v, want ErrNewerSchema", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("the main database file changed")
	}
}

func TestForeignFilesRefused(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not sqlite\n", 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(notDB); err == nil || !strings.Contains(err.Error(), notDB) || !strings.Contains(err.Error(), "not a SQLite database") {
		t.Errorf("Open of a text file: %v", err)
	}
	other := filepath.Join(dir, "other.db")
	r := rawOpen(t, other)
	if _, err := r.Exec("PRAGMA application_id = 1234; CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := Open(other); err == nil || !strings.Contains(err.Error(), "another application") {
		t.Errorf("Open of another application's database: %v", err)
	}
}
