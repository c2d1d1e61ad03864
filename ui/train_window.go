package ui

import (
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2/dialog"
)

// openInDataset shows an image of the open dataset in the Dataset tab (a
// pre-flight warning's image). An image of another dataset opens that
// dataset first.
func (m *MainWindow) openInDataset(path string) {
	ds := m.Dataset.Dataset()
	if ds == nil || !strings.HasPrefix(path, ds.Root()+string(filepath.Separator)) {
		dialog.ShowInformation("Open image", path+" is not in the dataset open in the Dataset tab.", m.Window)
		return
	}
	rel, err := filepath.Rel(ds.Root(), path)
	if err != nil {
		return
	}
	m.tabs.SelectIndex(0)
	m.Dataset.reveal(filepath.ToSlash(rel))
}

// tryInPlayground hands a trained LoRA with its weight to the Playground
// tab. PlaygroundLoRA, when the Playground screen sets it, takes the LoRA;
// until then the path is shown for adding it by hand.
func (m *MainWindow) tryInPlayground(path string, weight float64) {
	if m.PlaygroundLoRA != nil {
		m.PlaygroundLoRA(path, weight)
		for i, it := range m.tabs.Items {
			if it.Text == "Playground" {
				m.tabs.SelectIndex(i)
			}
		}
		return
	}
	dialog.ShowInformation("Try in Playground", "Add this LoRA in the Playground tab:\n"+path, m.Window)
}
