package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestParseGUIArgs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args     []string
		want     guiOptions
		errUsage bool
		errText  string
	}{
		{args: nil, want: guiOptions{}},
		{args: []string{"--data-dir", "/x/y"}, want: guiOptions{dataDir: "/x/y"}},
		{args: []string{dir}, want: guiOptions{dataset: dir}},
		{args: []string{dir, "--data-dir", "/d"}, want: guiOptions{dataDir: "/d", dataset: dir}},
		{args: []string{"--data-dir=/d", dir}, want: guiOptions{dataDir: "/d", dataset: dir}},
		{args: []string{dir, dir}, errUsage: true, errText: "one dataset folder"},
		{args: []string{"trian"}, errUsage: true, errText: `"trian" is not a command`},
		{args: []string{file}, errUsage: true, errText: "is not a folder"},
		{args: []string{"--bogus"}, errUsage: true, errText: "bogus"},
	} {
		got, err := parseGUIArgs(c.args, io.Discard)
		if c.errText != "" {
			if err == nil || !strings.Contains(err.Error(), c.errText) || errors.Is(err, errUsage) != c.errUsage {
				t.Errorf("parseGUIArgs(%q) error = %v, want one containing %q (usage %v)", c.args, err, c.errText, c.errUsage)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseGUIArgs(%q) = %+v, %v; want %+v", c.args, got, err, c.want)
		}
	}
	if _, err := parseGUIArgs([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h gives %v, want flag.ErrHelp", err)
	}
}

func TestGUICommandRejectsBadDatasetBeforeOpeningAWindow(t *testing.T) {
	var stderr strings.Builder
	code := run([]string{"--data-dir", t.TempDir(), filepath.Join(t.TempDir(), "missing")}, io.Discard, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "does not exist") {
		t.Errorf("exit %d, stderr %q; want a usage error naming the missing folder", code, stderr.String())
	}
}

func TestGUICommandWithoutDisplayIsAClearError(t *testing.T) {
	if !strings.Contains("linux freebsd openbsd netbsd", runtime.GOOS) {
		t.Skip("this platform always has a window system")
	}
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	var stderr strings.Builder
	code := run([]string{"--data-dir", t.TempDir()}, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "DISPLAY is not set") {
		t.Errorf("exit %d, stderr %q; want a clear no-display error", code, stderr.String())
	}
}
