package ui

import (
	"lorastudio/app/studio"
)

// trainService is what the Train screen and the Runs list ask of the
// studio. studioTrainService is the real one; tests give a fake job.
type trainService interface {
	// Preflight checks a request and estimates its run (no weight loaded).
	Preflight(req studio.TrainRequest) (studio.TrainPreflight, error)
	// Start records and starts a new run in the background.
	Start(req studio.TrainRequest) (trainJob, error)
	// Resume continues a stopped or failed run in the background.
	Resume(runID int64, device string) (trainJob, error)
	Runs() ([]studio.RunSummary, error)
	TrashedRuns() ([]studio.RunSummary, error)
	Run(id int64) (studio.RunDetail, error)
	DeleteRun(id int64) error
	RestoreRun(id int64) error
	DeviceMemory(kind string) (studio.DeviceMemory, error)
	RecentModels(n int) ([]string, error)
	Presets() ([]studio.TrainPreset, error)
	SavePreset(name string, cfg studio.TrainConfig) error
	// Export writes the folder that trains a request with kohya's
	// sd-scripts under accelerate (issue 13).
	Export(req studio.ExportRequest) (*studio.ExportResult, error)
}

// trainJob is a run going on in the background (studio.TrainJob).
type trainJob interface {
	RunID() int64
	// Events delivers the run's events and is closed after the last.
	Events() <-chan studio.TrainEvent
	// Stop asks for a resumable stop (a checkpoint is saved).
	Stop()
	// SampleNow and SaveNow ask for samples or a checkpoint at the end of
	// the current step; false when the run did not take the request.
	SampleNow() bool
	SaveNow() bool
	// Wait returns the run's result once it has ended.
	Wait() (studio.TrainResult, error)
}

// studioTrainService is trainService on a real studio.
type studioTrainService struct{ st *studio.Studio }

func (s studioTrainService) Preflight(req studio.TrainRequest) (studio.TrainPreflight, error) {
	return s.st.Preflight(req)
}

func (s studioTrainService) Start(req studio.TrainRequest) (trainJob, error) {
	p, err := s.st.PlanTrain(req)
	if err != nil {
		return nil, err
	}
	j, err := s.st.StartTrain(p)
	if err != nil {
		return nil, err
	}
	return j, nil
}

func (s studioTrainService) Resume(runID int64, device string) (trainJob, error) {
	j, err := s.st.StartResume(studio.ResumeRequest{RunID: runID, Device: device})
	if err != nil {
		return nil, err
	}
	return j, nil
}

func (s studioTrainService) Runs() ([]studio.RunSummary, error)        { return s.st.VisibleRuns() }
func (s studioTrainService) TrashedRuns() ([]studio.RunSummary, error) { return s.st.TrashedRuns() }
func (s studioTrainService) Run(id int64) (studio.RunDetail, error)    { return s.st.Run(id) }
func (s studioTrainService) DeleteRun(id int64) error                  { return s.st.DeleteRun(id) }
func (s studioTrainService) RestoreRun(id int64) error                 { return s.st.RestoreRun(id) }
func (s studioTrainService) DeviceMemory(kind string) (studio.DeviceMemory, error) {
	return s.st.DeviceMemoryOf(kind)
}
func (s studioTrainService) RecentModels(n int) ([]string, error) { return s.st.RecentModels(n) }
func (s studioTrainService) Presets() ([]studio.TrainPreset, error) {
	return s.st.TrainPresets()
}
func (s studioTrainService) SavePreset(name string, cfg studio.TrainConfig) error {
	return s.st.SaveTrainPreset(name, cfg)
}

func (s studioTrainService) Export(req studio.ExportRequest) (*studio.ExportResult, error) {
	return s.st.Export(req)
}
