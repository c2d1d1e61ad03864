package ui

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
)

// TestTrainWindowWiring checks what the window wires to the Train tab on a
// real studio: a pre-flight warning opens its image in the Dataset tab,
// "Try in Playground" adds the LoRA at its weight to the Playground and
// shows it, and closing the window with no run closes at once.
func TestTrainWindowWiring(t *testing.T) {
	dir := makeDataset(t)
	m, _ := newTestWindow(t, dir)
	if m.Train.dataset != m.Dataset.Dataset().Root() {
		t.Fatalf("the Train tab trains on %q, the Dataset tab has %q open", m.Train.dataset, m.Dataset.Dataset().Root())
	}
	m.tabs.SelectIndex(3) // not the Train tab: its pre-flight would write the demo model
	m.Train.OnOpenImage(filepath.Join(m.Dataset.Dataset().Root(), "d.png"))
	if m.tabs.SelectedIndex() != 0 || m.Dataset.Current() != "d.png" {
		t.Fatalf("the warning's image: tab %d, current %q", m.tabs.SelectedIndex(), m.Dataset.Current())
	}
	lora := filepath.Join(t.TempDir(), "cats.safetensors")
	m.Train.OnTryInPlayground(lora, 0.7)
	if m.tabs.Selected().Text != "Playground" {
		t.Fatalf("Try in Playground shows the %q tab", m.tabs.Selected().Text)
	}
	var held []string
	found := false
	for _, l := range m.Playground.loras {
		held = append(held, fmt.Sprintf("%s at %v", l.path, l.weight.Value))
		if l.path == lora && math.Abs(l.weight.Value-0.7) < 1e-9 {
			found = true
		}
	}
	if !found {
		t.Fatalf("the Playground's LoRAs %v do not hold %s at 0.7", held, lora)
	}
	closed := false
	m.Train.ConfirmClose(func() { closed = true })
	if !closed {
		t.Fatal("with no run, closing asked")
	}
}
