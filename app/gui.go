package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	fyneapp "fyne.io/fyne/v2/app"

	"lorastudio/assets"
	"lorastudio/ui"
)

// appID is the Fyne application ID (as in FyneApp.toml): it names the
// preferences folder and the desktop entry.
const appID = "studio.lorastudio.app"

// appVersion is shown in the Settings tab; keep it in step with FyneApp.toml.
const appVersion = "0.1.0"

// guiOptions is the studio window's command line.
type guiOptions struct {
	dataDir string // --data-dir, "" for the default
	dataset string // DATASET folder to open, "" for the last one (or the sample)
}

// parseGUIArgs reads `[--data-dir DIR] [DATASET]`, flags before or after the folder.
func parseGUIArgs(args []string, stderr io.Writer) (guiOptions, error) {
	var o guiOptions
	fs := flag.NewFlagSet("lorastudio", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dataDir, "data-dir", "", "where the database, thumbnails and defaults live")
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return o, err
			}
			return o, usageError("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
	switch len(rest) {
	case 0:
	case 1:
		o.dataset = rest[0]
	default:
		return o, usageError("the studio opens one dataset folder, got %d: %s", len(rest), strings.Join(rest, " "))
	}
	if o.dataset != "" {
		st, err := os.Stat(o.dataset)
		switch {
		case err != nil && os.IsNotExist(err):
			return o, usageError("dataset folder %s does not exist (and %q is not a command; see 'lorastudio help')", o.dataset, o.dataset)
		case err != nil:
			return o, fmt.Errorf("dataset folder %s: %w", o.dataset, err)
		case !st.IsDir():
			return o, usageError("%s is not a folder: the studio opens a dataset folder", o.dataset)
		}
	}
	return o, nil
}

// errNoDisplay explains why the window cannot open on a machine without a display.
var errNoDisplay = errors.New("no display to open the studio window on (DISPLAY is not set): " +
	"run it in a desktop session, under xvfb-run, or use the terminal commands ('lorastudio help')")

// hasDisplay reports whether a window system is reachable by name: X11 or
// Wayland on Unix-like systems; macOS and Windows always have one.
func hasDisplay() bool {
	switch runtime.GOOS {
	case "darwin", "windows", "android", "ios", "js":
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// guiCommand opens the studio window and returns when it is closed.
func guiCommand(args []string, stderr io.Writer) (err error) {
	o, err := parseGUIArgs(args, stderr)
	if err != nil {
		return err
	}
	if !hasDisplay() {
		return errNoDisplay
	}
	st, err := openStudio(o.dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	// The windowing library panics when it cannot start (an unreachable
	// display); report that as an error instead of a stack trace.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot open the studio window (is DISPLAY=%q reachable?): %v", os.Getenv("DISPLAY"), r)
		}
	}()
	a := fyneapp.NewWithID(appID)
	a.SetIcon(assets.Icon)
	w := ui.NewMainWindow(a, st, appVersion)
	w.Window.SetIcon(assets.Icon)
	w.OpenInitial(o.dataset)
	w.Window.ShowAndRun()
	return nil
}
