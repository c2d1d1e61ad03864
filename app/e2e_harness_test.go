package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end harness: a program under test whose exit is observed once
// and remembered, so that every later wait (a condition, the cleanup) sees it
// too instead of blocking on a channel that was already drained; whose
// output is kept and printed whenever something goes wrong; and whose every
// wait has a deadline.

// outputBuffer is the output of a process: written by exec's copying
// goroutine while the test reads it.
type outputBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends to the buffer.
func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *outputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a started program under test.
type process struct {
	name string
	cmd  *exec.Cmd
	out  outputBuffer  // stdout and stderr, interleaved as written
	done chan struct{} // closed once the program has exited and err is set
	err  error         // cmd.Wait's result; read only after done is closed
}

// startProcess starts cmd (its Stdout and Stderr are taken over) in a
// process group of its own, so stop reaches any children it started too.
func startProcess(name string, cmd *exec.Cmd) (*process, error) {
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A child that outlives the program and keeps its output open must not
	// keep Wait from returning.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the program has exited, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// report is the program's output for a failure message.
func (p *process) report() string {
	out := p.out.String()
	if strings.TrimSpace(out) == "" {
		return fmt.Sprintf("%s printed nothing", p.name)
	}
	return fmt.Sprintf("%s output:\n%s", p.name, out)
}

// waitFor polls cond every 250 ms until it holds. It returns an error, with
// the program's output, when the program exits first or at the deadline.
func (p *process) waitFor(limit time.Duration, what string, cond func() bool) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-p.done:
			if cond() { // it may have finished what we wait for, then exited
				return nil
			}
			return fmt.Errorf("%s exited (%v) while waiting for %s; %s", p.name, p.err, what, p.report())
		case <-deadline.C:
			return fmt.Errorf("no %s after %v (%s still running); %s", what, limit, p.name, p.report())
		case <-tick.C:
		}
	}
}

// killWait is how long stop waits for a program's exit after SIGKILL: the
// exit comes at once; the deadline only keeps a stuck kernel from hanging
// the test.
const killWait = time.Minute

// stop ends the program if it still runs: SIGTERM to its process group,
// then after grace SIGKILL. It returns at once when the program has
// already exited (however often it is called), and an error when it is
// still there killWait after SIGKILL.
func (p *process) stop(grace time.Duration) error {
	if gone, _ := p.exited(); gone {
		return nil
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("%s (pid %d) did not exit %v after SIGTERM and %v after SIGKILL", p.name, pgid, grace, killWait)
	}
}

// mustWait is waitFor that fails the test.
func mustWait(t *testing.T, p *process, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := p.waitFor(limit, what, cond); err != nil {
		t.Fatal(err)
	}
}

// startXvfb starts an X server on a display it picks itself (-displayfd:
// no race with another server starting at the same time) and stops it when
// the test ends. It returns the display once the server accepts clients.
func startXvfb(t *testing.T, w, h int) string {
	t.Helper()
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", fmt.Sprintf("%dx%dx24", w, h), "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{wr} // fd 3
	x, err := startProcess("Xvfb", cmd)
	wr.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := x.stop(30 * time.Second); err != nil {
			t.Errorf("%v; %s", err, x.report())
		}
	})
	// Xvfb writes the display number when it is ready, or exits (closing
	// the pipe) when it cannot start.
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if n == "" {
			x.waitFor(10*time.Second, "Xvfb's exit", func() bool { gone, _ := x.exited(); return gone })
			_, err := x.exited()
			t.Fatalf("Xvfb did not start (%v); %s", err, x.report())
		}
		return ":" + n
	case <-time.After(60 * time.Second):
		t.Fatalf("Xvfb gave no display in 60 s; %s", x.report())
	}
	return ""
}

// xClient runs X clients (xdotool, import) on display, each with a deadline
// so that a stuck server fails the test instead of hanging it.
func xClient(display string) func(args ...string) (string, error) {
	return func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, args[0], args[1:]...)
		c.Env = append(os.Environ(), "DISPLAY="+display)
		out, err := c.CombinedOutput()
		if ctx.Err() != nil {
			err = fmt.Errorf("%s: no answer in 60 s: %w", args[0], ctx.Err())
		}
		return strings.TrimSpace(string(out)), err
	}
}

// TestE2EHarnessReportsEarlyExit runs the harness on a program that exits
// at once, as the studio did on a fresh machine: the wait for its window
// returns the exit with everything it printed, and the cleanup that follows
// (which once blocked forever on the exit already taken) returns too.
func TestE2EHarnessReportsEarlyExit(t *testing.T) {
	cmd := exec.Command("sh", "-c", "echo 'starting the studio'; echo 'cannot open the window: GLX missing' >&2; exit 3")
	p, err := startProcess("fake studio", cmd)
	if err != nil {
		t.Fatal(err)
	}
	err = p.waitFor(5*time.Minute, "the LoRA Studio window", func() bool { return false })
	var exit *exec.ExitError
	if gone, werr := p.exited(); !gone || !errors.As(werr, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("waitFor returned %v before the program's exit was seen (exited %v, %v)", err, gone, werr)
	}
	for _, want := range []string{"exited (exit status 3)", "the LoRA Studio window", "starting the studio", "GLX missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("waitFor error %q does not contain %q", err, want)
		}
	}
	// Every later wait sees the remembered exit; none blocks.
	finished := make(chan error, 1)
	go func() {
		e1 := p.waitFor(5*time.Minute, "a second condition", func() bool { return false })
		e2, e3 := p.stop(time.Hour), p.stop(time.Hour)
		if e1 == nil || !strings.Contains(e1.Error(), "GLX missing") || e2 != nil || e3 != nil {
			finished <- fmt.Errorf("second wait %v, stop %v, stop again %v", e1, e2, e3)
			return
		}
		finished <- nil
	}()
	select {
	case err := <-finished:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * killWait):
		t.Fatal("waiting again after the program's exit had been seen did not return: the exit is not remembered")
	}
	// A condition met before the exit is success, not an early-exit failure.
	q, err := startProcess("quick", exec.Command("sh", "-c", "echo done"))
	if err != nil {
		t.Fatal(err)
	}
	if err := q.waitFor(time.Minute, "its output", func() bool { return strings.Contains(q.out.String(), "done") }); err != nil {
		t.Fatal(err)
	}
}

// TestE2EHarnessStopsAStuckProgram: stop ends a program that ignores SIGTERM
// and whose child holds its output open, and then reports it gone.
func TestE2EHarnessStopsAStuckProgram(t *testing.T) {
	p, err := startProcess("stuck", exec.Command("sh", "-c", `trap "" TERM; echo ready; sleep 600 & wait`))
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, p, time.Minute, "ready", func() bool { return strings.Contains(p.out.String(), "ready") })
	if err := p.stop(time.Second); err != nil {
		t.Fatal(err)
	}
	if gone, err := p.exited(); !gone || err == nil {
		t.Fatalf("after stop: exited %v, %v; want killed", gone, err)
	}
	if err := p.waitFor(time.Minute, "anything", func() bool { return false }); err == nil || !strings.Contains(err.Error(), "ready") {
		t.Fatalf("waitFor on a stopped program: %v", err)
	}
}
