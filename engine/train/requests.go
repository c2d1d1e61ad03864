package train

import (
	"context"

	"lorastudio/engine/sdxl"
	"lorastudio/engine/tensor"
	"lorastudio/engine/train/dataset"
)

// Request asks a running Run for extra work: a checkpoint or samples now,
// between two scheduled ones (the Train screen's Save now and Sample now).
type Request int

// The requests a run takes.
const (
	// SaveNow writes a numbered LoRA file and a resumable state of the
	// current step, as SaveEvery does (a Checkpoint event reports it).
	SaveNow Request = iota + 1
	// SampleNow renders the sample prompts once with the live LoRA, as
	// SampleEvery does (a Sample event per image).
	SampleNow
)

// String names the request for messages.
func (q Request) String() string {
	switch q {
	case SaveNow:
		return "save now"
	case SampleNow:
		return "sample now"
	}
	return "unknown request"
}

// Options are Run's optional inputs.
type Options struct {
	// Requests, when set, carries SaveNow and SampleNow. The run reads it
	// only after an optimizer step, without waiting, so a request never
	// changes what a step computes: writing a checkpoint reads the weights
	// and the optimizer, sampling runs the UNet in eval mode on fresh
	// inputs, and every random draw of training comes from (seed,
	// micro-batch), never from a stream a request could advance. The losses
	// and the final weights are those of the run without requests, bit for
	// bit (TestRequestsKeepTheRunIdentical). Requests arriving during a
	// step wait for its end; repeats of one kind before that coalesce, and
	// one that finds the step already saved or sampled (by the schedule) is
	// done. A closed channel is no longer read.
	Requests <-chan Request
}

// RunWith is Run with opts (requests taken mid-run).
func RunWith(ctx context.Context, be tensor.Backend, src *sdxl.Source, imgs []dataset.Image, cfg Config, runDir string, resume bool, events func(Event), opts Options) (Result, error) {
	return run(ctx, be, src, imgs, cfg, runDir, resume, events, false, opts)
}

// pendingRequests drains the requests that arrived since the last step,
// without waiting.
func (r *runner) pendingRequests() (save, sample bool) {
	for r.requests != nil {
		select {
		case q, ok := <-r.requests:
			if !ok {
				r.requests = nil
				return
			}
			switch q {
			case SaveNow:
				save = true
			case SampleNow:
				sample = true
			}
		default:
			return
		}
	}
	return
}

// serveRequests does what was asked since the last step: a checkpoint of
// this step unless one was written, samples of this step unless they were
// rendered.
func (r *runner) serveRequests() error {
	save, sample := r.pendingRequests()
	if save && (r.lastState == "" || !samePath(r.lastState, statePath(r.dir, r.step))) {
		if err := r.checkpoint(); err != nil {
			return err
		}
	}
	if sample && r.sampledAt != r.step {
		if err := r.sample(); err != nil {
			return err
		}
	}
	return nil
}
