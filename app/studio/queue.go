package studio

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"path/filepath"
	"sync"
	"time"
)

// OutputsDir is the folder under the data directory where the Playground writes its images,
// one subfolder a day.
const OutputsDir = "outputs"

// MaxBatch is the most images one Generate press may queue.
const MaxBatch = 100

// ImageGenerator runs one generation request; *Generator is the real one, tests use fakes.
type ImageGenerator interface {
	Generate(ctx context.Context, req GenerateRequest, progress func(step, steps int, preview image.Image)) (GenerateResult, error)
}

// JobState is where a queued request is in its life.
type JobState int

// The states of a Job, in the order they happen.
const (
	JobQueued JobState = iota
	JobRunning
	JobDone
	JobFailed
	JobCancelled
)

// String names the state for people.
func (s JobState) String() string {
	switch s {
	case JobQueued:
		return "queued"
	case JobRunning:
		return "running"
	case JobDone:
		return "done"
	case JobFailed:
		return "failed"
	case JobCancelled:
		return "cancelled"
	}
	return fmt.Sprintf("JobState(%d)", int(s))
}

// Finished reports whether the job will not change any more.
func (s JobState) Finished() bool { return s >= JobDone }

// Job is a snapshot of one queued request.
type Job struct {
	ID         int64 // unique in its queue, increasing
	Req        GenerateRequest
	State      JobState
	Step       int         // steps done
	Steps      int         // steps in all (0 until the first progress report)
	SecPerStep float64     // seconds a step, measured from the second step on (0 until known)
	Preview    image.Image // the latent decoded at the last step, nil until one arrives
	Result     GenerateResult
	Err        error // why it failed or was cancelled
}

// Queue runs generation requests one after the other on a background goroutine. Every
// change of a job (queued, started, a step, finished) is reported to onChange with a
// snapshot, from the goroutine that made the change: a UI hands it to its own thread. It is
// safe for concurrent use.
type Queue struct {
	gen      ImageGenerator
	out      func(GenerateRequest) string
	onChange func(Job)

	mu      sync.Mutex
	wake    chan struct{} // signalled when a job is added or the queue closes
	waiting []*Job
	running *Job
	cancel  context.CancelFunc // cancels the running job
	next    int64
	closed  bool
	done    chan struct{}
}

// NewQueue starts a queue running requests on gen. out names the output file of a request
// that has none (nil: such a request is refused). onChange may be nil.
func NewQueue(gen ImageGenerator, out func(GenerateRequest) string, onChange func(Job)) *Queue {
	if onChange == nil {
		onChange = func(Job) {}
	}
	q := &Queue{gen: gen, out: out, onChange: onChange, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go q.loop()
	return q
}

// NewPlaygroundQueue is a queue on a Generator of the studio (kept between requests, so the
// model loads once) that writes images without an output path to PlaygroundOutput.
func (s *Studio) NewPlaygroundQueue(onChange func(Job)) (*Queue, *Generator) {
	g := s.NewGenerator()
	return NewQueue(g, func(r GenerateRequest) string { return s.PlaygroundOutput(r, time.Now()) }, onChange), g
}

// PlaygroundOutput is where the Playground writes an image made at t:
// <data>/outputs/<date>/<time>-<seed>.png.
func (s *Studio) PlaygroundOutput(r GenerateRequest, t time.Time) string {
	seed := "random"
	if r.Seed != nil {
		seed = fmt.Sprint(*r.Seed)
	}
	return filepath.Join(s.dataDir, OutputsDir, t.Format("2006-01-02"), t.Format("150405.000000000")+"-"+seed+".png")
}

// RandomSeed draws a seed as A1111 does: 32 random bits, so it fits every UI's seed field.
func RandomSeed() uint64 {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; the clock is a fine fallback.
		return uint64(time.Now().UnixNano()) & 0xffffffff
	}
	return uint64(binary.LittleEndian.Uint32(b[:]))
}

// ErrQueueClosed is returned by Add after Close.
var ErrQueueClosed = errors.New("the generation queue is closed")

// Add queues count images of req with the seeds seed, seed+1, … (a random first seed when
// req has none) and returns their jobs. Every request is checked first, so a bad one queues
// nothing and the error says why.
func (q *Queue) Add(req GenerateRequest, count int) ([]Job, error) {
	if count < 1 || count > MaxBatch {
		return nil, invalid("batch count %d: want 1 to %d", count, MaxBatch)
	}
	first := RandomSeed()
	if req.Seed != nil {
		first = *req.Seed
	}
	reqs := make([]GenerateRequest, count)
	for i := range reqs {
		r := req
		r.LoRAs = append([]LoRASpec(nil), req.LoRAs...)
		seed := first + uint64(i)
		r.Seed = &seed
		if r.Out == "" && q.out != nil {
			r.Out = q.out(r)
		}
		if count > 1 && req.Out != "" {
			return nil, invalid("a batch of %d images cannot share the output file %s", count, req.Out)
		}
		if err := r.Validate(); err != nil {
			return nil, err
		}
		reqs[i] = r
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, ErrQueueClosed
	}
	out := make([]Job, count)
	for i, r := range reqs {
		q.next++
		j := &Job{ID: q.next, Req: r, State: JobQueued}
		q.waiting = append(q.waiting, j)
		out[i] = *j
	}
	q.mu.Unlock()
	for _, j := range out {
		q.onChange(j)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return out, nil
}

// Jobs returns the running job (first) and the waiting ones, in the order they will run.
func (q *Queue) Jobs() []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Job
	if q.running != nil {
		out = append(out, *q.running)
	}
	for _, j := range q.waiting {
		out = append(out, *j)
	}
	return out
}

// Cancel cancels job id: a waiting job leaves the queue at once, the running one stops at
// its next step. It reports whether there was such a job still to cancel.
func (q *Queue) Cancel(id int64) bool {
	q.mu.Lock()
	if q.running != nil && q.running.ID == id {
		q.cancel()
		q.mu.Unlock()
		return true
	}
	for i, j := range q.waiting {
		if j.ID == id {
			q.waiting = append(q.waiting[:i:i], q.waiting[i+1:]...)
			j.State, j.Err = JobCancelled, context.Canceled
			snap := *j
			q.mu.Unlock()
			q.onChange(snap)
			return true
		}
	}
	q.mu.Unlock()
	return false
}

// CancelRunning cancels the running job, if any, and reports whether there was one.
func (q *Queue) CancelRunning() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running == nil {
		return false
	}
	q.cancel()
	return true
}

// Close cancels every job and waits for the running one to stop. Jobs still waiting are
// reported as cancelled.
func (q *Queue) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		<-q.done
		return
	}
	q.closed = true
	waiting := q.waiting
	q.waiting = nil
	if q.running != nil {
		q.cancel()
	}
	q.mu.Unlock()
	for _, j := range waiting {
		j.State, j.Err = JobCancelled, context.Canceled
		q.onChange(*j)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.done
}

// loop runs waiting jobs until Close.
func (q *Queue) loop() {
	defer close(q.done)
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return
		}
		if len(q.waiting) == 0 {
			q.mu.Unlock()
			<-q.wake
			continue
		}
		j := q.waiting[0]
		q.waiting = q.waiting[1:]
		ctx, cancel := context.WithCancel(context.Background())
		q.running, q.cancel = j, cancel
		j.State = JobRunning
		snap := *j
		q.mu.Unlock()
		q.onChange(snap)
		q.run(ctx, j)
		cancel()
	}
}

// run generates one job, reporting each step.
func (q *Queue) run(ctx context.Context, j *Job) {
	start := time.Now()
	var second time.Time // when the first step ended: later steps time the sampler alone
	res, err := q.gen.Generate(ctx, j.Req, func(step, steps int, preview image.Image) {
		now := time.Now()
		q.mu.Lock()
		j.Step, j.Steps = step, steps
		if preview != nil {
			j.Preview = preview
		}
		switch {
		case step <= 1:
			second = now
			j.SecPerStep = now.Sub(start).Seconds()
		default:
			j.SecPerStep = now.Sub(second).Seconds() / float64(step-1)
		}
		snap := *j
		q.mu.Unlock()
		q.onChange(snap)
	})
	q.mu.Lock()
	switch {
	case err == nil:
		j.State, j.Result = JobDone, res
	case ctx.Err() != nil:
		j.State, j.Err = JobCancelled, err
	default:
		j.State, j.Err = JobFailed, err
	}
	q.running, q.cancel = nil, nil
	snap := *j
	q.mu.Unlock()
	q.onChange(snap)
}

// Size is an image size in pixels.
type Size struct{ Width, Height int }

// String writes the size as WIDTHxHEIGHT.
func (s Size) String() string { return fmt.Sprintf("%dx%d", s.Width, s.Height) }

// SDXLSizes are the nine sizes SDXL was trained at (about one megapixel each), square first,
// then landscape and portrait pairs growing longer.
var SDXLSizes = []Size{{1024, 1024}, {1152, 896}, {896, 1152}, {1216, 832}, {832, 1216}, {1344, 768}, {768, 1344}, {1536, 640}, {640, 1536}}

// CheckSize says what is wrong with a custom size: both sides positive multiples of 8 (the
// VAE halves the image three times), nil when it is fine.
func CheckSize(width, height int) error {
	if width <= 0 || height <= 0 || width%8 != 0 || height%8 != 0 {
		return invalid("size %dx%d: width and height must be positive multiples of 8", width, height)
	}
	return nil
}
