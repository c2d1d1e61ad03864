package studio

import (
	"context"
	"sync"

	"lorastudio/engine/train"
)

// trainRequestSlots is how many Save now / Sample now requests wait for the
// end of a step; the Train screen keeps at most one of each in flight.
const trainRequestSlots = 8

// TrainJob is a training run on a background goroutine, as the Train screen
// runs it: its events arrive on a channel the screen drains (applying them
// with fyne.Do), Stop asks for a resumable stop, SaveNow and SampleNow for
// a checkpoint or samples at the end of the current step, Wait gives the
// result.
type TrainJob struct {
	runID  int64
	cancel context.CancelFunc
	reqs   chan train.Request
	out    chan TrainEvent
	done   chan struct{}
	res    TrainResult
	err    error

	mu      sync.Mutex
	queue   []TrainEvent
	ended   bool          // the run returned: the pump closes out once the queue is empty
	wake    chan struct{} // a push or the end, for the pump
	latest  TrainEvent
	hasLast bool
}

// StartTrain records plan as a new run and trains it in the background
// (Train's work: every event recorded in the database). The plan is closed
// when the run ends.
func (s *Studio) StartTrain(p *TrainPlan) (*TrainJob, error) {
	r, err := s.createRun(p)
	if err != nil {
		p.Close()
		return nil, err
	}
	return startJob(r.ID, func(ctx context.Context, reqs <-chan train.Request, on func(TrainEvent)) (TrainResult, error) {
		defer p.Close()
		return s.executeWith(ctx, p, r, false, reqs, on)
	}), nil
}

// StartResume continues a stopped, failed or killed run in the background
// (see PlanResume for what is checked first).
func (s *Studio) StartResume(req ResumeRequest) (*TrainJob, error) {
	p, r, err := s.PlanResume(req)
	if err != nil {
		return nil, err
	}
	return startJob(r.ID, func(ctx context.Context, reqs <-chan train.Request, on func(TrainEvent)) (TrainResult, error) {
		defer p.Close()
		return s.executeWith(ctx, p, r, true, reqs, on)
	}), nil
}

// startJob runs work on a goroutine with a cancellable context and the
// job's requests.
func startJob(runID int64, work func(context.Context, <-chan train.Request, func(TrainEvent)) (TrainResult, error)) *TrainJob {
	ctx, cancel := context.WithCancel(context.Background())
	j := &TrainJob{runID: runID, cancel: cancel, reqs: make(chan train.Request, trainRequestSlots),
		out: make(chan TrainEvent), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go j.pump()
	go func() {
		j.res, j.err = work(ctx, j.reqs, j.push)
		cancel()
		close(j.done)
		j.mu.Lock()
		j.ended = true
		j.mu.Unlock()
		j.signal()
	}()
	return j
}

// RunID is the job's run in the database.
func (j *TrainJob) RunID() int64 { return j.runID }

// Events delivers the run's events in order and is closed after the last.
// Training never waits for the reader: while it lags, consecutive step
// events are merged into the newest (a chart loses no run state, every step
// is in the database); samples, checkpoints and the end are always
// delivered.
func (j *TrainJob) Events() <-chan TrainEvent { return j.out }

// Latest returns the newest event, for a screen opened on a running job.
func (j *TrainJob) Latest() (TrainEvent, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.latest, j.hasLast
}

// Stop asks the run to stop after the current step; it saves a resumable
// checkpoint and ends as stopped. Wait for the result.
func (j *TrainJob) Stop() { j.cancel() }

// SaveNow asks the run for a numbered LoRA file and a resumable state at
// the end of the current step (a TrainCheckpoint event, recorded as run
// files like a scheduled checkpoint). It never waits and never changes the
// run's losses or weights. It reports false when the run has ended or
// requests are already waiting beyond what a step serves.
func (j *TrainJob) SaveNow() bool { return j.request(train.SaveNow) }

// SampleNow asks the run to render its sample prompts once with the live
// LoRA at the end of the current step (TrainSample events, recorded as
// samples like scheduled ones); see SaveNow.
func (j *TrainJob) SampleNow() bool { return j.request(train.SampleNow) }

// request queues q for the run without waiting.
func (j *TrainJob) request(q train.Request) bool {
	select {
	case <-j.done:
		return false
	default:
	}
	select {
	case j.reqs <- q:
		return true
	default:
		return false
	}
}

// Done is closed when the run has ended.
func (j *TrainJob) Done() <-chan struct{} { return j.done }

// Wait blocks until the run ends and returns its result.
func (j *TrainJob) Wait() (TrainResult, error) {
	<-j.done
	return j.res, j.err
}

// push queues an event for the reader (called on the training goroutine).
func (j *TrainJob) push(e TrainEvent) {
	j.mu.Lock()
	if n := len(j.queue); n > 0 && e.Kind == TrainStep && j.queue[n-1].Kind == TrainStep {
		j.queue[n-1] = e
	} else {
		j.queue = append(j.queue, e)
	}
	j.latest, j.hasLast = e, true
	j.mu.Unlock()
	j.signal()
}

// signal wakes the pump without blocking.
func (j *TrainJob) signal() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// pump hands queued events to the reader and closes Events after the end.
func (j *TrainJob) pump() {
	for range j.wake {
		for {
			j.mu.Lock()
			if len(j.queue) == 0 {
				ended := j.ended
				j.mu.Unlock()
				if ended {
					close(j.out)
					return
				}
				break
			}
			e := j.queue[0]
			j.queue = j.queue[1:]
			j.mu.Unlock()
			j.out <- e
		}
	}
}
