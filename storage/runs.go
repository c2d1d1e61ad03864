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
	Name           string // the user's name for the run ("" for runs from before schema 5)
	DatasetPath    string // the dataset folder as given to the run
	BaseModel      string // the base model the LoRA is trained on (a path or name)
	ModelName      string // the model's short name, as written into the LoRA's ss_sd_model_name
	ModelHash      string // the content hash of the base model
	RunDir         string // the folder holding the run's checkpoints, state and samples
	ConfigJSON     string // the full training configuration, as JSON
	Status         RunStatus
	StepsDone      int    // optimizer steps finished so far (the last recorded metric's step)
	StepsTotal     int    // optimizer steps the run plans to make
	OutputPath     string // where the finished LoRA file goes
	CheckpointPath string // the latest checkpoint written ("" = none yet)
	CheckpointStep int    // the step of that checkpoint
	Error          string // why the run failed or stopped; "" otherwise
	CreatedAt      time.Time
	StartedAt      time.Time // zero until it first runs
	FinishedAt     time.Time // zero until it is done or failed
}

// NewRun is what CreateRun needs to record a run; DatasetID, BaseModel and ConfigJSON are required.
type NewRun struct {
	DatasetID   int64
	Name        string
	DatasetPath string
	BaseModel   string
	ModelName   string
	ModelHash   string
	RunDir      string
	ConfigJSON  string // must be valid JSON
	OutputPath  string
	StepsTotal  int
}

// Metric is one training step's numbers.
type Metric struct {
	RunID   int64
	Step    int
	Loss    float64
	LR      float64
	Seconds float64   // wall time of the step (0 for rows from before schema 5)
	Time    time.Time // when the step finished; zero in AddMetric means now
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

// RunFileKind is what a file a run wrote is for.
type RunFileKind string

// The kinds of run files. Sample images are recorded with their prompt and seed by AddSample.
const (
	FileCheckpoint RunFileKind = "checkpoint" // a numbered LoRA file written during training
	FileState      RunFileKind = "state"      // a resumable training state (weights, optimizer moments, position)
	FileOutput     RunFileKind = "output"     // the finished LoRA
)

// RunFile is a file a run wrote.
type RunFile struct {
	ID, RunID int64
	Kind      RunFileKind
	Path      string
	Step      int // the step the file holds
	CreatedAt time.Time
}

// RunSummary is a run with what a list of runs shows beside it.
type RunSummary struct {
	Run
	LastLoss *float64  // the loss of the highest recorded step; nil when no step is recorded
	Outputs  []RunFile // the run's output files, oldest first
}

const runCols = `id, dataset_id, name, dataset_path, base_model, model_name, model_hash, run_dir, config_json, status,
	steps_done, steps_total, output_path, checkpoint_path, checkpoint_step, error, created_at, started_at, finished_at`

func scanRun(s rowScanner, extra ...any) (Run, error) {
	var r Run
	var status string
	var created int64
	var started, finished sql.NullInt64
	dst := []any{&r.ID, &r.DatasetID, &r.Name, &r.DatasetPath, &r.BaseModel, &r.ModelName, &r.ModelHash, &r.RunDir,
		&r.ConfigJSON, &status, &r.StepsDone, &r.StepsTotal, &r.OutputPath, &r.CheckpointPath, &r.CheckpointStep,
		&r.Error, &created, &started, &finished}
	if err := s.Scan(append(dst, extra...)...); err != nil {
		return Run{}, err
	}
	r.Status = RunStatus(status)
	r.CreatedAt = fromNanos(created)
	r.StartedAt = fromNullNanos(started)
	r.FinishedAt = fromNullNanos(finished)
	return r, nil
}

// CreateRun records a new queued training run.
func (db *DB) CreateRun(n NewRun) (Run, error) {
	if !json.Valid([]byte(n.ConfigJSON)) {
		return Run{}, fmt.Errorf("storage: %s: the configuration of a new run is not valid JSON", db.path)
	}
	if n.StepsTotal < 0 {
		return Run{}, fmt.Errorf("storage: %s: a new run plans %d steps", db.path, n.StepsTotal)
	}
	var r Run
	err := db.writeTx(func(tx *sql.Tx) error {
		var err error
		r, err = scanRun(tx.QueryRow(`INSERT INTO runs (dataset_id, name, dataset_path, base_model, model_name, model_hash,
			run_dir, config_json, status, steps_total, output_path, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+runCols,
			n.DatasetID, n.Name, n.DatasetPath, n.BaseModel, n.ModelName, n.ModelHash, n.RunDir, n.ConfigJSON,
			string(RunQueued), n.StepsTotal, n.OutputPath, now()))
		return err
	})
	if err != nil {
		return Run{}, db.errf(err, "creating a run of dataset %d", n.DatasetID)
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

// UpdateRunStatus sets a run's status and why (the error of a failed run, the reason a run
// stopped; "" clears it). Moving to running sets StartedAt the first time; moving to done or
// failed sets FinishedAt.
func (db *DB) UpdateRunStatus(id int64, status RunStatus, errMsg string) error {
	switch status {
	case RunQueued, RunRunning, RunStopped, RunFailed, RunDone:
	default:
		return fmt.Errorf("storage: %s: run %d: unknown status %q", db.path, id, status)
	}
	t := now()
	return db.updateRun(id, "status "+string(status), `UPDATE runs SET status = ?, error = ?,
		started_at = CASE WHEN ? = 'running' AND started_at IS NULL THEN ? ELSE started_at END,
		finished_at = CASE WHEN ? IN ('done', 'failed') THEN ? ELSE NULL END
		WHERE id = ?`, string(status), errMsg, string(status), t, string(status), t)
}

// updateRun runs one UPDATE of run id (the statement's last placeholder), wrapping a
// missing run in ErrNotFound.
func (db *DB) updateRun(id int64, what, stmt string, args ...any) error {
	err := db.writeTx(func(tx *sql.Tx) error {
		res, err := tx.Exec(stmt, append(args, id)...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("run %d: %w", id, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return db.errf(err, "recording %s of run %d", what, id)
	}
	return nil
}

// SetRunCheckpoint records the latest checkpoint of a run, from which it can resume.
func (db *DB) SetRunCheckpoint(id int64, path string, step int) error {
	return db.updateRun(id, "the checkpoint", `UPDATE runs SET checkpoint_path = ?, checkpoint_step = ? WHERE id = ?`, path, step)
}

// SetRunDir records the folder of a run (known once the run has its id).
func (db *DB) SetRunDir(id int64, dir string) error {
	return db.updateRun(id, "the folder", `UPDATE runs SET run_dir = ? WHERE id = ?`, dir)
}

// SetRunOutput records where a run's finished LoRA goes.
func (db *DB) SetRunOutput(id int64, path string) error {
	return db.updateRun(id, "the output path", `UPDATE runs SET output_path = ? WHERE id = ?`, path)
}

// SetRunSteps records a run's progress: steps done and steps planned.
func (db *DB) SetRunSteps(id int64, done, total int) error {
	if done < 0 || total < 0 {
		return fmt.Errorf("storage: %s: run %d: steps %d of %d", db.path, id, done, total)
	}
	return db.updateRun(id, "the steps", `UPDATE runs SET steps_done = ?, steps_total = ? WHERE id = ?`, done, total)
}

// AddMetric records one step's metrics and makes its step the run's steps done. A step
// recorded again (a run resumed from an earlier checkpoint repeats steps) replaces the
// earlier numbers.
func (db *DB) AddMetric(m Metric) error {
	t := now()
	if !m.Time.IsZero() {
		t = m.Time.UnixNano()
	}
	err := db.writeTx(func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO run_metrics (run_id, step, loss, lr, seconds, time) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, step) DO UPDATE SET loss = excluded.loss, lr = excluded.lr, seconds = excluded.seconds,
			time = excluded.time`, m.RunID, m.Step, m.Loss, m.LR, m.Seconds, t); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE runs SET steps_done = ? WHERE id = ?`, m.Step, m.RunID)
		return err
	})
	if err != nil {
		return db.errf(err, "recording metrics of run %d step %d", m.RunID, m.Step)
	}
	return nil
}

// Metrics returns every recorded step of the run, in step order.
func (db *DB) Metrics(runID int64) ([]Metric, error) {
	rows, err := db.sql.Query(`SELECT run_id, step, loss, lr, seconds, time FROM run_metrics WHERE run_id = ? ORDER BY step`, runID)
	if err != nil {
		return nil, db.errf(err, "reading metrics of run %d", runID)
	}
	defer rows.Close()
	var out []Metric
	for rows.Next() {
		var m Metric
		var t int64
		if err := rows.Scan(&m.RunID, &m.Step, &m.Loss, &m.LR, &m.Seconds, &t); err != nil {
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

// AddRunFile records a file a run wrote. The same kind and path recorded again (a resumed
// run rewrites a checkpoint of the same step) replaces the earlier row's step and time.
func (db *DB) AddRunFile(f RunFile) (RunFile, error) {
	switch f.Kind {
	case FileCheckpoint, FileState, FileOutput:
	default:
		return RunFile{}, fmt.Errorf("storage: %s: run %d: unknown file kind %q", db.path, f.RunID, f.Kind)
	}
	if f.Path == "" {
		return RunFile{}, fmt.Errorf("storage: %s: run %d: a %s file with no path", db.path, f.RunID, f.Kind)
	}
	var created int64
	err := db.writeTx(func(tx *sql.Tx) error {
		return tx.QueryRow(`INSERT INTO run_files (run_id, kind, path, step, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (run_id, kind, path) DO UPDATE SET step = excluded.step, created_at = excluded.created_at
			RETURNING id, created_at`, f.RunID, string(f.Kind), f.Path, f.Step, now()).Scan(&f.ID, &created)
	})
	if err != nil {
		return RunFile{}, db.errf(err, "recording the %s file %s of run %d", f.Kind, f.Path, f.RunID)
	}
	f.CreatedAt = fromNanos(created)
	return f, nil
}

// RunFiles returns the files a run wrote, in step order (then in the order recorded).
func (db *DB) RunFiles(runID int64) ([]RunFile, error) {
	return db.queryRunFiles(`SELECT id, run_id, kind, path, step, created_at FROM run_files WHERE run_id = ? ORDER BY step, id`, runID)
}

// queryRunFiles reads run_files rows selected by stmt.
func (db *DB) queryRunFiles(stmt string, args ...any) ([]RunFile, error) {
	rows, err := db.sql.Query(stmt, args...)
	if err != nil {
		return nil, db.errf(err, "reading run files")
	}
	defer rows.Close()
	var out []RunFile
	for rows.Next() {
		var f RunFile
		var kind string
		var t int64
		if err := rows.Scan(&f.ID, &f.RunID, &kind, &f.Path, &f.Step, &t); err != nil {
			return nil, db.errf(err, "reading run files")
		}
		f.Kind, f.CreatedAt = RunFileKind(kind), fromNanos(t)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "reading run files")
	}
	return out, nil
}

// RunSummaries returns up to limit runs (all when limit <= 0), newest first, each with the
// loss of its highest recorded step and its output files.
func (db *DB) RunSummaries(limit int) ([]RunSummary, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.sql.Query(`SELECT `+runCols+`,
		(SELECT loss FROM run_metrics m WHERE m.run_id = runs.id ORDER BY step DESC LIMIT 1)
		FROM runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, db.errf(err, "listing runs")
	}
	defer rows.Close()
	var out []RunSummary
	byID := map[int64]int{}
	for rows.Next() {
		var loss sql.NullFloat64
		r, err := scanRun(rows, &loss)
		if err != nil {
			return nil, db.errf(err, "listing runs")
		}
		s := RunSummary{Run: r}
		if loss.Valid {
			v := loss.Float64
			s.LastLoss = &v
		}
		byID[r.ID] = len(out)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, db.errf(err, "listing runs")
	}
	if len(out) == 0 {
		return out, nil
	}
	// One query for the outputs of every listed run: runs are listed newest first, so the
	// oldest listed id bounds them.
	files, err := db.queryRunFiles(`SELECT id, run_id, kind, path, step, created_at FROM run_files
		WHERE kind = 'output' AND run_id >= ? ORDER BY id`, out[len(out)-1].ID)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if i, ok := byID[f.RunID]; ok {
			out[i].Outputs = append(out[i].Outputs, f)
		}
	}
	return out, nil
}
