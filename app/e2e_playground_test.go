package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EPlayground drives the Playground of the real binary under Xvfb: after one small
// image made from the command line (the Playground starts from the newest image's
// parameters: the demo model at 64×64, 2 steps), Ctrl+P puts the keyboard in the prompt, a
// new prompt is typed and Ctrl+Enter generates it; the image lands on disk and in the
// history, where a search finds it. Then its parameters are reused from the gallery by
// keyboard: another prompt is typed over the form, Ctrl+G puts the keyboard in the gallery
// (its newest image, the lighthouse, has the focus), Enter reuses all its parameters and
// Ctrl+Enter generates again: the second image has the first one's prompt and random seed
// and comes from the generation cache, which only the same parameters hit. With
// LORASTUDIO_PLAYGROUND_SCREENSHOT_OUT=path the screenshot of the Playground is copied there
// (the README's docs/screenshot-playground.png).
func TestE2EPlayground(t *testing.T) {
	needWindowTools(t, "end-to-end Playground test")
	tmp := t.TempDir()
	bin := studioBinary(t) // with FTS5: the gallery's search
	dataDir := filepath.Join(tmp, "data")
	cli := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append(args, "--data-dir", dataDir)...).Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("lorastudio %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return out
	}
	cli("generate", "--prompt", "warm-up", "--size", "64x64", "--steps", "2", "--device", "cpu", "--seed", "1",
		"--out", filepath.Join(tmp, "warm-up.png"))

	display := startXvfb(t, 1440, 900)
	app := startStudio(t, bin, display, dataDir)
	x := xClient(display)
	var wid string
	mustWait(t, app, 60*time.Second, "the LoRA Studio window", func() bool {
		out, err := x("xdotool", "search", "--name", "LoRA Studio")
		if err != nil || out == "" {
			return false
		}
		wid = strings.Fields(out)[0]
		return true
	})
	waitSettled(t, app, x, filepath.Join(tmp, "start.png"), "the first screen")
	const prompt = "a lighthouse at dusk"
	for _, step := range [][]string{
		{"xdotool", "key", "--window", wid, "ctrl+p"},
		{"xdotool", "key", "ctrl+a"},
		{"xdotool", "type", "--delay", "20", prompt},
		{"xdotool", "key", "ctrl+Return"},
	} {
		if out, err := x(step...); err != nil {
			t.Fatalf("%s: %v %s", strings.Join(step, " "), err, out)
		}
	}
	type item struct {
		ID     int64  `json:"id"`
		Prompt string `json:"prompt"`
		Model  string `json:"model"`
		Seed   uint64 `json:"seed"`
		Size   string `json:"size"`
		Steps  int    `json:"steps"`
		File   string `json:"file"`
		Cached bool   `json:"cached"`
	}
	search := func(text string) []item {
		var found []item
		if err := json.Unmarshal(cli("gallery", "list", "--json", "--search", text), &found); err != nil {
			t.Fatal(err)
		}
		return found
	}
	var found []item
	mustWait(t, app, 5*time.Minute, "the typed prompt's image in the history, found by a search", func() bool {
		found = search("lighthouse")
		return len(found) == 1
	})
	if found[0].Prompt != prompt || found[0].Size != "64x64" || found[0].Steps != 2 {
		t.Errorf("the Playground's image %+v, want the typed prompt with the last image's 64x64 and 2 steps", found[0])
	}
	if _, err := os.Stat(found[0].File); err != nil {
		t.Errorf("the image file: %v", err)
	}
	shot := filepath.Join(tmp, "playground.png")
	waitSettled(t, app, x, shot, "the Playground showing its image")
	if out := os.Getenv("LORASTUDIO_PLAYGROUND_SCREENSHOT_OUT"); out != "" {
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Reuse all of its parameters from the gallery, by keyboard, over a form typed anew.
	const other = "an empty meadow at noon"
	for _, step := range [][]string{
		{"xdotool", "key", "--window", wid, "ctrl+p"},
		{"xdotool", "key", "ctrl+a"},
		{"xdotool", "type", "--delay", "20", other},
		{"xdotool", "key", "ctrl+g"},
		{"xdotool", "key", "Return"},
		{"xdotool", "key", "ctrl+Return"},
	} {
		if out, err := x(step...); err != nil {
			t.Fatalf("%s: %v %s", strings.Join(step, " "), err, out)
		}
	}
	var again []item
	mustWait(t, app, 5*time.Minute, "a second lighthouse image, made from the reused parameters", func() bool {
		again = search("lighthouse")
		return len(again) == 2
	})
	first, second := found[0], again[0] // newest first
	if again[1].ID != first.ID || second.ID == first.ID {
		t.Fatalf("after the reuse the search lists %+v, want a new image before the first %+v", again, first)
	}
	if second.Prompt != first.Prompt || second.Seed != first.Seed || second.Model != first.Model || second.Size != first.Size ||
		second.Steps != first.Steps {
		t.Errorf("the image from the reused parameters %+v, want the first image's %+v", second, first)
	}
	if !second.Cached {
		t.Errorf("the image from the reused parameters %+v did not come from the generation cache: not all parameters were reused", second)
	}
	if n := len(search("meadow")); n != 0 {
		t.Errorf("%d images with the prompt typed before the reuse: Enter in the gallery did not replace the form", n)
	}
	if strings.Contains(app.out.String(), "panic:") {
		t.Fatalf("lorastudio panicked; %s", app.report())
	}
}
