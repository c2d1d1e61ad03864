package ui

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// exportButton is the open export dialog's Export button.
func exportButton(t *testing.T, w fyne.Window) *widget.Button {
	t.Helper()
	b := findButton(w.Canvas().Overlays().Top(), "Export")
	if b == nil {
		t.Fatal("no Export button in the export dialog")
	}
	return b
}

// TestTrainExportForCluster fills the export dialog on the fake service:
// Export waits for a folder and whole counts, the request carries the
// form's settings and the cluster's shape, and the report shows what was
// written and what does not carry over; a failed export is shown in red.
func TestTrainExportForCluster(t *testing.T) {
	s, f, w := newFakeTrainScreen(t)
	s.form.entry("max-steps").SetText("6")
	s.form.entry("rank").SetText("16")
	s.name.SetText("cats")
	s.model.SetText("/cluster/sdxl")
	test.Tap(s.exportBtn)
	e := s.export
	if e == nil {
		t.Fatal("no export dialog")
	}
	if e.model.Text != "/cluster/sdxl" {
		t.Errorf("the dialog's model %q, want the form's", e.model.Text)
	}
	if !exportButton(t, w).Disabled() {
		t.Fatal("Export is enabled without a folder")
	}
	out := filepath.Join(t.TempDir(), "export")
	e.folder.SetText(out)
	if exportButton(t, w).Disabled() {
		t.Fatal("Export is disabled with a folder and the default counts")
	}
	e.processes.SetText("0")
	if !exportButton(t, w).Disabled() {
		t.Fatal("Export is enabled with 0 processes")
	}
	e.processes.SetText("4")
	e.machines.SetText("2")
	e.mainIP.SetText("10.0.0.1")
	e.precision.SetSelected("bf16")
	test.Tap(exportButton(t, w))
	waitFor(t, "the export's report", func() (bool, string) { return s.exportReport != nil, s.status.Text })
	got := f.exported()
	if len(got) != 1 {
		t.Fatalf("%d exports", len(got))
	}
	r := got[0]
	if r.To != out || r.Dataset != s.dataset || r.Model != "/cluster/sdxl" || r.Name != "cats" || r.NumProcesses != 4 || r.NumMachines != 2 ||
		r.MainProcessIP != "10.0.0.1" || r.MixedPrecision != "bf16" || r.Config.MaxSteps != 6 || r.Config.Rank != 16 {
		t.Fatalf("export request %+v", r)
	}
	report := s.exportReport.Text
	for _, want := range []string{"Wrote " + out, "train_config.toml", "launch.sh", "dataset/2_cats: 2 images × 2 repeats",
		"6 optimizer steps on each of 4 processes", "What does not carry over to sd-scripts", `targets "attn": networks.lora trains every Linear`,
		"lorastudio train import " + out} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
	if s.status.Importance != widget.SuccessImportance || !strings.Contains(s.status.Text, "Exported for a cluster to "+out) {
		t.Errorf("status %q", s.status.Text)
	}

	f.mu.Lock()
	f.exportErr = errors.New("invalid export request: 2 machines need --main-process-ip")
	f.mu.Unlock()
	test.Tap(s.exportBtn)
	s.export.folder.SetText(out)
	test.Tap(exportButton(t, w))
	waitFor(t, "the failure", func() (bool, string) {
		return s.status.Importance == widget.DangerImportance && strings.Contains(s.status.Text, "main-process-ip"), s.status.Text
	})
}

// TestTrainExportWritesFolder exports from the screen through a real
// studio: the files the report names are on disk, and the report carries
// the export's own notes and the image it left out.
func TestTrainExportWritesFolder(t *testing.T) {
	test.NewTempApp(t)
	st, err := studio.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := test.NewTempWindow(t, nil)
	s := newTrainScreen(w, studioTrainService{st})
	w.SetContent(s.Content())
	w.Resize(fyne.NewSize(1400, 900))
	s.model.SetText("stabilityai/stable-diffusion-xl-base-1.0") // a repo id: written as given
	s.SetDataset(makeDataset(t))
	s.allowUncap.SetChecked(true)
	s.form.entry("max-steps").SetText("5")

	test.Tap(s.exportBtn)
	out := filepath.Join(t.TempDir(), "cluster")
	s.export.folder.SetText(out)
	s.export.processes.SetText("2")
	test.Tap(exportButton(t, w))
	waitFor(t, "the export's report", func() (bool, string) { return s.exportReport != nil, s.status.Text })
	report := s.exportReport.Text
	for _, name := range []string{studio.ExportDatasetConfig, studio.ExportTrainConfig, studio.ExportSamplePrompts, studio.ExportLaunch, studio.ExportReadme} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !strings.Contains(report, name) {
			t.Errorf("the report does not name %s:\n%s", name, report)
		}
	}
	toml, err := os.ReadFile(filepath.Join(out, studio.ExportTrainConfig))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(toml), "max_train_steps = 5") {
		t.Errorf("train_config.toml does not hold the form's 5 steps:\n%s", toml)
	}
	for _, want := range []string{"e.png", "What does not carry over", `targets "attn"`, "2 processes", "stabilityai/stable-diffusion-xl-base-1.0"} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
}
