package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// captionRun runs one command line and returns its exit code and outputs.
func captionRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// mustRun runs a command line that must succeed.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := captionRun(t, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

// writeTestPNG writes a w x h PNG.
func writeTestPNG(t *testing.T, p string, w, h int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// fileText reads a file ("<missing>" when absent).
func fileText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listed is the subset of `caption list --json` the tests check.
type listed struct {
	Image   string  `json:"image"`
	Caption *string `json:"caption"`
	Width   int     `json:"width"`
	Height  int     `json:"height"`
	Error   string  `json:"error"`
	Repeats int     `json:"repeats"`
}

func listJSON(t *testing.T, data, dir string) []listed {
	t.Helper()
	out := mustRun(t, "caption", "list", dir, "--json", "--data-dir", data)
	var got []listed
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("list --json is not JSON: %v\n%s", err, out)
	}
	return got
}

func TestCaptionCLITutorialFlow(t *testing.T) {
	data := t.TempDir()
	dir := t.TempDir()
	writeTestPNG(t, filepath.Join(dir, "images", "b.png"), 64, 32)
	writeTestPNG(t, filepath.Join(dir, "images", "a.png"), 16, 16)
	os.WriteFile(filepath.Join(dir, "images", "broken.png"), []byte("\x89PNG\r\n\x1a\nnope"), 0o644)
	os.MkdirAll(filepath.Join(dir, "captions"), 0o755)
	os.WriteFile(filepath.Join(dir, "captions", "b.txt"), []byte("diagram, database"), 0o644)

	got := listJSON(t, data, dir)
	if len(got) != 3 || got[0].Image != "images/a.png" || got[1].Image != "images/b.png" || got[2].Image != "images/broken.png" {
		t.Fatalf("list: %+v", got)
	}
	if got[0].Caption != nil || got[0].Width != 16 || got[0].Height != 16 || got[0].Error != "" {
		t.Fatalf("a: %+v", got[0])
	}
	if got[1].Caption == nil || *got[1].Caption != "diagram, database" || got[1].Width != 64 || got[1].Height != 32 {
		t.Fatalf("b: %+v", got[1])
	}
	if !strings.Contains(got[2].Error, "broken.png") {
		t.Fatalf("broken: %+v", got[2])
	}
	if got[0].Repeats != 0 {
		t.Fatal("repeats reported for the tutorial layout")
	}
	// The JSON has "caption": null for an image without one.
	raw := mustRun(t, "caption", "list", dir, "--json", "--data-dir", data)
	if !strings.Contains(raw, `"caption": null`) {
		t.Fatalf("no null caption in %s", raw)
	}
	table := mustRun(t, "caption", "--data-dir", data, "list", dir) // flag before the caption subcommand
	for _, want := range []string{"images/a.png", "(none)", "diagram, database", "3 image(s), 1 captioned"} {
		if !strings.Contains(table, want) {
			t.Fatalf("table lacks %q:\n%s", want, table)
		}
	}

	capA := filepath.Join(dir, "captions", "a.txt")
	mustRun(t, "caption", "set", dir, "images/a.png", "first text", "--data-dir", data)
	if fileText(t, capA) != "first text" {
		t.Fatalf("after set: %q", fileText(t, capA))
	}
	mustRun(t, "caption", "--data-dir="+data, "set", dir, "images/a.png", "second text")
	if fileText(t, capA) != "second text" {
		t.Fatalf("after second set: %q", fileText(t, capA))
	}
	out := mustRun(t, "caption", "undo", dir, "images/a.png", "--data-dir", data)
	if fileText(t, capA) != "first text" || !strings.Contains(out, "first text") {
		t.Fatalf("after undo: %q (%s)", fileText(t, capA), out)
	}
	mustRun(t, "caption", "redo", dir, "images/a.png", "--data-dir", data)
	if fileText(t, capA) != "second text" {
		t.Fatalf("after redo: %q", fileText(t, capA))
	}
	mustRun(t, "caption", "undo", dir, "images/a.png", "--data-dir", data)
	mustRun(t, "caption", "undo", dir, "images/a.png", "--data-dir", data)
	if fileText(t, capA) != "<missing>" {
		t.Fatalf("undo to no caption left %q", fileText(t, capA))
	}
	code, _, errs := captionRun(t, "caption", "undo", dir, "images/a.png", "--data-dir", data)
	if code != 1 || !strings.Contains(errs, "nothing to undo") {
		t.Fatalf("undo past the start: %d %s", code, errs)
	}

	hist := mustRun(t, "caption", "history", dir, "images/a.png", "--json", "--data-dir", data)
	var revs []struct {
		Caption string `json:"caption"`
		Time    string `json:"time"`
		Origin  string `json:"origin"`
	}
	if err := json.Unmarshal([]byte(hist), &revs); err != nil {
		t.Fatalf("history --json: %v\n%s", err, hist)
	}
	wantOrigins := []string{"manual", "manual", "undo", "redo", "undo", "undo"}
	wantText := []string{"first text", "second text", "first text", "second text", "first text", ""}
	if len(revs) != len(wantOrigins) {
		t.Fatalf("history %+v", revs)
	}
	for i, r := range revs {
		if r.Origin != wantOrigins[i] || r.Caption != wantText[i] {
			t.Fatalf("revision %d: %+v, want %s %q", i, r, wantOrigins[i], wantText[i])
		}
		if _, err := time.Parse(time.RFC3339, r.Time); err != nil {
			t.Fatalf("time %q is not RFC 3339: %v", r.Time, err)
		}
	}
	// The imported caption of b shows in its history.
	hist = mustRun(t, "caption", "history", dir, "images/b.png", "--json", "--data-dir", data)
	if !strings.Contains(hist, `"origin": "import"`) || !strings.Contains(hist, "diagram, database") {
		t.Fatalf("b history: %s", hist)
	}
	// A missing image: exit 1 naming it.
	code, _, errs = captionRun(t, "caption", "set", dir, "images/zzz.png", "x", "--data-dir", data)
	if code != 1 || !strings.Contains(errs, "images/zzz.png") {
		t.Fatalf("missing image: %d %s", code, errs)
	}
	code, _, errs = captionRun(t, "caption", "history", dir, "nope.png", "--data-dir", data)
	if code != 1 || !strings.Contains(errs, "nope.png") {
		t.Fatalf("history of a missing image: %d %s", code, errs)
	}
}

func TestCaptionCLIBulkKohya(t *testing.T) {
	data := t.TempDir()
	dir := t.TempDir()
	writeTestPNG(t, filepath.Join(dir, "10_mychar", "one.png"), 8, 8)
	writeTestPNG(t, filepath.Join(dir, "10_mychar", "two.png"), 8, 8)
	writeTestPNG(t, filepath.Join(dir, "10_mychar", "three.png"), 8, 8)
	os.WriteFile(filepath.Join(dir, "10_mychar", "one.txt"), []byte("smiling, red hat"), 0o644)
	os.WriteFile(filepath.Join(dir, "10_mychar", "two.txt"), []byte("mychar, standing"), 0o644)

	got := listJSON(t, data, dir)
	if len(got) != 3 || got[0].Repeats != 10 || got[0].Image != "10_mychar/one.png" {
		t.Fatalf("kohya list: %+v", got)
	}
	one, two := filepath.Join(dir, "10_mychar", "one.txt"), filepath.Join(dir, "10_mychar", "two.txt")
	out := mustRun(t, "caption", "bulk", dir, "--prepend", "mychar", "--dry-run", "--data-dir", data)
	if !strings.Contains(out, `10_mychar/one.png: "smiling, red hat" → "mychar, smiling, red hat"`) || strings.Contains(out, "two.png") {
		t.Fatalf("dry run output:\n%s", out)
	}
	if !strings.Contains(out, "1 caption(s) would change") || fileText(t, one) != "smiling, red hat" {
		t.Fatalf("dry run wrote or miscounted: %s / %q", out, fileText(t, one))
	}
	out = mustRun(t, "caption", "bulk", dir, "--prepend", "mychar", "--data-dir", data)
	if !strings.Contains(out, "changed 1 caption(s)") || fileText(t, one) != "mychar, smiling, red hat" || fileText(t, two) != "mychar, standing" {
		t.Fatalf("bulk prepend: %s / %q / %q", out, fileText(t, one), fileText(t, two))
	}
	mustRun(t, "caption", "bulk", dir, "--replace", "mychar", "hero", "--data-dir", data)
	if fileText(t, one) != "hero, smiling, red hat" || fileText(t, two) != "hero, standing" {
		t.Fatalf("bulk replace: %q %q", fileText(t, one), fileText(t, two))
	}
	if f := fileText(t, filepath.Join(dir, "10_mychar", "three.txt")); f != "<missing>" {
		t.Fatalf("uncaptioned image got %q", f)
	}
	out = mustRun(t, "caption", "undo-bulk", dir, "--data-dir", data)
	if !strings.Contains(out, "restored 2") || fileText(t, one) != "mychar, smiling, red hat" || fileText(t, two) != "mychar, standing" {
		t.Fatalf("undo-bulk: %s / %q / %q", out, fileText(t, one), fileText(t, two))
	}
	mustRun(t, "caption", "bulk", dir, "--append", "best quality", "--data-dir", data)
	if fileText(t, two) != "mychar, standing, best quality" {
		t.Fatalf("append: %q", fileText(t, two))
	}
}

// TestCaptionCLIBulkTriggerAsKohyaWritesIt: `--prepend "mytrigger, "` adds
// the tag once, with one ", " (not "mytrigger,, a diagram"); the dry run
// shows exactly what is then written and says how many captions hold the
// trigger already.
func TestCaptionCLIBulkTriggerAsKohyaWritesIt(t *testing.T) {
	data := t.TempDir()
	dir := t.TempDir()
	for name, caption := range map[string]string{"a": "a diagram", "b": ", a chart,", "c": "mytrigger, a table", "d": ""} {
		writeTestPNG(t, filepath.Join(dir, name+".png"), 8, 8)
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(caption), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"a": "mytrigger, a diagram", "b": "mytrigger, a chart,", "c": "mytrigger, a table", "d": "mytrigger"}
	out := mustRun(t, "caption", "bulk", dir, "--prepend", "mytrigger, ", "--dry-run", "--data-dir", data)
	for _, name := range []string{"a", "b", "d"} {
		before := fileText(t, filepath.Join(dir, name+".txt"))
		line := fmt.Sprintf("%s.png: %q → %q", name, before, want[name])
		if !strings.Contains(out, line) {
			t.Errorf("dry run lacks %s\n%s", line, out)
		}
	}
	if strings.Contains(out, "c.png") || strings.Contains(out, ",,") ||
		!strings.Contains(out, `3 caption(s) would change; 1 caption already holds "mytrigger" and is left as it is; nothing written`) {
		t.Errorf("dry run output:\n%s", out)
	}
	if got := fileText(t, filepath.Join(dir, "a.txt")); got != "a diagram" {
		t.Fatalf("the dry run wrote %q", got)
	}
	out = mustRun(t, "caption", "bulk", dir, "--prepend", "mytrigger, ", "--data-dir", data)
	if !strings.Contains(out, "changed 3 caption(s); 1 caption already holds") {
		t.Errorf("apply output:\n%s", out)
	}
	for name, w := range want {
		if got := fileText(t, filepath.Join(dir, name+".txt")); got != w {
			t.Errorf("%s.txt: %q, want %q", name, got, w)
		}
	}
	out = mustRun(t, "caption", "bulk", dir, "--append", ", best quality,", "--dry-run", "--data-dir", data)
	if !strings.Contains(out, `b.png: "mytrigger, a chart," → "mytrigger, a chart, best quality"`) || !strings.Contains(out, "4 caption(s) would change; nothing written") {
		t.Errorf("append dry run:\n%s", out)
	}
	if code, _, errs := captionRun(t, "caption", "bulk", dir, "--prepend", " , ", "--data-dir", data); code != exitUsage || !strings.Contains(errs, "holds no tag") {
		t.Errorf("prepend of separators only: exit %d, %s", code, errs)
	}
}

func TestCaptionCLIUsage(t *testing.T) {
	data := t.TempDir()
	dir := t.TempDir()
	writeTestPNG(t, filepath.Join(dir, "x.png"), 8, 8)
	if code, out, _ := captionRun(t, "caption", "help"); code != 0 || !strings.Contains(out, "caption bulk DIR") {
		t.Fatalf("help: %d %s", code, out)
	}
	for _, args := range [][]string{
		{"caption"},
		{"caption", "frobnicate", dir},
		{"caption", "list"},
		{"caption", "list", dir, "extra"},
		{"caption", "set", dir, "x.png"},
		{"caption", "bulk", dir},
		{"caption", "bulk", dir, "--prepend", "a", "--append", "b"},
		{"caption", "bulk", dir, "--replace", "only-old"},
		{"caption", "list", dir, "--bogus"},
		{"caption", "set", dir, "x.png", "t", "--dry-run"},
		{"caption", "undo", dir, "--json", "x.png"},
		{"caption", "list", dir, "--data-dir"},
	} {
		code, _, errs := captionRun(t, append(args, "--data-dir", data)...)
		if args[len(args)-1] == "--data-dir" {
			code, _, errs = captionRun(t, args...)
		}
		if code != 2 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 with a message", args, code, errs)
		}
	}
	// A dataset folder that does not exist is an error (1), not a usage error.
	code, _, errs := captionRun(t, "caption", "list", filepath.Join(dir, "nope"), "--data-dir", data)
	if code != 1 || !strings.Contains(errs, "nope") {
		t.Fatalf("missing folder: %d %s", code, errs)
	}
	// Text beginning with a dash goes after --.
	mustRun(t, "caption", "set", dir, "x.png", "--data-dir", data, "--", "-dash, tag")
	if got := fileText(t, filepath.Join(dir, "x.txt")); got != "-dash, tag" {
		t.Fatalf("text after --: %q", got)
	}
}

func TestCaptionCLINonUTF8NeedsForce(t *testing.T) {
	data := t.TempDir()
	dir := t.TempDir()
	writeTestPNG(t, filepath.Join(dir, "x.png"), 8, 8)
	capX := filepath.Join(dir, "x.txt")
	os.WriteFile(capX, []byte("caf\xe9"), 0o644)
	got := listJSON(t, data, dir)
	if got[0].Caption != nil {
		t.Fatalf("non-UTF-8 caption listed as %q", *got[0].Caption)
	}
	code, _, errs := captionRun(t, "caption", "set", dir, "x.png", "café", "--data-dir", data)
	if code != 1 || !strings.Contains(errs, "not valid UTF-8") || !strings.Contains(errs, "--force") {
		t.Fatalf("set over non-UTF-8: %d %s", code, errs)
	}
	if fileText(t, capX) != "caf\xe9" {
		t.Fatal("bytes changed without --force")
	}
	mustRun(t, "caption", "set", dir, "x.png", "café", "--force", "--data-dir", data)
	if fileText(t, capX) != "café" {
		t.Fatalf("after --force: %q", fileText(t, capX))
	}
}

func TestCaptionCLISample(t *testing.T) {
	data := t.TempDir()
	out := strings.TrimSpace(mustRun(t, "caption", "sample", "--data-dir", data))
	if out != filepath.Join(data, "sample-dataset") {
		t.Fatalf("sample printed %q", out)
	}
	got := listJSON(t, data, out)
	uncaptioned := 0
	for _, e := range got {
		if e.Caption == nil {
			uncaptioned++
		}
		if e.Width != 1024 || e.Height != 1024 || e.Error != "" {
			t.Fatalf("sample entry %+v", e)
		}
	}
	if len(got) < 8 || uncaptioned != 2 {
		t.Fatalf("%d sample images, %d uncaptioned", len(got), uncaptioned)
	}
}
