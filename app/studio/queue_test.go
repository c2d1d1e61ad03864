package studio

import (
	"context"
	"errors"
	"image"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeGenerator stands in for the engine: each call reports `steps` steps, waiting for a
// token on step before each one, and honours cancellation between steps.
type fakeGenerator struct {
	steps int
	step  chan struct{}
	mu    sync.Mutex
	seeds []uint64
	fail  map[uint64]error // seeds that fail
}

func (f *fakeGenerator) Generate(ctx context.Context, req GenerateRequest, progress func(int, int, image.Image)) (GenerateResult, error) {
	f.mu.Lock()
	f.seeds = append(f.seeds, *req.Seed)
	err := f.fail[*req.Seed]
	f.mu.Unlock()
	for i := 1; i <= f.steps; i++ {
		select {
		case <-ctx.Done():
			return GenerateResult{}, ctx.Err()
		case <-f.step:
		}
		progress(i, f.steps, image.NewGray(image.Rect(0, 0, i, i)))
	}
	if err != nil {
		return GenerateResult{}, err
	}
	return GenerateResult{Path: req.Out, Seed: *req.Seed}, nil
}

// recorder collects job snapshots and waits for one that matches.
type recorder struct {
	mu   sync.Mutex
	cond *sync.Cond
	all  []Job
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) add(j Job) {
	r.mu.Lock()
	r.all = append(r.all, j)
	r.mu.Unlock()
	r.cond.Broadcast()
}

// wait returns the first snapshot of job id in state st, failing after a deadline.
func (r *recorder) wait(t *testing.T, id int64, st JobState) Job {
	t.Helper()
	const limit = 2 * time.Minute // a deadline against hangs, not a speed limit
	deadline := time.Now().Add(limit)
	timer := time.AfterFunc(limit, r.cond.Broadcast)
	defer timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for _, j := range r.all {
			if j.ID == id && j.State == st {
				return j
			}
		}
		var last Job
		for _, j := range r.all {
			if j.ID == id {
				last = j
			}
			if j.ID == id && j.State.Finished() {
				t.Fatalf("job %d finished as %s (%v), never reached %s", id, j.State, j.Err, st)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d never reached %s; last seen %s", id, st, last.State)
		}
		r.cond.Wait()
	}
}

func TestQueueBatchProgressCancel(t *testing.T) {
	gen := &fakeGenerator{steps: 3, step: make(chan struct{}), fail: map[uint64]error{11: errors.New("out of memory")}}
	rec := newRecorder()
	dir := t.TempDir()
	q := NewQueue(gen, func(r GenerateRequest) string { return filepath.Join(dir, "x.png") }, rec.add)
	defer q.Close()

	req := DefaultGenerateRequest()
	req.Width, req.Height, req.Steps = 64, 64, 3
	seed := uint64(10)
	req.Seed = &seed
	jobs, err := q.Add(req, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 3 || *jobs[0].Req.Seed != 10 || *jobs[1].Req.Seed != 11 || *jobs[2].Req.Seed != 12 || jobs[0].Req.Out == "" {
		t.Fatalf("batch = %+v", jobs)
	}
	rec.wait(t, jobs[0].ID, JobRunning)
	if js := q.Jobs(); len(js) != 3 || js[0].State != JobRunning || js[1].State != JobQueued {
		t.Fatalf("Jobs() = %+v", js)
	}
	// Cancel the last waiting job: it never runs.
	if !q.Cancel(jobs[2].ID) {
		t.Fatal("Cancel(waiting) = false")
	}
	rec.wait(t, jobs[2].ID, JobCancelled)
	gen.step <- struct{}{}
	gen.step <- struct{}{}
	gen.step <- struct{}{}
	done := rec.wait(t, jobs[0].ID, JobDone)
	if done.Result.Seed != 10 || done.Step != 3 || done.Steps != 3 || done.Preview == nil || done.Preview.Bounds().Dx() != 3 {
		t.Errorf("done job = %+v", done)
	}
	// The second job fails on its last step; the error is kept.
	rec.wait(t, jobs[1].ID, JobRunning)
	gen.step <- struct{}{}
	gen.step <- struct{}{}
	gen.step <- struct{}{}
	failed := rec.wait(t, jobs[1].ID, JobFailed)
	if failed.Err == nil || failed.Err.Error() != "out of memory" {
		t.Errorf("failed job = %+v", failed)
	}

	// Esc: the running job stops at its next step.
	more, err := q.Add(req, 1)
	if err != nil {
		t.Fatal(err)
	}
	rec.wait(t, more[0].ID, JobRunning)
	gen.step <- struct{}{}
	if !q.CancelRunning() {
		t.Fatal("CancelRunning = false with a job running")
	}
	c := rec.wait(t, more[0].ID, JobCancelled)
	if !errors.Is(c.Err, context.Canceled) || c.Step != 1 {
		t.Errorf("cancelled job = %+v", c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for q.CancelRunning() {
		if time.Now().After(deadline) {
			t.Fatal("the cancelled job is still running")
		}
		time.Sleep(time.Millisecond)
	}
	gen.mu.Lock()
	seeds := gen.seeds
	gen.mu.Unlock()
	if len(seeds) != 3 || seeds[0] != 10 || seeds[1] != 11 || seeds[2] != 10 {
		t.Errorf("generated seeds = %v (the cancelled waiting job must not run)", seeds)
	}

	// Bad requests queue nothing.
	bad := req
	bad.Width = 65
	if _, err := q.Add(bad, 2); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("Add(65 wide) = %v", err)
	}
	if _, err := q.Add(req, 0); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("Add(count 0) = %v", err)
	}
	if js := q.Jobs(); len(js) != 0 {
		t.Errorf("jobs after bad adds = %+v", js)
	}
}

func TestQueueRandomSeedAndClose(t *testing.T) {
	gen := &fakeGenerator{steps: 1, step: make(chan struct{})}
	rec := newRecorder()
	q := NewQueue(gen, func(GenerateRequest) string { return filepath.Join(t.TempDir(), "y.png") }, rec.add)
	req := DefaultGenerateRequest()
	req.Width, req.Height = 64, 64
	jobs, err := q.Add(req, 2)
	if err != nil {
		t.Fatal(err)
	}
	if *jobs[1].Req.Seed != *jobs[0].Req.Seed+1 || *jobs[0].Req.Seed > 0xffffffff {
		t.Errorf("random batch seeds %d, %d", *jobs[0].Req.Seed, *jobs[1].Req.Seed)
	}
	rec.wait(t, jobs[0].ID, JobRunning)
	q.Close()
	rec.wait(t, jobs[0].ID, JobCancelled)
	rec.wait(t, jobs[1].ID, JobCancelled)
	if _, err := q.Add(req, 1); !errors.Is(err, ErrQueueClosed) {
		t.Errorf("Add after Close = %v", err)
	}
}

// TestPlaygroundQueueGenerates runs a real request on the demo model through the studio's
// queue: the image lands under <data>/outputs and in the gallery.
func TestPlaygroundQueueGenerates(t *testing.T) {
	s := openStudio(t)
	rec := newRecorder()
	q, g := s.NewPlaygroundQueue(rec.add)
	defer g.Close()
	defer q.Close()
	req := demoRequest("", 5)
	jobs, err := q.Add(req, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rel, err := filepath.Rel(filepath.Join(s.DataDir(), OutputsDir), jobs[0].Req.Out); err != nil || filepath.IsAbs(rel) || rel[:2] == ".." {
		t.Errorf("output %s is not under the outputs folder", jobs[0].Req.Out)
	}
	done := rec.wait(t, jobs[0].ID, JobDone)
	if done.Result.GenerationID == 0 || done.Steps != 2 {
		t.Fatalf("job = %+v", done)
	}
	items, err := s.Gallery(GalleryFilter{}, 0, 1)
	if err != nil || len(items) != 1 || items[0].File != jobs[0].Req.Out || items[0].Seed != 5 {
		t.Fatalf("gallery = %+v, %v", items, err)
	}
}

func TestSDXLSizes(t *testing.T) {
	if len(SDXLSizes) != 9 {
		t.Fatalf("%d presets", len(SDXLSizes))
	}
	for _, s := range SDXLSizes {
		if err := CheckSize(s.Width, s.Height); err != nil {
			t.Error(err)
		}
		// About one megapixel, as SDXL was trained.
		if px := s.Width * s.Height; px < 960*960 || px > 1024*1024 {
			t.Errorf("%v has %d pixels", s, px)
		}
	}
	for _, bad := range []Size{{0, 8}, {8, -8}, {1020, 1024}, {1024, 1030}} {
		if err := CheckSize(bad.Width, bad.Height); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("CheckSize(%v) = %v", bad, err)
		}
	}
}
