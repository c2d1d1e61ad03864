package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"lorastudio/app/studio"
)

// trainExportUsage is printed by `lorastudio train export --help` and on a bad line.
const trainExportUsage = `Usage: lorastudio train export --dataset DIR --model PATH --to OUTDIR [train settings] [cluster flags]

Writes OUTDIR for training the same LoRA on several GPUs with kohya's
sd-scripts (sdxl_train_network.py) under accelerate: dataset_config.toml,
train_config.toml, sample_prompts.txt, launch.sh, README.txt and a kohya-layout
view of the dataset (hard links, else copies; the dataset is only read).
Run it with: SD_SCRIPTS=/path/to/sd-scripts OUTDIR/launch.sh
Bring the result back with: lorastudio train import OUTDIR

  --to OUTDIR              the folder to write (required)
  --model PATH             the SDXL base as sd-scripts opens it: a local path, a path
                           on the cluster or a Hugging Face repo id (default: the
                           configured model)
  --num-processes N        processes (GPUs) over all machines (1)
  --num-machines M         machines (1)
  --machine-rank R         this machine's rank; launch.sh also reads MACHINE_RANK (0)
  --main-process-ip IP     address of machine rank 0 (required with M > 1)
  --main-process-port P    its port (29500)
  --mixed-precision P      fp16, bf16 or no (fp16)

Every setting of 'lorastudio train' is accepted (see 'lorastudio train --help'),
except --out, --format, --device, --check, --resume and --log-every.
`

// trainImportUsage is printed by `lorastudio train import --help` and on a bad line.
const trainImportUsage = `Usage: lorastudio train import [--name NAME] [--dataset DIR] OUTDIR|FILE.safetensors...

Records what kohya's sd-scripts wrote as finished runs in the history: the
LoRA files of OUTDIR (or its output/ folder) or the files given, with their
ss_* metadata (steps, epochs, rank, alpha, learning rate, dataset folders, tag
frequency), and the sample images in sample/ beside them. The files are linked
(else copied) into the run's folder; see 'lorastudio runs list'.

  --name NAME      the run's name (default: the export's, else ss_output_name)
  --dataset DIR    the dataset the LoRA was trained on, for files that come
                   without an export (default: the export's dataset)
  --data-dir DIR   where the database and runs live
`

// exportValueFlags are the flags of `train export` beyond train's; each takes a value.
var exportValueFlags = map[string]bool{
	"to": true, "num-processes": true, "num-machines": true, "machine-rank": true,
	"main-process-ip": true, "main-process-port": true, "mixed-precision": true,
}

// trainBoolFlags are train's flags that take no value, so the word after
// one is not its value when export splits the line.
var trainBoolFlags = map[string]bool{
	"allow-uncaptioned": true, "check": true, "no-checkpointing": true, "no-buckets": true,
	"random-crop": true, "flip": true, "shuffle-tags": true, "help": true, "h": true,
}

// notForExport are train's flags that mean nothing for an export.
var notForExport = map[string]string{
	"out":       "sd-scripts writes into OUTDIR/output",
	"format":    "sd-scripts writes kohya files",
	"device":    "sd-scripts runs on the cluster's GPUs",
	"check":     "the export prints its plan",
	"resume":    "an export starts a new run",
	"log-every": "sd-scripts logs itself",
}

// flagName returns the name of a flag token ("--to=x" → "to", true) and
// whether it carries its value after '='.
func flagName(tok string) (name string, inline bool, ok bool) {
	if len(tok) < 2 || tok[0] != '-' || tok == "--" {
		return "", false, false
	}
	name = strings.TrimPrefix(strings.TrimPrefix(tok, "-"), "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], true, true
	}
	return name, false, true
}

// trainSubcommand finds `export` or `import` as the first word of a train
// command line (after any --data-dir the global flags put in front) and
// returns its command with the rest of the line, the global flags kept.
func trainSubcommand(args []string) (func([]string, io.Writer, io.Writer) error, []string, bool) {
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "export", "import":
			rest := append(append([]string(nil), args[:i]...), args[i+1:]...)
			if args[i] == "export" {
				return trainExportCommand, rest, true
			}
			return trainImportCommand, rest, true
		}
		if globalValueFlags[args[i]] {
			i++ // its value
			continue
		}
		if strings.HasPrefix(args[i], "--data-dir=") || strings.HasPrefix(args[i], "-data-dir=") {
			continue
		}
		return nil, nil, false
	}
	return nil, nil, false
}

// splitExportArgs separates export's own flags from train's settings, which
// parseTrainArgs reads as `lorastudio train` does.
func splitExportArgs(args []string) (own map[string]string, rest []string, err error) {
	own = map[string]string{}
	for i := 0; i < len(args); i++ {
		tok := args[i]
		if tok == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, inline, ok := flagName(tok)
		if !ok {
			rest = append(rest, tok)
			continue
		}
		if exportValueFlags[name] {
			if inline {
				own[name] = tok[strings.IndexByte(tok, '=')+1:]
				continue
			}
			if i+1 >= len(args) {
				return nil, nil, usageError("train export: flag needs an argument: --%s", name)
			}
			own[name] = args[i+1]
			i++
			continue
		}
		if why, bad := notForExport[name]; bad {
			return nil, nil, usageError("train export: --%s does not apply to an export (%s)", name, why)
		}
		rest = append(rest, tok)
		if !inline && !trainBoolFlags[name] && i+1 < len(args) {
			rest = append(rest, args[i+1]) // the value of train's flag, whatever it looks like
			i++
		}
	}
	return own, rest, nil
}

// parseExportArgs parses a `train export` line into a request and the data dir.
func parseExportArgs(args []string, stderr io.Writer) (studio.ExportRequest, string, error) {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprint(stderr, trainExportUsage)
			return studio.ExportRequest{}, "", flag.ErrHelp
		}
	}
	own, rest, err := splitExportArgs(args)
	if err != nil {
		return studio.ExportRequest{}, "", err
	}
	ta, err := parseTrainArgs(rest, io.Discard)
	if err != nil {
		return studio.ExportRequest{}, "", usageError("train export: %s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), errUsage.Error()+": "), "train: "))
	}
	req := studio.ExportRequest{
		Dataset: ta.req.Dataset, Model: ta.req.Model, Name: ta.req.Name, AllowUncaptioned: ta.req.AllowUncaptioned,
		Config: ta.req.Config, To: own["to"], MainProcessIP: own["main-process-ip"], MixedPrecision: own["mixed-precision"],
	}
	for name, dst := range map[string]*int{"num-processes": &req.NumProcesses, "num-machines": &req.NumMachines,
		"machine-rank": &req.MachineRank, "main-process-port": &req.MainProcessPort} {
		v, ok := own[name]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return req, "", usageError("train export: --%s %q: want a whole number", name, v)
		}
		*dst = n
	}
	if req.To == "" {
		return req, "", usageError("train export: --to OUTDIR is required (see 'lorastudio train export --help')")
	}
	return req, ta.dataDir, nil
}

// trainExportCommand runs `lorastudio train export`.
func trainExportCommand(args []string, stdout, stderr io.Writer) error {
	req, dataDir, err := parseExportArgs(args, stderr)
	if err != nil {
		return err
	}
	st, err := openStudio(dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.Export(req)
	if err != nil {
		if errors.Is(err, studio.ErrInvalidExport) {
			return fmt.Errorf("train export: %s", strings.TrimPrefix(err.Error(), studio.ErrInvalidExport.Error()+": "))
		}
		return fmt.Errorf("train export: %w", err)
	}
	for _, sk := range res.Skipped {
		fmt.Fprintf(stderr, "skipped %s: %s\n", sk.Path, sk.Reason)
	}
	fmt.Fprintf(stdout, "export: %s\nmodel: %s\n", res.Dir, res.Model)
	fmt.Fprintf(stdout, "images: %d (%d hard-linked, %d copied)\n", res.Images, res.Linked, res.Copied)
	for _, s := range res.Subsets {
		fmt.Fprintf(stdout, "  %s: %d images x %d repeats (from %s)\n", s.Dir, s.Images, s.Repeats, s.Source)
	}
	fmt.Fprintf(stdout, "steps: %d (one process)\n", res.Steps)
	for _, f := range res.Files {
		fmt.Fprintf(stdout, "wrote %s\n", f)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	fmt.Fprintf(stdout, "run: SD_SCRIPTS=/path/to/sd-scripts %s\nthen: lorastudio train import %s\n", filepath.Join(res.Dir, studio.ExportLaunch), res.Dir)
	return nil
}

// trainImportCommand runs `lorastudio train import`.
func trainImportCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var req studio.ImportRequest
	var dataDir string
	fs.StringVar(&req.Name, "name", "", "")
	fs.StringVar(&req.Dataset, "dataset", "", "")
	fs.StringVar(&dataDir, "data-dir", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, trainImportUsage)
			return err
		}
		return usageError("train import: %v (see 'lorastudio train import --help')", err)
	}
	req.Paths = fs.Args()
	if len(req.Paths) == 0 {
		return usageError("train import: give an export folder or LoRA files (see 'lorastudio train import --help')")
	}
	st, err := openStudio(dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	runs, err := st.ImportRuns(req)
	for _, r := range runs {
		fmt.Fprintf(stdout, "run: %d (%s)\nsteps: %d (epoch %d)\nrank: %d  alpha: %g  lr: %g\noutput: %s\n",
			r.ID, r.Name, r.Steps, r.Epoch, r.Rank, r.Alpha, r.LR, r.Output)
		fmt.Fprintf(stdout, "checkpoints: %d  samples: %d\n", len(r.Checkpoints), r.Samples)
	}
	if err != nil {
		if errors.Is(err, studio.ErrInvalidImport) {
			return fmt.Errorf("train import: %s", strings.TrimPrefix(err.Error(), studio.ErrInvalidImport.Error()+": "))
		}
		return fmt.Errorf("train import: %w", err)
	}
	return nil
}
