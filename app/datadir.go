package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"lorastudio/app/studio"
)

// dataDirEnv overrides the data directory when --data-dir is not given.
const dataDirEnv = "LORASTUDIO_DATA"

// resolveDataDir picks the data directory: the flag, then $LORASTUDIO_DATA,
// then the user's configuration/data directory, and creates it.
func resolveDataDir(flagValue string) (string, error) {
	dir := flagValue
	if dir == "" {
		dir = os.Getenv(dataDirEnv)
	}
	if dir == "" {
		base, err := userDataBase()
		if err != nil {
			return "", fmt.Errorf("cannot find a data directory (set --data-dir or %s): %w", dataDirEnv, err)
		}
		dir = filepath.Join(base, "lorastudio")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("data directory %s: %w", abs, err)
	}
	return abs, nil
}

// userDataBase is where per-user application data lives: $XDG_DATA_HOME or
// ~/.local/share on Linux, Application Support on macOS, %LocalAppData% on Windows.
func userDataBase() (string, error) {
	switch runtime.GOOS {
	case "windows":
		if a := os.Getenv("LocalAppData"); a != "" {
			return a, nil
		}
		return os.UserConfigDir()
	case "darwin":
		return os.UserConfigDir() // ~/Library/Application Support
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return x, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "share"), nil
}

// openStudio opens the studio on the data directory resolveDataDir picks for
// the --data-dir value given.
func openStudio(dataDirFlag string) (*studio.Studio, error) {
	dir, err := resolveDataDir(dataDirFlag)
	if err != nil {
		return nil, err
	}
	return studio.Open(dir)
}
