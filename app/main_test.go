package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	cases := []struct {
		args     []string
		cmd      string
		wantRest []string
	}{
		{[]string{"caption", "list", "d"}, "caption", []string{"list", "d"}},
		{[]string{"--data-dir", "x", "caption", "list", "d"}, "caption", []string{"--data-dir", "x", "list", "d"}},
		{[]string{"--data-dir=x", "info", "--device"}, "info", []string{"--data-dir=x", "--device"}},
		{[]string{"--data-dir", "d", "bench", "ops", "--device", "cpu"}, "bench", []string{"--data-dir", "d", "ops", "--device", "cpu"}},
		{[]string{}, "", []string{}},
		{[]string{"--data-dir", "x"}, "", []string{"--data-dir", "x"}},
		{[]string{"--bogus", "caption"}, "", []string{"--bogus", "caption"}},
		{[]string{"/some/dataset"}, "/some/dataset", []string{}},
	}
	for _, c := range cases {
		cmd, rest := splitCommand(c.args)
		if cmd != c.cmd || !reflect.DeepEqual(append([]string{}, rest...), c.wantRest) {
			t.Errorf("splitCommand(%q) = %q, %q; want %q, %q", c.args, cmd, rest, c.cmd, c.wantRest)
		}
	}
}

// TestGlobalDataDirBeforeSubcommand runs the real dispatcher with --data-dir
// ahead of the subcommand and checks the database lands in that directory.
func TestGlobalDataDirBeforeSubcommand(t *testing.T) {
	dataset := t.TempDir()
	writeTestPNG(t, filepath.Join(dataset, "a.png"), 16, 8)
	if err := os.WriteFile(filepath.Join(dataset, "a.txt"), []byte("a diagram"), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	var out, errb bytes.Buffer
	if code := run([]string{"--data-dir", dataDir, "caption", "list", dataset, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var items []map[string]any
	if err := json.Unmarshal(out.Bytes(), &items); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out.String())
	}
	if len(items) != 1 || items[0]["caption"] != "a diagram" {
		t.Fatalf("list --json = %s", out.String())
	}
	if entries, err := os.ReadDir(dataDir); err != nil || len(entries) == 0 {
		t.Fatalf("data dir %s was not used: %v %v", dataDir, entries, err)
	}
}

// TestNoLocaleErrorUnderCLocale re-runs this test binary with LANG=C.UTF-8 (the default of many terminals and containers): Fyne,
// linked into every command, must not log a locale error (localefix).
func TestNoLocaleErrorUnderCLocale(t *testing.T) {
	if os.Getenv("LORASTUDIO_LOCALE_CHILD") == "1" {
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoLocaleErrorUnderCLocale$")
	cmd.Env = append(os.Environ(), "LORASTUDIO_LOCALE_CHILD=1", "LANG=C.UTF-8", "LC_ALL=", "LC_MESSAGES=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "locale") {
		t.Fatalf("a C locale still makes Fyne log an error:\n%s", out)
	}
}
