package storage

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// ImportedRun is a finished run trained elsewhere (kohya's sd-scripts) that
// CreateImportedRun records: the fields of NewRun, the steps it made and
// when it started and finished (zero: unknown, recorded as now).
type ImportedRun struct {
	NewRun
	StepsDone         int
	Started, Finished time.Time
}

// CreateImportedRun records a run that already finished elsewhere, in one
// transaction: status done, its steps, folder and times as given, so it
// lists beside the studio's own runs.
func (db *DB) CreateImportedRun(n ImportedRun) (Run, error) {
	if !json.Valid([]byte(n.ConfigJSON)) {
		return Run{}, fmt.Errorf("storage: %s: the configuration of an imported run is not valid JSON", db.path)
	}
	if n.StepsTotal < 0 || n.StepsDone < 0 {
		return Run{}, fmt.Errorf("storage: %s: an imported run of %d steps of %d", db.path, n.StepsDone, n.StepsTotal)
	}
	t := now()
	started, finished := t, t
	if !n.Started.IsZero() {
		started = n.Started.UnixNano()
	}
	if !n.Finished.IsZero() {
		finished = n.Finished.UnixNano()
	}
	var r Run
	err := db.writeTx(func(tx *sql.Tx) error {
		var err error
		r, err = scanRun(tx.QueryRow(`INSERT INTO runs (dataset_id, name, dataset_path, base_model, model_name, model_hash,
			run_dir, config_json, status, steps_done, steps_total, output_path, created_at, started_at, finished_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+runCols,
			n.DatasetID, n.Name, n.DatasetPath, n.BaseModel, n.ModelName, n.ModelHash, n.RunDir, n.ConfigJSON,
			string(RunDone), n.StepsDone, n.StepsTotal, n.OutputPath, t, started, finished))
		return err
	})
	if err != nil {
		return Run{}, db.errf(err, "recording an imported run of dataset %d", n.DatasetID)
	}
	return r, nil
}
