package main

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireGL reports whether tests must fail, not skip, without a display stack.
func requireGL() bool { return os.Getenv("LORASTUDIO_REQUIRE_GL") == "1" }

// TestE2EStudioWindowScreenshot builds the real binary, checks that it
// fails clearly on a display it cannot reach, runs it on a fresh data
// directory and an empty HOME under Xvfb, waits for the "LoRA Studio"
// window, screenshots the X screen, checks the picture is not blank and that
// the sample dataset was written, then drives the keyboard (Ctrl+J, typing, Ctrl+S) and checks
// the caption file on disk. With LORASTUDIO_SCREENSHOT_OUT=path the
// screenshot is copied there (the README's docs/screenshot-dataset.png).
func TestE2EStudioWindowScreenshot(t *testing.T) {
	needWindowTools(t, "end-to-end window test")
	tmp := t.TempDir()
	bin := studioBinary(t)

	// A display that cannot be reached: a clear error and exit 1, never a
	// silent exit or a process that waits without a window.
	n := 1000
	for ; n < 2000; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err != nil {
			break
		}
	}
	noX := exec.Command(bin, "--data-dir", filepath.Join(tmp, "noX"))
	noX.Env = append(os.Environ(), fmt.Sprintf("DISPLAY=:%d", n), "WAYLAND_DISPLAY=")
	p, err := startProcess("lorastudio without its display", noX)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(10 * time.Second) })
	mustWait(t, p, 2*time.Minute, "its exit", func() bool { gone, _ := p.exited(); return gone })
	var exit *exec.ExitError
	if _, err := p.exited(); !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(p.out.String(), "cannot open the studio window") {
		t.Fatalf("with DISPLAY=:%d: %v, want exit 1 saying the window cannot open; %s", n, err, p.report())
	}

	display := startXvfb(t, 1440, 900)
	dataDir := filepath.Join(tmp, "data")
	app := startStudio(t, bin, display, dataDir)
	x := xClient(display)

	// The window appears.
	var wid string
	mustWait(t, app, 60*time.Second, "the LoRA Studio window", func() bool {
		out, err := x("xdotool", "search", "--name", "LoRA Studio")
		if err != nil || out == "" {
			return false
		}
		wid = strings.Fields(out)[0]
		return true
	})
	// The sample dataset is written and its thumbnails are made.
	sample := filepath.Join(dataDir, "sample-dataset")
	mustWait(t, app, 60*time.Second, "the sample dataset and its thumbnails", func() bool {
		caps, _ := filepath.Glob(filepath.Join(sample, "captions", "*.txt"))
		imgs, _ := filepath.Glob(filepath.Join(sample, "images", "*.png"))
		thumbs, _ := filepath.Glob(filepath.Join(dataDir, "thumbnails", "*.png"))
		return len(caps) > 0 && len(imgs) > 0 && len(thumbs) >= len(imgs)
	})
	// The last thumbnails reach the screen: it settles on a picture that is not blank.
	shot := filepath.Join(tmp, "screenshot.png")
	img := waitSettled(t, app, x, shot, "a screen that settles on a picture that is not blank")
	b := img.Bounds()
	t.Logf("screenshot %dx%d, luma std-dev %.1f, title %q", b.Dx(), b.Dy(), lumaStdDev(img), windowName(x, wid))
	if out := os.Getenv("LORASTUDIO_SCREENSHOT_OUT"); out != "" {
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot saved to %s", out)
	}

	// Keyboard: jump to the first uncaptioned image, type, save.
	before, _ := filepath.Glob(filepath.Join(sample, "captions", "*.txt"))
	const typed = "typed through xdotool"
	if _, err := x("xdotool", "key", "--window", wid, "ctrl+j"); err != nil {
		t.Fatal(err)
	}
	waitSettled(t, app, x, filepath.Join(tmp, "jumped.png"), "the screen after Ctrl+J")
	if out, err := x("xdotool", "type", "--delay", "20", typed); err != nil {
		t.Fatalf("xdotool type: %v %s", err, out)
	}
	waitSettled(t, app, x, filepath.Join(tmp, "typed.png"), "the screen after typing")
	if _, err := x("xdotool", "key", "ctrl+s"); err != nil {
		t.Fatal(err)
	}
	var saved string
	mustWait(t, app, 15*time.Second, "a caption file holding the typed text", func() bool {
		caps, _ := filepath.Glob(filepath.Join(sample, "captions", "*.txt"))
		for _, c := range caps {
			if data, err := os.ReadFile(c); err == nil && string(data) == typed {
				saved = c
				return true
			}
		}
		return false
	})
	after, _ := filepath.Glob(filepath.Join(sample, "captions", "*.txt"))
	if len(after) != len(before)+1 {
		t.Errorf("caption files %d before, %d after saving an uncaptioned image (%s)", len(before), len(after), saved)
	}
	if strings.Contains(app.out.String(), "panic:") {
		t.Fatalf("lorastudio panicked; %s", app.report())
	}
}

// startStudio runs the studio binary on display with dataDir, as on a
// first start: an empty data directory and empty HOME and XDG directories
// (Fyne's preferences, Mesa's shader cache and the font caches start
// empty), so every test run is the fresh machine's first start. The studio is
// stopped when the test ends, and its output is logged (with the failure).
func startStudio(t *testing.T, bin, display, dataDir string) *process {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--data-dir", dataDir)
	cmd.Env = append(os.Environ(), "DISPLAY="+display, "LANG=en_US.UTF-8", "LC_ALL=en_US.UTF-8",
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "XDG_DATA_HOME="+filepath.Join(home, ".local", "share"))
	app, err := startProcess("lorastudio", cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := app.stop(30 * time.Second); err != nil {
			t.Error(err)
		}
		t.Log(app.report())
	})
	return app
}

// waitSettled takes screenshots of the X screen into shot until two in a row
// show the same picture and it is not blank: the studio has drawn what the
// last input or background work asked for. It returns the picture.
func waitSettled(t *testing.T, app *process, x func(...string) (string, error), shot, what string) image.Image {
	t.Helper()
	var prev, img image.Image
	mustWait(t, app, 60*time.Second, what, func() bool {
		if _, err := x("import", "-window", "root", shot); err != nil {
			return false
		}
		cur, err := readPNG(shot)
		if err != nil || lumaStdDev(cur) <= 20 {
			prev = nil
			return false
		}
		same := prev != nil && samePixels(prev, cur)
		prev, img = cur, cur
		return same
	})
	return img
}

// samePixels reports whether two pictures have the same size and pixels.
func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

// windowName returns an X window's title.
func windowName(x func(...string) (string, error), wid string) string {
	out, _ := x("xdotool", "getwindowname", wid)
	return out
}

// readPNG decodes a PNG file.
func readPNG(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// lumaStdDev is the standard deviation of the pixels' luma (0–255): about 0
// for a blank screen, tens for a rendered window.
func lumaStdDev(img image.Image) float64 {
	b := img.Bounds()
	var sum, sq, n float64
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			l := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 257
			sum += l
			sq += l * l
			n++
		}
	}
	mean := sum / n
	return math.Sqrt(math.Max(0, sq/n-mean*mean))
}
