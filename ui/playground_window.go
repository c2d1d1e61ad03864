package ui

import (
	"fmt"
	"os"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// playgroundTab builds the Playground (above) and its gallery (below), wires them to each
// other and to the window: a finished image refreshes the gallery, Reuse fills the form, a
// PNG dropped on the window loads its parameters, closing the window cancels the queue.
func (m *MainWindow) playgroundTab() fyne.CanvasObject {
	m.Playground = NewPlaygroundScreen(m.Window, m.st)
	m.Gallery = NewGalleryScreen(m.Window, m.st)
	m.Playground.OnGenerated = func(studio.Job) { m.Gallery.Refresh() }
	m.Gallery.OnReuse = func(r studio.GenerateRequest, what Reuse) {
		m.Playground.Apply(r, what)
		m.showPlayground()
	}
	m.Gallery.Refresh()
	m.Playground.StartFromLast()
	m.PlaygroundLoRA = m.Playground.AddLoRA // the Train tab's "Try in Playground"
	m.Window.SetOnDropped(func(_ fyne.Position, uris []fyne.URI) { m.DropFiles(uris) })
	m.Window.SetOnClosed(m.Playground.Close)
	split := container.NewVSplit(m.Playground.Content(), m.Gallery.Content())
	split.Offset = 0.62
	return split
}

// showPlayground brings the Playground tab to the front.
func (m *MainWindow) showPlayground() {
	for _, t := range m.tabs.Items {
		if t.Text == "Playground" {
			m.tabs.Select(t)
		}
	}
}

// playgroundShown reports whether the Playground tab is in front.
func (m *MainWindow) playgroundShown() bool {
	t := m.tabs.Selected()
	return t != nil && t.Text == "Playground"
}

// escapePlayground is Escape on the Playground tab: it cancels the running generation and
// reports whether there was one.
func (m *MainWindow) escapePlayground() bool {
	return m.playgroundShown() && m.Playground.CancelRunning()
}

// actions are every screen's commands, for the main menu and the shortcut list.
func (m *MainWindow) actions() []Action {
	out := append(append([]Action(nil), m.Dataset.Actions()...), m.Playground.Actions()...)
	return append(out, Action{Menu: "Generate", Label: "Write a prompt", Shortcuts: []fyne.Shortcut{key(fyne.KeyP, ctrl)},
		Run: func() {
			m.showPlayground()
			m.Playground.FocusPrompt()
		}},
		Action{Menu: "Generate", Label: "Go to the gallery (arrows move, Space selects, Enter reuses all)",
			Shortcuts: []fyne.Shortcut{key(fyne.KeyG, ctrl)}, Run: func() {
				m.showPlayground()
				m.Gallery.Focus()
			}},
		Action{Menu: "Generate", Label: "Reuse all parameters of the selected image",
			Shortcuts: []fyne.Shortcut{key(fyne.KeyR, ctrl|fyne.KeyModifierShift)}, Run: func() { m.Gallery.ReuseSelected(ReuseAll) }})
}

// DropFiles loads the generation parameters of the first dropped PNG into the Playground
// (A1111's parameters or ComfyUI's graph) and lists what could not be applied; other files
// get a message saying what a drop does.
func (m *MainWindow) DropFiles(uris []fyne.URI) {
	var path string
	for _, u := range uris {
		if strings.EqualFold(u.Extension(), ".png") {
			path = u.Path()
			break
		}
	}
	if path == "" {
		dialog.ShowInformation("Drop a PNG", "Drop a PNG made by LoRA Studio, A1111, Civitai or ComfyUI to load its generation parameters into the Playground.", m.Window)
		return
	}
	go func() {
		data, err := os.ReadFile(path)
		var ip studio.ImportedParams
		if err == nil {
			ip, err = studio.ImportPNGParams(path, data)
		}
		fromBackground(func() {
			if err != nil {
				dialog.ShowError(err, m.Window)
				return
			}
			unmapped := m.Playground.ApplyImported(ip)
			m.showPlayground()
			m.Playground.setStatus(fmt.Sprintf("Loaded the %s parameters of %s.", ip.Source, path))
			if len(unmapped) > 0 {
				l := widget.NewLabel(strings.Join(unmapped, "\n"))
				l.Wrapping = fyne.TextWrapWord
				d := dialog.NewCustom("Not applied from "+ip.Source, "Close",
					container.NewVBox(widget.NewLabel("These settings of the image were not applied:"), l), m.Window)
				d.Resize(fyne.NewSize(560, 0))
				d.Show()
			}
		})
	}()
}
