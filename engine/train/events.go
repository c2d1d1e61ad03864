package train

import (
	"errors"
	"time"
)

// ErrStopped is returned by Run when its context was cancelled: the run saved
// a resumable checkpoint (state and LoRA file) before returning, so Run with
// resume continues exactly where it stopped.
var ErrStopped = errors.New("train: stopped")

// EventKind says what an Event reports.
type EventKind int

// The kinds of Event, in the order a run emits them.
const (
	// Preparing: loading the model, filling the caches (Message says what).
	Preparing EventKind = iota
	// Step: one optimizer step done (Step, Loss, SmoothLoss, LR, ItPerSec, ETA, memory).
	Step
	// Sample: one sample image written (Path, Prompt).
	Sample
	// Checkpoint: a numbered LoRA file and a resumable state written (Path is the LoRA file).
	Checkpoint
	// Done: training finished; Path is the final LoRA output.
	Done
	// Stopped: the context was cancelled; a checkpoint was saved (Path).
	Stopped
	// Failed: the run stopped on an error (Message).
	Failed
)

// String returns the kind's lower-case name, as stored by app/studio.
func (k EventKind) String() string {
	switch k {
	case Preparing:
		return "preparing"
	case Step:
		return "step"
	case Sample:
		return "sample"
	case Checkpoint:
		return "checkpoint"
	case Done:
		return "done"
	case Stopped:
		return "stopped"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Event is one progress report of a run. Only the fields its Kind names are
// set. Step counts optimizer steps from 1 (the step just done) across
// resumes; Total is the planned number of steps.
type Event struct {
	Kind        EventKind
	Step, Total int
	Epoch       int // 0-based epoch the step belongs to
	// Loss is the step's loss (summed over its accumulated micro-batches,
	// each weighted 1/GradAccum); SmoothLoss an exponential moving average
	// of it (factor 0.9, carried across resumes by the state), LR the
	// learning rate the step used.
	Loss, SmoothLoss, LR float64
	ItPerSec             float64       // optimizer steps per second, averaged over this session
	ETA                  time.Duration // remaining steps at ItPerSec
	DeviceBytes          int64         // device memory in use after the step (backend's count)
	HostBytes            int64         // host memory of the process (Go heap in use)
	Path                 string        // sample image / checkpoint LoRA / final output
	Prompt               string        // Sample: its prompt
	Message              string        // Preparing / Failed: what happens or went wrong
}

// Result is what a finished (or stopped) run leaves behind.
type Result struct {
	// Steps is the number of optimizer steps done in total (across resumes).
	Steps int
	// Epoch is the epoch the last step belonged to.
	Epoch int
	// Loss is the last step's loss, SmoothLoss its moving average.
	Loss, SmoothLoss float64
	// Output is the final LoRA file (or peft folder); empty when stopped.
	Output string
	// Checkpoint is the last checkpoint's LoRA file; State its state file.
	Checkpoint, State string
	// Samples lists every sample image written by this session.
	Samples []string
}
