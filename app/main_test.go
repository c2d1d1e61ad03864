package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
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
		{[]string{"--device", "cpu", "bench", "ops"}, "bench", []string{"--device", "cpu", "ops"}},
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
