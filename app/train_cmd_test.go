package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"lorastudio/app/studio"
	"lorastudio/engine/lora"
	"lorastudio/engine/sdxl"
)

// trainTestDataset writes a kohya dataset of three captioned 64×64 images
// (two in a 2_ repeat folder).
func trainTestDataset(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range []struct{ rel, caption string }{
		{"2_cats/a.png", "sks cat, sitting"},
		{"2_cats/b.png", "sks cat"},
		{"1_dogs/c.png", "a dog"},
	} {
		p := filepath.Join(root, filepath.FromSlash(f.rel))
		writeTestPNG(t, p, 64, 64)
		if err := os.WriteFile(strings.TrimSuffix(p, ".png")+".txt", []byte(f.caption+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// tinyTrainArgs are the flags of a short run on the tiny fixture model.
func tinyTrainArgs(t *testing.T, dataset, dataDir string, steps int) []string {
	return []string{"train", "--dataset", dataset, "--model", filepath.Join(fixtureRoot(t), "model"),
		"--resolution", "64", "--rank", "4", "--alpha", "8", "--steps", fmt.Sprint(steps), "--save-every", "2",
		"--sample-every", "0", "--device", "cpu", "--data-dir", dataDir}
}

// listRuns runs `runs list --json`.
func listRuns(t *testing.T, dataDir string) []runJSON {
	t.Helper()
	code, out, errs := runCLI("runs", "list", "--json", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("runs list: exit %d: %s", code, errs)
	}
	var runs []runJSON
	if err := json.Unmarshal([]byte(out), &runs); err != nil {
		t.Fatalf("runs list --json: %v\n%s", err, out)
	}
	return runs
}

// TestTrainCLI trains the tiny fixture model for 4 steps from the command
// line: exit 0, the pre-flight first, an output that loads as a LoRA, and
// the run listed as finished with its steps, loss and output.
func TestTrainCLI(t *testing.T) {
	dataDir := t.TempDir()
	out := filepath.Join(t.TempDir(), "lora", "cats.safetensors")
	code, stdout, stderr := runCLI(append(tinyTrainArgs(t, trainTestDataset(t), dataDir, 4), "--out", out)...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, "pre-flight\n") || !strings.Contains(stdout, "images:   3 (5 with repeats)") ||
		!strings.Contains(stdout, "64x64") || !strings.Contains(stdout, "output: "+out) {
		t.Errorf("stdout:\n%s", stdout)
	}
	// A pipe gets one line per step here (4 steps < 50) and the checkpoints.
	for _, want := range []string{"step 1/4", "step 4/4", "checkpoint at step 2"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	src, err := sdxl.OpenSource(filepath.Join(fixtureRoot(t), "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if l, err := lora.Open(out, src.Config()); err != nil || len(l.Layers) == 0 {
		t.Fatalf("the output does not load as a LoRA: %v", err)
	}
	runs := listRuns(t, dataDir)
	if len(runs) != 1 {
		t.Fatalf("runs %+v", runs)
	}
	r := runs[0]
	if r.Status != "finished" || r.StepsDone != 4 || r.StepsTotal != 4 || r.LastLoss == nil || len(r.Outputs) != 1 ||
		r.Outputs[0] != out || r.Name != "cats" || r.Finished == nil || !strings.HasSuffix(r.Model, "model") {
		t.Errorf("run %+v", r)
	}
	code, show, errs := runCLI("runs", "show", fmt.Sprint(r.ID), "--json", "--data-dir", dataDir)
	if code != 0 {
		t.Fatalf("runs show: exit %d: %s", code, errs)
	}
	var d runDetailJSON
	if err := json.Unmarshal([]byte(show), &d); err != nil {
		t.Fatal(err)
	}
	var settings struct {
		Rank     int `json:"rank"`
		MaxSteps int `json:"max_steps"`
	}
	json.Unmarshal(d.Settings, &settings)
	if len(d.Metrics) != 4 || d.Metrics[3].Loss != *r.LastLoss || settings.Rank != 4 || settings.MaxSteps != 4 || len(d.Files) < 3 {
		t.Errorf("runs show: %d metrics, settings %+v, files %+v", len(d.Metrics), settings, d.Files)
	}
	if code, text, _ := runCLI("runs", "show", fmt.Sprint(r.ID), "--data-dir", dataDir); code != 0 || !strings.Contains(text, "status:   finished") {
		t.Errorf("runs show (text): %d\n%s", code, text)
	}
	if code, _, errs := runCLI("runs", "show", "99", "--data-dir", dataDir); code != 1 || !strings.Contains(errs, "no such run") {
		t.Errorf("runs show 99: exit %d, %s", code, errs)
	}
}

// TestTrainCLICheck prints the pre-flight alone: exit 0, no run, no output.
func TestTrainCLICheck(t *testing.T) {
	dataDir := t.TempDir()
	out := filepath.Join(t.TempDir(), "x.safetensors")
	code, stdout, stderr := runCLI(append(tinyTrainArgs(t, trainTestDataset(t), dataDir, 4), "--out", out, "--check")...)
	if code != 0 || !strings.Contains(stdout, "pre-flight") || !strings.Contains(stdout, "steps: 4 (") || !strings.Contains(stdout, "device memory:") || !strings.Contains(stdout, "2_cats") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "step ") {
		t.Errorf("--check trained: %s", stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("--check wrote the output (%v)", err)
	}
	if runs := listRuns(t, dataDir); len(runs) != 0 {
		t.Errorf("--check recorded a run: %+v", runs)
	}
}

// TestTrainCLIBadInput checks that unusable input fails before training
// with exit 1 and names the file, and a bad command line exits 2.
func TestTrainCLIBadInput(t *testing.T) {
	dataDir := t.TempDir()
	good := trainTestDataset(t)
	empty := t.TempDir()
	uncaptioned := t.TempDir()
	writeTestPNG(t, filepath.Join(uncaptioned, "u.png"), 64, 64)
	notSDXL := filepath.Join(t.TempDir(), "model.safetensors")
	os.WriteFile(notSDXL, []byte("\x08\x00\x00\x00\x00\x00\x00\x00{}      "), 0o644)
	aFile := filepath.Join(t.TempDir(), "file")
	os.WriteFile(aFile, []byte("x"), 0o644)
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no images", tinyTrainArgs(t, empty, dataDir, 4), 1, []string{empty, "no images"}},
		{"none captioned", tinyTrainArgs(t, uncaptioned, dataDir, 4), 1, []string{filepath.Join(uncaptioned, "u.png"), "--allow-uncaptioned"}},
		{"out unwritable", append(tinyTrainArgs(t, good, dataDir, 4), "--out", filepath.Join(aFile, "x.safetensors")), 1, []string{aFile, "cannot"}},
		{"not SDXL", append(tinyTrainArgs(t, good, dataDir, 4), "--model", notSDXL), 1, []string{notSDXL, "not an SDXL model"}},
		{"no dataset", []string{"train", "--data-dir", dataDir}, 2, []string{"--dataset"}},
		{"bad rank", append(tinyTrainArgs(t, good, dataDir, 4), "--rank", "0"), 2, []string{"rank"}},
		{"bad format", append(tinyTrainArgs(t, good, dataDir, 4), "--format", "ckpt"), 2, []string{"format"}},
		{"resume with settings", []string{"train", "--resume", "1", "--rank", "4", "--data-dir", dataDir}, 2, []string{"--rank"}},
		{"resume nothing", []string{"train", "--resume", "7", "--data-dir", dataDir}, 1, []string{"run 7"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d: %s", code, c.code, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
	if runs := listRuns(t, dataDir); len(runs) != 0 {
		t.Errorf("bad input recorded runs: %+v", runs)
	}
}

// TestTrainCLIInterruptBinary sends SIGINT to the real binary during a run:
// it exits 130 saying how to resume, the run is stopped with a checkpoint,
// and --resume finishes it with the planned step count and every step's
// metrics recorded once.
func TestTrainCLIInterruptBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the binary")
	}
	bin := studioBinary(t)
	dataDir := t.TempDir()
	const steps = 16
	args := append(tinyTrainArgs(t, trainTestDataset(t), dataDir, steps)[1:], "--log-every", "1")
	cmd := exec.Command(bin, append([]string{"train"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !sent && strings.HasPrefix(sc.Text(), "step 1/") {
				cmd.Process.Signal(syscall.SIGINT)
				sent = true
			}
		}
		exited <- cmd.Wait()
	}()
	select {
	case err = <-exited:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the interrupted run did not exit; stderr:\n%s", log.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want %d; stderr:\n%s", err, exitInterrupted, log.String())
	}
	if !strings.Contains(log.String(), "resume with: lorastudio train --resume 1") {
		t.Errorf("stderr does not say how to resume:\n%s", log.String())
	}
	runs := listRuns(t, dataDir)
	if len(runs) != 1 || runs[0].Status != "stopped" || runs[0].StepsDone < 1 || runs[0].StepsDone >= steps || runs[0].Checkpoint == "" {
		t.Fatalf("after SIGINT: %+v", runs)
	}
	stoppedAt := runs[0].StepsDone
	if _, err := os.Stat(runs[0].Checkpoint); err != nil {
		t.Errorf("the stop checkpoint: %v", err)
	}

	res := exec.Command(bin, "train", "--resume", "1", "--device", "cpu", "--data-dir", dataDir)
	out, err := res.CombinedOutput()
	if err != nil {
		t.Fatalf("--resume: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("at step %d of %d", stoppedAt, steps)) {
		t.Errorf("--resume output:\n%s", out)
	}
	runs = listRuns(t, dataDir)
	if len(runs) != 1 || runs[0].Status != "finished" || runs[0].StepsDone != steps || len(runs[0].Outputs) != 1 {
		t.Fatalf("after --resume: %+v", runs)
	}
	code, show, _ := runCLI("runs", "show", "1", "--json", "--data-dir", dataDir)
	var d runDetailJSON
	if code != 0 || json.Unmarshal([]byte(show), &d) != nil || len(d.Metrics) != steps {
		t.Fatalf("runs show after resume: exit %d, %d metrics\n%s", code, len(d.Metrics), show)
	}
	for i, m := range d.Metrics {
		if m.Step != i+1 {
			t.Fatalf("metric %d is step %d", i, m.Step)
		}
	}
}

// TestTrainProgress checks both progress forms: on a terminal one line
// redrawn with \r (ended once at the last step, broken by a checkpoint
// line); on a pipe one line every logEvery steps plus the first and last.
func TestTrainProgress(t *testing.T) {
	events := []studio.TrainEvent{{Kind: studio.TrainPreparing, Message: "loading the UNet"}}
	for s := 1; s <= 6; s++ {
		events = append(events, studio.TrainEvent{Kind: studio.TrainStep, Step: s, Total: 6, SmoothLoss: 0.5, LR: 1e-4, ItPerSec: 2, ETA: time.Duration(6-s) * 500 * time.Millisecond})
		if s == 3 {
			events = append(events, studio.TrainEvent{Kind: studio.TrainCheckpoint, Step: 3, Path: "/r/lora-000003.safetensors"})
		}
	}
	var tty strings.Builder
	p := trainProgress(&tty, true, 0)
	for _, e := range events {
		p(e)
	}
	want := "loading the UNet\n" +
		"\r[####....................] step 1/6  loss 0.5000  lr 0.0001  2.00 it/s  ETA 0:03 " +
		"\r[########................] step 2/6  loss 0.5000  lr 0.0001  2.00 it/s  ETA 0:02 " +
		"\r[############............] step 3/6  loss 0.5000  lr 0.0001  2.00 it/s  ETA 0:02 \n" +
		"checkpoint at step 3: /r/lora-000003.safetensors\n" +
		"\r[################........] step 4/6  loss 0.5000  lr 0.0001  2.00 it/s  ETA 0:01 " +
		"\r[####################....] step 5/6  loss 0.5000  lr 0.0001  2.00 it/s  ETA 0:01 " +
		"\r[########################] step 6/6  loss 0.5000  lr 0.0001  2.00 it/s  ETA - \n"
	if tty.String() != want {
		t.Errorf("terminal progress:\n%q\nwant\n%q", tty.String(), want)
	}
	var pipe strings.Builder
	p = trainProgress(&pipe, false, 4)
	for _, e := range events {
		p(e)
	}
	lines := strings.Split(strings.TrimSpace(pipe.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[1], "step 1/6") || !strings.HasPrefix(lines[2], "checkpoint") ||
		!strings.HasPrefix(lines[3], "step 4/6") || !strings.HasPrefix(lines[4], "step 6/6") || strings.Contains(pipe.String(), "\r") {
		t.Errorf("pipe progress:\n%s", pipe.String())
	}
}
