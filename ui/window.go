package ui

import (
	"fmt"
	"os"
	"path/filepath"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// Title is the main window's title (the end-to-end test finds the window by it).
const Title = "LoRA Studio"

// MainWindow is the studio window: tabs for Dataset, Train, Playground and
// Settings, a main menu with every dataset command and its shortcut.
type MainWindow struct {
	// Window is the Fyne window; call ShowAndRun on it.
	Window fyne.Window
	// Dataset is the captioning screen in the first tab.
	Dataset *DatasetScreen
	// Playground is the generation screen and Gallery its history, in the Playground tab.
	Playground *PlaygroundScreen
	Gallery    *GalleryScreen
	// Train is the training screen in the second tab.
	Train *TrainScreen
	// PlaygroundLoRA, when set (by the Playground screen), takes a LoRA
	// and its weight that the Train tab's "Try in Playground" hands over.
	PlaygroundLoRA func(path string, weight float64)

	st       *studio.Studio
	tabs     *container.AppTabs
	settings *settingsTab
}

// NewMainWindow creates the window for a studio; version is shown in Settings.
func NewMainWindow(a fyne.App, st *studio.Studio, version string) *MainWindow {
	w := a.NewWindow(Title)
	m := &MainWindow{Window: w, st: st}
	m.Dataset = NewDatasetScreen(w, st)
	m.settings = newSettingsTab(st, version)
	m.Train = NewTrainScreen(w, st)
	m.Train.OnOpenImage = m.openInDataset
	m.Train.OnTryInPlayground = m.tryInPlayground
	m.Dataset.OnDatasetChanged = func(root string) {
		m.settings.setDataset(root)
		m.Train.SetDataset(root)
		w.SetTitle(Title + " — " + filepath.Base(root))
	}
	m.tabs = container.NewAppTabs(
		container.NewTabItemWithIcon("Dataset", theme.FolderIcon(), m.Dataset.Content()),
		container.NewTabItemWithIcon("Train", theme.MediaPlayIcon(), m.Train.Content()),
		container.NewTabItemWithIcon("Playground", theme.MediaPhotoIcon(), m.playgroundTab()),
		container.NewTabItemWithIcon("Settings", theme.SettingsIcon(), m.settings.content),
	)
	w.SetContent(m.tabs)
	m.installShortcuts()
	w.SetCloseIntercept(m.RequestClose)
	w.Resize(fyne.NewSize(1440, 900))
	w.CenterOnScreen()
	return m
}

// RequestClose is what closing the window does: unsaved typing is saved
// first, and a failed save (a conflict to resolve) keeps the window open;
// a run in training asks whether to stop and save it or stay open.
func (m *MainWindow) RequestClose() {
	if m.Dataset.autosave() {
		m.Train.ConfirmClose(m.Window.Close)
	}
}

// installShortcuts puts the dataset commands in the main menu (whose
// shortcuts work wherever the focus is) and on the canvas (for drivers
// without a main menu), and adds a Help menu listing every shortcut.
func (m *MainWindow) installShortcuts() {
	menus := map[string][]*fyne.MenuItem{}
	for _, a := range m.actions() {
		it := fyne.NewMenuItem(a.Label, a.Run)
		if len(a.Shortcuts) > 0 {
			it.Shortcut = a.Shortcuts[0]
		}
		menus[a.Menu] = append(menus[a.Menu], it)
		for _, s := range a.Shortcuts {
			run := a.Run
			m.Window.Canvas().AddShortcut(s, func(fyne.Shortcut) { run() })
		}
	}
	m.Window.Canvas().SetOnTypedKey(func(k *fyne.KeyEvent) {
		if k.Name != fyne.KeyEscape && m.Dataset.modalOpen() {
			return
		}
		switch k.Name {
		case fyne.KeyPageDown:
			m.Dataset.Next()
		case fyne.KeyPageUp:
			m.Dataset.Previous()
		case fyne.KeyEscape:
			if !m.escapePlayground() {
				m.Dataset.CloseDialog()
			}
		}
	})
	m.Window.SetMainMenu(fyne.NewMainMenu(
		fyne.NewMenu("File", menus["File"]...),
		fyne.NewMenu("Caption", menus["Caption"]...),
		fyne.NewMenu("Go", menus["Go"]...),
		fyne.NewMenu("Generate", menus["Generate"]...),
		fyne.NewMenu("Help", fyne.NewMenuItem("Keyboard shortcuts", m.showShortcuts)),
	))
}

// showShortcuts lists every command and all of its shortcuts.
func (m *MainWindow) showShortcuts() {
	grid := container.NewGridWithColumns(2)
	for _, a := range m.actions() {
		keys := ""
		for i, s := range a.Shortcuts {
			if i > 0 {
				keys += ", "
			}
			keys += shortcutText(s)
		}
		switch a.Label {
		case "Next image":
			keys += ", PageDown"
		case "Previous image":
			keys += ", PageUp"
		}
		if keys == "" {
			keys = "menu only"
		}
		grid.Add(widget.NewLabel(a.Label))
		grid.Add(widget.NewLabelWithStyle(keys, fyne.TextAlignLeading, fyne.TextStyle{Monospace: true}))
	}
	note := widget.NewLabel("The shortcuts work while you type in the caption. Moving to another image saves the caption.")
	note.Wrapping = fyne.TextWrapWord
	d := dialog.NewCustom("Keyboard shortcuts", "Close", container.NewBorder(nil, note, nil, nil, grid), m.Window)
	d.Resize(fyne.NewSize(620, 0))
	m.Dataset.showModal(d, true)
}

// OpenInitial opens, in the background, the dataset to start on: dir when
// given, else the last dataset, else the sample dataset (written on first run).
func (m *MainWindow) OpenInitial(dir string) {
	if dir != "" {
		m.Dataset.OpenAsync(dir)
		return
	}
	if last, ok := m.st.LastDataset(); ok {
		m.Dataset.OpenAsync(last)
		return
	}
	m.Dataset.setEmptyText("Preparing the sample dataset …")
	go func() {
		sample, err := m.st.SampleDataset()
		fromBackground(func() {
			if err != nil {
				m.Dataset.setEmptyText("Open a folder of images to start captioning.")
				dialog.ShowError(fmt.Errorf("writing the sample dataset under %s: %w", m.st.DataDir(), err), m.Window)
				return
			}
			m.Dataset.OpenAsync(sample)
		})
	}()
}

// layoutSpacer is a flexible gap in box rows.
func layoutSpacer() fyne.CanvasObject { return layout.NewSpacer() }

// pageText is a tab that says plainly what it will hold.
func pageText(title, body string) fyne.CanvasObject {
	t := widget.NewLabelWithStyle(title, fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	t.SizeName = theme.SizeNameSubHeadingText
	b := widget.NewLabelWithStyle(body, fyne.TextAlignCenter, fyne.TextStyle{})
	b.Wrapping = fyne.TextWrapWord
	return container.NewCenter(container.NewGridWrap(fyne.NewSize(560, 180), container.NewVBox(t, b)))
}

// settingsTab shows where the studio keeps its files.
type settingsTab struct {
	content *fyne.Container
	dataset *widget.Label
}

// newSettingsTab shows the data directory, database, thumbnail cache and version.
func newSettingsTab(st *studio.Studio, version string) *settingsTab {
	s := &settingsTab{dataset: widget.NewLabel("none open")}
	row := func(name string, value fyne.CanvasObject) []fyne.CanvasObject {
		return []fyne.CanvasObject{widget.NewLabelWithStyle(name, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true}), value}
	}
	path := func(p string) fyne.CanvasObject {
		l := widget.NewLabelWithStyle(p, fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
		l.Selectable = true
		return l
	}
	dbPath := filepath.Join(st.DataDir(), studio.DBFileName)
	dbInfo := dbPath
	if fi, err := os.Stat(dbPath); err == nil {
		dbInfo = fmt.Sprintf("%s  (%.1f MiB)", dbPath, float64(fi.Size())/(1<<20))
	}
	form := container.New(layout.NewFormLayout())
	for _, r := range [][]fyne.CanvasObject{
		row("Version", widget.NewLabel(version)),
		row("Data directory", path(st.DataDir())),
		row("Database", path(dbInfo)),
		row("Thumbnail cache", path(filepath.Join(st.DataDir(), "thumbnails"))),
		row("Current dataset", s.dataset),
	} {
		form.Add(r[0])
		form.Add(r[1])
	}
	note := widget.NewLabel("Change the data directory with --data-dir DIR or the LORASTUDIO_DATA environment variable. " +
		"Training and generation settings will appear here with the engine.")
	note.Wrapping = fyne.TextWrapWord
	head := widget.NewLabelWithStyle("Settings", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	head.SizeName = theme.SizeNameSubHeadingText
	s.content = container.NewPadded(container.NewVBox(head, form, widget.NewSeparator(), note))
	return s
}

// setDataset shows the open dataset's folder.
func (s *settingsTab) setDataset(root string) {
	s.dataset.SetText(root)
}
