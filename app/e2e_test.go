package main

import (
	"bytes"
	"context"
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

// TestE2EStudioWindowScreenshot builds the real binary, runs it on a fresh
// data directory under Xvfb, waits for the "LoRA Studio" window, screenshots
// the X screen, checks the picture is not blank and that the sample dataset
// was written, then drives the keyboard (Ctrl+J, typing, Ctrl+S) and checks
// the caption file on disk. With LORASTUDIO_SCREENSHOT_OUT=path the
// screenshot is copied there (the README's docs/screenshot-dataset.png).
func TestE2EStudioWindowScreenshot(t *testing.T) {
	for _, tool := range []string{"Xvfb", "xdotool", "import"} {
		if _, err := exec.LookPath(tool); err != nil {
			if requireGL() {
				t.Fatalf("%s is not installed and LORASTUDIO_REQUIRE_GL=1 (make setup installs xvfb, xdotool, imagemagick)", tool)
			}
			t.Skipf("%s is not installed: the end-to-end window test needs Xvfb, xdotool and ImageMagick (set LORASTUDIO_REQUIRE_GL=1 to make this a failure)", tool)
		}
	}
	if testing.Short() {
		t.Skip("-short: the end-to-end window test builds and runs the binary")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "lorastudio")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	display := startXvfb(t, 1440, 900)
	dataDir := filepath.Join(tmp, "data")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := exec.CommandContext(ctx, bin, "--data-dir", dataDir)
	app.Env = append(os.Environ(), "DISPLAY="+display, "LANG=en_US.UTF-8", "LC_ALL=en_US.UTF-8")
	var logs bytes.Buffer
	app.Stdout, app.Stderr = &logs, &logs
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- app.Wait() }()
	defer func() {
		cancel()
		<-exited
		t.Logf("lorastudio output:\n%s", logs.String())
	}()
	x := func(args ...string) (string, error) {
		c := exec.Command(args[0], args[1:]...)
		c.Env = append(os.Environ(), "DISPLAY="+display)
		out, err := c.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}

	// The window appears.
	var wid string
	waitFor(t, 60*time.Second, exited, "the LoRA Studio window", func() bool {
		out, err := x("xdotool", "search", "--name", "LoRA Studio")
		if err != nil || out == "" {
			return false
		}
		wid = strings.Fields(out)[0]
		return true
	})
	// The sample dataset is written and its thumbnails are made.
	sample := filepath.Join(dataDir, "sample-dataset")
	waitFor(t, 60*time.Second, exited, "the sample dataset and its thumbnails", func() bool {
		caps, _ := filepath.Glob(filepath.Join(sample, "captions", "*.txt"))
		imgs, _ := filepath.Glob(filepath.Join(sample, "images", "*.png"))
		thumbs, _ := filepath.Glob(filepath.Join(dataDir, "thumbnails", "*.png"))
		return len(caps) > 0 && len(imgs) > 0 && len(thumbs) >= len(imgs)
	})
	time.Sleep(2 * time.Second) // the last thumbnails reach the screen

	shot := filepath.Join(tmp, "screenshot.png")
	var img image.Image
	waitFor(t, 30*time.Second, exited, "a screenshot that is not blank", func() bool {
		if _, err := x("import", "-window", "root", shot); err != nil {
			return false
		}
		var err error
		img, err = readPNG(shot)
		return err == nil && lumaStdDev(img) > 20
	})
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
	time.Sleep(700 * time.Millisecond)
	if out, err := x("xdotool", "type", "--delay", "20", typed); err != nil {
		t.Fatalf("xdotool type: %v %s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := x("xdotool", "key", "ctrl+s"); err != nil {
		t.Fatal(err)
	}
	var saved string
	waitFor(t, 15*time.Second, exited, "a caption file holding the typed text", func() bool {
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
	if strings.Contains(logs.String(), "panic:") {
		t.Fatalf("lorastudio panicked:\n%s", logs.String())
	}
}

// startXvfb starts Xvfb on a free display and stops it when the test ends.
func startXvfb(t *testing.T, w, h int) string {
	t.Helper()
	for n := 87; n < 120; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		display := fmt.Sprintf(":%d", n)
		cmd := exec.Command("Xvfb", display, "-screen", "0", fmt.Sprintf("%dx%dx24", w, h), "-nolisten", "tcp")
		var logs bytes.Buffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("Xvfb: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
		})
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case err := <-done:
				t.Fatalf("Xvfb %s exited: %v\n%s", display, err, logs.String())
			default:
			}
			if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
				return display
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("Xvfb %s did not start in 15 s:\n%s", display, logs.String())
	}
	t.Fatal("no free X display number in :87–:119")
	return ""
}

// waitFor polls cond every 250 ms until it holds; it fails the test at the
// deadline or when the application exits first.
func waitFor(t *testing.T, limit time.Duration, exited <-chan error, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("lorastudio exited (%v) while waiting for %s", err, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
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
