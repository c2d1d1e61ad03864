package storage

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// RunStatus is the lifecycle state of a training run.
type RunStatus string

// The statuses of a training run.
const (
	RunQueued  RunStatus = "queued"  // created, not started
	RunRunning RunStatus = "running" // training
	RunStopped RunStatus = "stopped" // stopped by the user (or the app closed); resumable from its checkpoint
	RunFailed  RunStatus = "failed"  // ended with an error (Run.Error)
	RunDone    RunStatus = "done"    // finished; OutputPath holds the LoRA
)

// Finished reports whether s is a terminal status (failed or done).
func (s RunStatus) Finished() bool { return s == RunFailed || s == RunDone }

// Run is one LoRA training run.
type Run struct {
	ID, DatasetID  int64
	BaseModel      string // the base model the LoRA is trained on (a path or name)
	ConfigJSON     string // the full training configuration, as JSON
	Status         RunStatus
	OutputPath     string // where the finished LoRA file goes
	CheckpointPath string // the latest checkpoint written ("" = none yet)
	CheckpointStep int    // the step of that checkpoint
	Error          string // why the run failed; "" otherwise
	CreatedAt      time.Time
	StartedAt      time.Time // zero until it first runs
	FinishedAt     time.Time // zero until it is done or failed
}

// Metric is one training step's numbers.
type Metric struct {
	RunID int64
	Step  int
	Loss  float64
	LR    float64
	Time  time.Time // when the step finished; zero in AddMetric means now
}

// Sample is a preview image generated during training.
type Sample struct {
	ID, RunID int64
	Step      int
	Prompt    string
	Seed      int64
	ImagePath string
	CreatedAt time.Time
}

const runCols = `id, dataset_id, base_model, config_json, status, output_path, checkpoint_path, checkpoint_step, error, created_at, started_at, finished_at`

func scanRun(s rowScanner) (Run, error) {
	var r Run
	var status string
	var created int64
	var started, finished sql.NullInt64
	if err := s.Scan(&r.ID, &r.DatasetID, &r.BaseModel, &r.ConfigJSON, &status, &r.OutputPath, &r.CheckpointPath,
		&r.CheckpointStep, &r.Error, &created, &started, &finished); err != nil {
		return Run{}, err
	}
	r.Status = RunStatus(status)
	r.CreatedAt = fromNanos(created)
	r.StartedAt = fromNullNanos(started)
	r.FinishedAt = fromNullNanos(finished)
	return r, nil
}

// CreateRun records a new queued training run of the dataset; configJSON must be valid JSON.
func (db *DB) CreateRun(datasetID int64, baseModel, configJSON, outputPath string) (Run, error) {
	if !json.Valid([]byte(configJSON)) {
		return Run{}, fmt.Errorf("storage: %s: the configuration of a new run is not valid JSON", db.path)
	}
	var r Run
	err := db.writeTx(func(tx *sql.Tx) error {
		var err error
		r, err = scanRun(tx.QueryRow(`INSERT INTO runs (dataset_id, base_model, config_json, status, output_path, created_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING `+runCols, datasetID, baseModel, configJSON, string(RunQueued), outputPath, now()))
		return err
	})
	if err != nil {
		return Run{}, db.errf(err, "creating a run of dataset %d", datasetID)
	}
	return r, nil
}

// Run returns the run with the given id, or an error wrapping ErrNotFound.
func (db *DB) Run(id int64) (Run, error) {
	r, err := scanRun(db.sql.QueryRow(`SELECT `+runCols+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("storage: %s: run %d: %w", db.path, id, ErrNotFound)
	}
	if err != nil {
		return Run{}, db.errf(err, "reading run %d", id)
	}
	return r, nil
}

// Runs returns up to limit runs (all when limit <= 0), newest first.
func (db *DB) Runs(limit int) ([]Run, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.sql.Query(`SELECT `+runCols+` FROM runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, db.errf(err, "listing runs")
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, db.errf(err, "listing runs")
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "listing runs")
	}
	return out, nil
}

// UpdateRunStatus sets a run's status and error message. Moving to running sets StartedAt
// the first time; moving to done or failed sets FinishedAt.
func (db *DB) UpdateRunStatus(id int64, status RunStatus, errMsg string) error {
	switch status {
	case RunQueued, RunRunning, RunStopped, RunFailed, RunDone:
	default:
		return fmt.Errorf("storage: %s: run %d: unknown status %q", db.path, id, status)
	}
	t := now()
	err := db.writeTx(func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE runs SET status = ?, error = ?,
			started_at = CASE WHEN ? = 'running' AND started_at IS NULL THEN ? ELSE started_at END,
			finished_at = CASE WHEN ? IN ('done', 'failed') THEN ? ELSE NULL END
			WHERE id = ?`, string(status), errMsg, string(status), t, string(status), t, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("run %d: %w", id, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return db.errf(err, "setting run %d to %s", id, status)
	}
	return nil
}

// SetRunCheckpoint records the latest checkpoint of a run, from which it can resume.
func (db *DB) SetRunCheckpoint(id int64, path string, step int) error {
	err := db.writeTx(func(tx *sql.Tx) error {
		res, err := tx.Exec(`UPDATE runs SET checkpoint_path = ?, checkpoint_step = ? WHERE id = ?`, path, step, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("run %d: %w", id, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return db.errf(err, "recording the checkpoint of run %d", id)
	}
	return nil
}

// AddMetric records one step's metrics. A step recorded again (a run resumed from an earlier
// checkpoint repeats steps) replaces the earlier numbers.
func (db *DB) AddMetric(m Metric) error {
	t := now()
	if !m.Time.IsZero() {
		t = m.Time.UnixNano()
	}
	err := db.writeTx(func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO run_metrics (run_id, step, loss, lr, time) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (run_id, step) DO UPDATE SET loss = excluded.loss, lr = excluded.lr, time = excluded.time`,
			m.RunID, m.Step, m.Loss, m.LR, t)
		return err
	})
	if err != nil {
		return db.errf(err, "recording metrics of run %d step %d", m.RunID, m.Step)
	}
	return nil
}

// Metrics returns every recorded step of the run, in step order.
func (db *DB) Metrics(runID int64) ([]Metric, error) {
	rows, err := db.sql.Query(`SELECT run_id, step, loss, lr, time FROM run_metrics WHERE run_id = ? ORDER BY step`, runID)
	if err != nil {
		return nil, db.errf(err, "reading metrics of run %d", runID)
	}
	defer rows.Close()
	var out []Metric
	for rows.Next() {
		var m Metric
		var t int64
		if err := rows.Scan(&m.RunID, &m.Step, &m.Loss, &m.LR, &t); err != nil {
			return nil, db.errf(err, "reading metrics of run %d", runID)
		}
		m.Time = fromNanos(t)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "reading metrics of run %d", runID)
	}
	return out, nil
}

// AddSample records a sample image of a run and returns it with its ID and time.
func (db *DB) AddSample(s Sample) (Sample, error) {
	var created int64
	err := db.writeTx(func(tx *sql.Tx) error {
		return tx.QueryRow(`INSERT INTO run_samples (run_id, step, prompt, seed, image_path, created_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id, created_at`, s.RunID, s.Step, s.Prompt, s.Seed, s.ImagePath, now()).
			Scan(&s.ID, &created)
	})
	if err != nil {
		return Sample{}, db.errf(err, "recording a sample of run %d step %d", s.RunID, s.Step)
	}
	s.CreatedAt = fromNanos(created)
	return s, nil
}

// Samples returns the run's sample images in step order.
func (db *DB) Samples(runID int64) ([]Sample, error) {
	rows, err := db.sql.Query(`SELECT id, run_id, step, prompt, seed, image_path, created_at FROM run_samples
		WHERE run_id = ? ORDER BY step, id`, runID)
	if err != nil {
		return nil, db.errf(err, "reading samples of run %d", runID)
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var s Sample
		var t int64
		if err := rows.Scan(&s.ID, &s.RunID, &s.Step, &s.Prompt, &s.Seed, &s.ImagePath, &t); err != nil {
			return nil, db.errf(err, "reading samples of run %d", runID)
		}
		s.CreatedAt = fromNanos(t)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "reading samples of run %d", runID)
	}
	return out, nil
}
