package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"lorastudio/app/studio"
)

// runsUsage is printed by `lorastudio runs help` and on a bad line.
const runsUsage = `Usage:
  lorastudio runs list [--json]      every training run, newest first
  lorastudio runs show ID [--json]   one run: settings, every step's metrics, samples, files

Flags:
  --json           machine-readable output
  --data-dir DIR   where the database lives
`

// runJSON is a run as `runs list --json` prints it.
type runJSON struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Status     string     `json:"status"` // queued, running, stopped, failed, finished
	Reason     string     `json:"reason,omitempty"`
	Dataset    string     `json:"dataset"`
	Model      string     `json:"model"`
	ModelHash  string     `json:"model_hash,omitempty"`
	StepsDone  int        `json:"steps_done"`
	StepsTotal int        `json:"steps_total"`
	LastLoss   *float64   `json:"last_loss"`
	Outputs    []string   `json:"outputs"`
	RunDir     string     `json:"run_dir"`
	Checkpoint string     `json:"checkpoint,omitempty"`
	Created    time.Time  `json:"created"`
	Started    *time.Time `json:"started"`
	Finished   *time.Time `json:"finished"`
}

// runDetailJSON is `runs show --json`: the list's fields, the settings and
// everything recorded.
type runDetailJSON struct {
	runJSON
	Settings json.RawMessage `json:"settings"`
	Metrics  []metricJSON    `json:"metrics"`
	Samples  []sampleJSON    `json:"samples"`
	Files    []fileJSON      `json:"files"`
}

type metricJSON struct {
	Step    int       `json:"step"`
	Loss    float64   `json:"loss"`
	LR      float64   `json:"lr"`
	Seconds float64   `json:"seconds"`
	Time    time.Time `json:"time"`
}

type sampleJSON struct {
	Step   int    `json:"step"`
	Prompt string `json:"prompt"`
	Seed   int64  `json:"seed"`
	Path   string `json:"path"`
}

type fileJSON struct {
	Kind    string    `json:"kind"`
	Path    string    `json:"path"`
	Step    int       `json:"step"`
	Created time.Time `json:"created"`
	Exists  bool      `json:"exists"` // false once removed (a run keeps only its two newest states)
}

// optTime is t, or nil for the zero time ("not yet").
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// summaryJSON converts a run summary.
func summaryJSON(s studio.RunSummary) runJSON {
	j := runJSON{
		ID: s.ID, Name: s.Name, Status: studio.RunStatusLabel(s.Status), Reason: s.Error, Dataset: s.DatasetPath,
		Model: s.BaseModel, ModelHash: s.ModelHash, StepsDone: s.StepsDone, StepsTotal: s.StepsTotal, LastLoss: s.LastLoss,
		Outputs: []string{}, RunDir: s.RunDir, Checkpoint: s.CheckpointPath,
		Created: s.CreatedAt, Started: optTime(s.StartedAt), Finished: optTime(s.FinishedAt),
	}
	for _, f := range s.Outputs {
		j.Outputs = append(j.Outputs, f.Path)
	}
	return j
}

// runsCommand runs `lorastudio runs SUBCOMMAND`.
func runsCommand(args []string, stdout, stderr io.Writer) error {
	sub, rest := splitCommand(args)
	fs := flag.NewFlagSet("runs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "")
	dataDir := fs.String("data-dir", "", "")
	switch sub {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, runsUsage)
		return nil
	case "list", "show":
	case "":
		return usageError("runs: want list or show (see 'lorastudio runs help')")
	default:
		return usageError("runs: unknown subcommand %q (see 'lorastudio runs help')", sub)
	}
	// Flags may stand before or after the run id.
	var pos []string
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stderr, runsUsage)
				return err
			}
			return usageError("runs %s: %v", sub, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	var id int64
	switch {
	case sub == "list" && len(pos) > 0:
		return usageError("runs list: unexpected argument %q", pos[0])
	case sub == "show" && len(pos) != 1:
		return usageError("runs show: want one run id")
	case sub == "show":
		v, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || v <= 0 {
			return usageError("runs show: %q is not a run id", pos[0])
		}
		id = v
	}
	st, err := openStudio(*dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	if sub == "list" {
		return runsList(st, *asJSON, stdout)
	}
	return runsShow(st, id, *asJSON, stdout)
}

// runsList prints every run, newest first.
func runsList(st *studio.Studio, asJSON bool, w io.Writer) error {
	runs, err := st.Runs()
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]runJSON, 0, len(runs))
		for _, r := range runs {
			out = append(out, summaryJSON(r))
		}
		return writeJSON(w, out)
	}
	if len(runs) == 0 {
		fmt.Fprintln(w, "no training runs yet (start one with 'lorastudio train --dataset DIR')")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tSTEPS\tLOSS\tCREATED\tMODEL\tDATASET\tOUTPUT")
	for _, r := range runs {
		j := summaryJSON(r)
		loss := "-"
		if j.LastLoss != nil {
			loss = strconv.FormatFloat(*j.LastLoss, 'g', 5, 64)
		}
		out := "-"
		if len(j.Outputs) > 0 {
			out = j.Outputs[len(j.Outputs)-1]
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Name, j.Status, j.StepsDone, j.StepsTotal, loss,
			j.Created.Local().Format("2006-01-02 15:04"), r.ModelName, j.Dataset, out)
	}
	return tw.Flush()
}

// runsShow prints one run with its settings, metrics, samples and files.
func runsShow(st *studio.Studio, id int64, asJSON bool, w io.Writer) error {
	d, err := st.Run(id)
	if err != nil {
		return fmt.Errorf("runs show: run %d: no such run (see 'lorastudio runs list')", id)
	}
	sum := studio.RunSummary{Run: d.Run}
	for _, f := range d.Files {
		if f.Kind == "output" {
			sum.Outputs = append(sum.Outputs, f)
		}
	}
	if n := len(d.Metrics); n > 0 {
		l := d.Metrics[n-1].Loss
		sum.LastLoss = &l
	}
	j := runDetailJSON{runJSON: summaryJSON(sum), Settings: json.RawMessage(d.ConfigJSON),
		Metrics: []metricJSON{}, Samples: []sampleJSON{}, Files: []fileJSON{}}
	for _, m := range d.Metrics {
		j.Metrics = append(j.Metrics, metricJSON{Step: m.Step, Loss: m.Loss, LR: m.LR, Seconds: m.Seconds, Time: m.Time})
	}
	for _, s := range d.Samples {
		j.Samples = append(j.Samples, sampleJSON{Step: s.Step, Prompt: s.Prompt, Seed: s.Seed, Path: s.ImagePath})
	}
	for _, f := range d.Files {
		_, err := os.Stat(f.Path)
		j.Files = append(j.Files, fileJSON{Kind: string(f.Kind), Path: f.Path, Step: f.Step, Created: f.CreatedAt, Exists: err == nil})
	}
	if asJSON {
		return writeJSON(w, j)
	}
	fmt.Fprintf(w, "run %d: %s\nstatus:   %s", j.ID, j.Name, j.Status)
	if j.Reason != "" {
		fmt.Fprintf(w, " (%s)", j.Reason)
	}
	fmt.Fprintf(w, "\nsteps:    %d/%d\n", j.StepsDone, j.StepsTotal)
	if j.LastLoss != nil {
		fmt.Fprintf(w, "loss:     %.6g\n", *j.LastLoss)
	}
	fmt.Fprintf(w, "dataset:  %s\nmodel:    %s\nfolder:   %s\ncreated:  %s\n", j.Dataset, j.Model, j.RunDir, j.Created.Local().Format(time.RFC3339))
	if j.Started != nil {
		fmt.Fprintf(w, "started:  %s\n", j.Started.Local().Format(time.RFC3339))
	}
	if j.Finished != nil {
		fmt.Fprintf(w, "finished: %s\n", j.Finished.Local().Format(time.RFC3339))
	}
	var settings map[string]any
	if json.Unmarshal(j.Settings, &settings) == nil {
		b, _ := json.MarshalIndent(settings, "", "  ")
		fmt.Fprintf(w, "settings: %s\n", b)
	}
	if len(j.Files) > 0 {
		fmt.Fprintln(w, "files:")
		for _, f := range j.Files {
			gone := ""
			if !f.Exists {
				gone = " (removed)"
			}
			fmt.Fprintf(w, "  %-10s step %-6d %s%s\n", f.Kind, f.Step, f.Path, gone)
		}
	}
	if len(j.Samples) > 0 {
		fmt.Fprintln(w, "samples:")
		for _, s := range j.Samples {
			fmt.Fprintf(w, "  step %-6d seed %-6d %s  %q\n", s.Step, s.Seed, s.Path, s.Prompt)
		}
	}
	if len(j.Metrics) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "STEP\tLOSS\tLR\tSECONDS")
		for _, m := range j.Metrics {
			fmt.Fprintf(tw, "%d\t%.6g\t%.3g\t%.3f\n", m.Step, m.Loss, m.LR, m.Seconds)
		}
		return tw.Flush()
	}
	return nil
}
