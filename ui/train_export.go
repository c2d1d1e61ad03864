package ui

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// exportForm is the "Export for a cluster…" dialog: where to write, the
// model as the cluster sees it, and the shape of the accelerate launch.
// The training settings are the screen's form, taken when Export is
// pressed.
type exportForm struct {
	folder    *widget.Entry
	model     *widget.Entry
	processes *widget.Entry
	machines  *widget.Entry
	mainIP    *widget.Entry
	precision *widget.Select
	dlg       *dialog.FormDialog
}

// positiveInt validates a count of at least 1.
func positiveInt(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		return fmt.Errorf("%q: want a whole number of 1 or more", s)
	}
	return nil
}

// showExport opens the export dialog with the screen's current settings.
func (s *TrainScreen) showExport() {
	if _, err := s.request(); err != nil {
		s.showFailure("Export for a cluster: " + err.Error())
		return
	}
	f := &exportForm{
		folder:    widget.NewEntry(),
		model:     widget.NewEntry(),
		processes: widget.NewEntry(),
		machines:  widget.NewEntry(),
		mainIP:    widget.NewEntry(),
		precision: widget.NewSelect([]string{"fp16", "bf16", "no"}, nil),
	}
	f.folder.SetPlaceHolder("an empty folder outside the dataset")
	f.folder.Validator = func(t string) error {
		if strings.TrimSpace(t) == "" {
			return errors.New("choose the folder to write")
		}
		return nil
	}
	f.model.SetText(s.modelPath())
	f.model.SetPlaceHolder("a path on the cluster or a Hugging Face repo id; empty: the configured model")
	f.processes.SetText("1")
	f.processes.Validator = positiveInt
	f.machines.SetText("1")
	f.machines.Validator = positiveInt
	f.mainIP.SetPlaceHolder("the address of machine 0 (several machines only)")
	f.precision.SetSelected("fp16")
	browse := widget.NewButtonWithIcon("", theme.FolderOpenIcon(), func() {
		d := dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
			if err == nil && u != nil {
				f.folder.SetText(u.Path())
			}
		}, s.win)
		d.Show()
	})
	f.folder.ActionItem = browse // the entry stays the form item, so its validator gates Export
	items := []*widget.FormItem{
		{Text: "Folder", Widget: f.folder, HintText: "dataset_config.toml, train_config.toml, launch.sh and a kohya-layout view of the dataset go here"},
		{Text: "Base model", Widget: f.model, HintText: "as sd-scripts on the cluster opens it"},
		{Text: "Processes", Widget: f.processes, HintText: "GPUs over all machines (accelerate --num_processes)"},
		{Text: "Machines", Widget: f.machines, HintText: "accelerate --num_machines; each runs launch.sh with its MACHINE_RANK"},
		{Text: "Main machine", Widget: f.mainIP, HintText: "accelerate --main_process_ip"},
		{Text: "Precision", Widget: f.precision, HintText: "mixed precision on the cluster"},
	}
	f.dlg = dialog.NewForm("Export for a cluster (kohya sd-scripts + accelerate)", "Export", "Cancel", items, func(ok bool) {
		s.export = nil
		if ok {
			s.runExport(f)
		}
	}, s.win)
	f.dlg.Resize(fyne.NewSize(720, 480))
	s.export = f
	f.dlg.Show()
}

// runExport exports the screen's settings as f says, in the background,
// and shows what was written.
func (s *TrainScreen) runExport(f *exportForm) {
	req, err := s.request()
	if err != nil {
		s.showFailure("Export for a cluster: " + err.Error())
		return
	}
	procs, _ := strconv.Atoi(strings.TrimSpace(f.processes.Text))
	machines, _ := strconv.Atoi(strings.TrimSpace(f.machines.Text))
	er := studio.ExportRequest{
		Dataset: req.Dataset, Model: strings.TrimSpace(f.model.Text), Name: req.Name,
		AllowUncaptioned: req.AllowUncaptioned, Config: req.Config, To: strings.TrimSpace(f.folder.Text),
		NumProcesses: procs, NumMachines: machines, MainProcessIP: strings.TrimSpace(f.mainIP.Text),
		MixedPrecision: f.precision.Selected,
	}
	s.status.Importance = widget.MediumImportance
	s.status.SetText("Exporting for a cluster to " + er.To + "…")
	go func() {
		res, err := s.svc.Export(er)
		fromBackground(func() {
			if err != nil {
				s.showFailure("Export for a cluster failed: " + err.Error())
				return
			}
			s.status.Importance = widget.SuccessImportance
			s.status.SetText("Exported for a cluster to " + res.Dir)
			s.showExportResult(res, er)
		})
	}()
}

// exportReportText says what an export wrote, how to run it, and which
// settings do not carry over to sd-scripts (the export's notes).
func exportReportText(res *studio.ExportResult, req studio.ExportRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Wrote %s:\n", res.Dir)
	for _, f := range res.Files {
		fmt.Fprintf(&b, "  %s\n", filepath.Base(f))
	}
	fmt.Fprintf(&b, "  %s/: %d images in %d folders (%d hard-linked, %d copied)\n", studio.ExportViewDir, res.Images, len(res.Subsets), res.Linked, res.Copied)
	for _, sub := range res.Subsets {
		fmt.Fprintf(&b, "    %s: %d images × %d repeats\n", sub.Dir, sub.Images, sub.Repeats)
	}
	procs := max(req.NumProcesses, 1)
	fmt.Fprintf(&b, "Model: %s\n%d optimizer steps on each of %d processes.\n", res.Model, res.Steps, procs)
	if len(res.Skipped) > 0 {
		fmt.Fprintf(&b, "Left out (unreadable): %d images\n", len(res.Skipped))
		for _, sk := range res.Skipped {
			fmt.Fprintf(&b, "  %s: %s\n", sk.Path, sk.Reason)
		}
	}
	if len(res.Uncaptioned) > 0 {
		fmt.Fprintf(&b, "Exported without a caption: %d images\n", len(res.Uncaptioned))
	}
	fmt.Fprintf(&b, "\nRun it: SD_SCRIPTS=/path/to/sd-scripts %s\n", filepath.Join(res.Dir, studio.ExportLaunch))
	fmt.Fprintf(&b, "Bring the LoRA back: lorastudio train import %s\n", res.Dir)
	if len(res.Notes) > 0 {
		b.WriteString("\nWhat does not carry over to sd-scripts:\n")
		for _, n := range res.Notes {
			fmt.Fprintf(&b, "  • %s\n", n)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// showExportResult shows exportReportText in a dialog.
func (s *TrainScreen) showExportResult(res *studio.ExportResult, req studio.ExportRequest) {
	s.exportReport = widget.NewLabel(exportReportText(res, req))
	s.exportReport.Wrapping = fyne.TextWrapWord
	scroll := container.NewVScroll(s.exportReport)
	scroll.SetMinSize(fyne.NewSize(680, 380))
	d := dialog.NewCustom("Exported for a cluster", "Close", scroll, s.win)
	d.Show()
}
