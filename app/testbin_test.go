package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// studioBin is the real binary, built once for every test of the package
// that runs it (the end-to-end window tests, the kill test, SIGINT to train).
var studioBin struct {
	once      sync.Once
	dir, path string
	err       error
	out       []byte
}

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if studioBin.dir != "" {
		os.RemoveAll(studioBin.dir)
	}
	os.Exit(code)
}

// studioBinary returns the real binary, building it on the first call with
// SQLite's FTS5 as `make build` does (the gallery's search needs it).
func studioBinary(t *testing.T) string {
	t.Helper()
	studioBin.once.Do(func() {
		if studioBin.dir, studioBin.err = os.MkdirTemp("", "lorastudio-test-bin-"); studioBin.err != nil {
			return
		}
		studioBin.path = filepath.Join(studioBin.dir, "lorastudio")
		studioBin.out, studioBin.err = exec.Command("go", "build", "-tags", "sqlite_fts5", "-o", studioBin.path, ".").CombinedOutput()
	})
	if studioBin.err != nil {
		t.Fatalf("go build: %v\n%s", studioBin.err, studioBin.out)
	}
	return studioBin.path
}

// needWindowTools skips an end-to-end window test (what names it) when
// Xvfb, xdotool or ImageMagick is missing — a failure instead with
// LORASTUDIO_REQUIRE_GL=1, as in CI — and under -short.
func needWindowTools(t *testing.T, what string) {
	t.Helper()
	for _, tool := range []string{"Xvfb", "xdotool", "import"} {
		if _, err := exec.LookPath(tool); err != nil {
			if requireGL() {
				t.Fatalf("%s is not installed and LORASTUDIO_REQUIRE_GL=1 (make setup installs xvfb, xdotool, imagemagick)", tool)
			}
			t.Skipf("%s is not installed: the %s needs Xvfb, xdotool and ImageMagick (set LORASTUDIO_REQUIRE_GL=1 to make this a failure)", tool, what)
		}
	}
	if testing.Short() {
		t.Skipf("-short: the %s builds and runs the binary", what)
	}
}
