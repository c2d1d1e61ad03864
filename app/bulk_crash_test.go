package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"lorastudio/app/studio"
)

// crashFiles is the size of the dataset the crash test edits (the report was 1,500;
// 1,000 keeps the test's runtime moderate on two cores).
const crashFiles = 1000

// crashRig runs the real binary on one dataset and data directory.
type crashRig struct {
	t         *testing.T
	bin, dir  string
	data      string
	rng       *rand.Rand
	cur       []string // what every caption file holds when no batch is unfinished
	midBatch  int      // kills that left a batch half-written
	startCost time.Duration
}

// captionPath is the caption file of image i.
func (r *crashRig) captionPath(i int) string {
	return filepath.Join(r.dir, fmt.Sprintf("img%04d.txt", i))
}

// read returns every caption file's text.
func (r *crashRig) read() []string {
	r.t.Helper()
	out := make([]string, crashFiles)
	for i := range out {
		b, err := os.ReadFile(r.captionPath(i))
		if err != nil {
			r.t.Fatalf("caption %d lost: %v", i, err)
		}
		out[i] = string(b)
	}
	return out
}

// command builds a command line of the binary on the rig's dataset, slowed by the write hook
// when slow is set.
func (r *crashRig) command(slow bool, args ...string) *exec.Cmd {
	cmd := exec.Command(r.bin, append(append([]string{"caption"}, args...), "--data-dir", r.data)...)
	cmd.Env = append(os.Environ(), "LANG=en_US.UTF-8")
	if slow {
		cmd.Env = append(cmd.Env, studio.BulkWriteDelayEnv+"=1ms")
	}
	return cmd
}

// run runs a command that must succeed and returns stdout and stderr.
func (r *crashRig) run(args ...string) (string, string) {
	r.t.Helper()
	cmd := r.command(false, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("%v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// killDuring starts a command and kills it (SIGKILL) at a random point: usually once the
// caption file of a randomly drawn image among watch changes (plus a little jitter), so the
// kill lands mid-batch; one time in four after a random delay from the start, so it can land
// in the opening, the planning or the intent's first transaction.
func (r *crashRig) killDuring(watch []int, args ...string) {
	r.t.Helper()
	cmd := r.command(true, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var when string
	if len(watch) == 0 || r.rng.IntN(4) == 0 {
		d := time.Duration(r.rng.Int64N(int64(2 * r.startCost)))
		when = fmt.Sprintf("after %v", d)
		select {
		case <-time.After(d):
		case <-done:
			r.t.Logf("%v ended before its kill: %s", args, out.String())
			return
		}
	} else {
		i := watch[r.rng.IntN(len(watch))]
		before, _ := os.ReadFile(r.captionPath(i))
		when = fmt.Sprintf("once img%04d changed", i)
		deadline := time.After(60 * time.Second)
	poll:
		for {
			select {
			case <-done:
				r.t.Logf("%v ended before its kill (%s): %s", args, when, out.String())
				return
			case <-deadline:
				cmd.Process.Kill()
				<-done
				r.t.Fatalf("%v: img%04d never changed: %s", args, i, out.String())
			case <-time.After(200 * time.Microsecond):
				if now, _ := os.ReadFile(r.captionPath(i)); !bytes.Equal(now, before) {
					break poll
				}
			}
		}
		time.Sleep(time.Duration(r.rng.IntN(3000)) * time.Microsecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		r.t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.t.Fatalf("%v did not die after SIGKILL", args)
	}
	r.t.Logf("killed %v %s", args, when)
}

// checkWhole fails unless every file holds exactly its old or its new text, and returns how
// many hold the new one.
func (r *crashRig) checkWhole(old, new []string, what string) int {
	r.t.Helper()
	n := 0
	for i, text := range r.read() {
		switch text {
		case new[i]:
			n++
		case old[i]:
		default:
			r.t.Fatalf("%s: img%04d.txt is torn or foreign: %q (old %q, new %q)", what, i, text, old[i], new[i])
		}
	}
	return n
}

// checkAll fails unless every file holds exactly want.
func (r *crashRig) checkAll(want []string, what string) {
	r.t.Helper()
	for i, text := range r.read() {
		if text != want[i] {
			r.t.Fatalf("%s: img%04d.txt holds %q, want %q", what, i, text, want[i])
		}
	}
}

// notice opens the dataset (caption list) and returns the notice about an unfinished batch, "" when none.
func (r *crashRig) notice() string {
	r.t.Helper()
	_, errs := r.run("list", r.dir)
	if !strings.Contains(errs, "did not finish") {
		return ""
	}
	for _, want := range []string{"notice:", "bulk edit", r.dir} {
		if !strings.Contains(errs, want) {
			r.t.Fatalf("notice lacks %q:\n%s", want, errs)
		}
	}
	return errs
}

// externals counts caption revisions recorded as changed by another program: the test's
// own program is the only writer, so any is a batch write mislabelled.
func (r *crashRig) externals() int {
	r.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(r.data, studio.DBFileName)+"?mode=ro")
	if err != nil {
		r.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM caption_revisions WHERE origin = 'external'`).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

// changing lists the images whose text differs between a and b.
func changing(a, b []string) []int {
	var out []int
	for i := range a {
		if a[i] != b[i] {
			out = append(out, i)
		}
	}
	return out
}

// settle finishes (resume) or rolls back (undo-bulk) the unfinished batch from old to new,
// first killing the settling command itself half the time, and checks every file lands
// exactly on new (resume) or old (roll back).
func (r *crashRig) settle(old, new []string, resume bool) []string {
	r.t.Helper()
	args, want, from := []string{"undo-bulk", r.dir}, old, new
	if resume {
		args, want, from = []string{"bulk", r.dir, "--resume"}, new, old
	}
	if r.rng.IntN(2) == 0 {
		var watch []int
		for i, text := range r.read() {
			if text == from[i] {
				watch = append(watch, i)
			}
		}
		r.killDuring(watch, args...)
		r.checkWhole(old, new, fmt.Sprintf("after killing %v", args))
		if r.notice() == "" {
			// The killed command got to the end: nothing left to do.
			r.checkAll(want, fmt.Sprintf("%v ran to its end", args))
			return want
		}
	}
	out, errs := r.run(args...)
	if resume && !strings.Contains(out, "finished bulk edit") || !resume && !strings.Contains(out, "rolled back bulk edit") {
		r.t.Fatalf("%v said: %s / %s", args, out, errs)
	}
	r.checkAll(want, fmt.Sprintf("after %v", args))
	if n := r.notice(); n != "" {
		r.t.Fatalf("a notice after %v: %s", args, n)
	}
	return want
}

// TestBulkEditSurvivesKills runs `caption bulk` of the real binary over 1,000 captions and
// kills it with SIGKILL at random points, 20 times, then finishes or rolls back each
// interrupted batch (killing that too, half the time): no file is ever lost or torn, the next
// open names the unfinished batch, finishing or rolling back leaves every file at exactly its
// new or exactly its old text, no batch write is taken for an external change, and undo after
// finishing restores all (through a killed undo as well). LORASTUDIO_TEST_SEED replays a run.
func TestBulkEditSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it 20 times")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LORASTUDIO_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("LORASTUDIO_TEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with LORASTUDIO_TEST_SEED=%d)", seed, seed)
	bin := studioBinary(t)
	r := &crashRig{t: t, bin: bin, dir: t.TempDir(), data: t.TempDir(), rng: rand.New(rand.NewPCG(seed, 14))}
	r.cur = make([]string, crashFiles)
	for i := range r.cur {
		writeTestPNG(t, filepath.Join(r.dir, fmt.Sprintf("img%04d.png", i)), 8, 8)
		r.cur[i] = fmt.Sprintf("photo %d, a thing", i)
		if i%7 == 0 {
			r.cur[i] += "\n"
		}
		if err := os.WriteFile(r.captionPath(i), []byte(r.cur[i]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	r.run("list", r.dir)
	r.startCost = time.Since(start)

	const rounds = 20
	for round := 0; round < rounds; round++ {
		tag := fmt.Sprintf("pass%d", round)
		old := r.cur
		new := make([]string, crashFiles)
		for i, c := range old {
			body, eol := strings.TrimSuffix(c, "\n"), ""
			if body != c {
				eol = "\n"
			}
			new[i] = body + ", " + tag + eol
		}
		r.killDuring(changing(old, new), "bulk", r.dir, "--append", tag)
		n := r.checkWhole(old, new, "after the kill of "+tag)
		notice := r.notice()
		if n > 0 && n < crashFiles && notice == "" {
			t.Fatalf("%s: %d of %d captions changed and the next open reports no unfinished batch", tag, n, crashFiles)
		}
		if notice == "" {
			if n == crashFiles {
				r.cur = new // the batch completed before the kill
			}
			continue
		}
		if n > 0 && n < crashFiles {
			r.midBatch++
		}
		for _, want := range []string{"--resume", "undo-bulk", tag} {
			if !strings.Contains(notice, want) {
				t.Fatalf("%s: the notice does not name %q:\n%s", tag, want, notice)
			}
		}
		// A new bulk edit waits for the unfinished one.
		cmd := r.command(false, "bulk", r.dir, "--append", "other")
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "--resume") {
			t.Fatalf("%s: a new bulk edit over an unfinished one: %v\n%s", tag, err, out)
		}
		// Finish or roll back, whichever writes less, so the rounds stay quick;
		// the first two rounds take one path each whatever the kill point.
		resume := n >= crashFiles/2
		if round < 2 {
			resume = round == 0
		}
		r.cur = r.settle(old, new, resume)
		if e := r.externals(); e != 0 {
			t.Fatalf("%s: %d caption revision(s) recorded as external changes: a batch write was mislabelled", tag, e)
		}
	}
	t.Logf("%d of %d kills left a batch half-written", r.midBatch, rounds)
	if r.midBatch < rounds/4 {
		t.Fatalf("only %d of %d kills landed mid-batch: the test did not test", r.midBatch, rounds)
	}

	// Undo after finishing restores all, through a killed undo too.
	old := r.cur
	out, _ := r.run("bulk", r.dir, "--replace", "a thing", "a finished thing")
	if !strings.Contains(out, "changed 1000 caption(s)") {
		t.Fatalf("final bulk: %s", out)
	}
	done := r.read()
	r.killDuring(changing(done, old), "undo-bulk", r.dir)
	r.checkWhole(done, old, "after killing undo-bulk")
	// Run undo-bulk again unless the killed one finished: a kill before it
	// recorded anything leaves the batch done and not undone (no notice,
	// every file at the new text), one mid-way leaves a notice.
	if notice := r.notice(); notice != "" || r.checkWhole(done, old, "after the killed undo") != len(old) {
		if notice != "" && !strings.Contains(notice, "undo of bulk edit") {
			t.Fatalf("the notice after a killed undo: %s", notice)
		}
		r.run("undo-bulk", r.dir)
	}
	r.checkAll(old, "after undo-bulk of the finished batch")
	if e := r.externals(); e != 0 {
		t.Fatalf("%d caption revision(s) recorded as external changes", e)
	}
	if r.notice() != "" {
		t.Fatal("a batch is still unfinished at the end")
	}
}
