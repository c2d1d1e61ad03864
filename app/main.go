// Command lorastudio is LoRA Studio: a desktop studio for captioning a dataset,
// training an SDXL LoRA and generating images with it. With no subcommand it
// opens the studio window; the subcommands run the same jobs from a terminal.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// usage is printed by `lorastudio help` and on a bad command line.
const usage = `LoRA Studio — caption, train and generate with SDXL LoRAs.

Usage:
  lorastudio [--data-dir DIR] [DATASET]        open the studio (on DATASET if given)
  lorastudio caption SUBCOMMAND ...            caption a dataset from the terminal
  lorastudio info --device [--json]            show which compute backend is used
  lorastudio bench ops [--device D] [--json]   benchmark the engine's ops
  lorastudio help                              this text

Global flags (before or after the subcommand):
  --data-dir DIR   where the database, thumbnails and defaults live
                   (default: $LORASTUDIO_DATA, else the user data directory)

Run 'lorastudio caption help' for the captioning commands.
`

// exitUsage is the exit code for a bad command line; 1 is any other failure.
const exitUsage = 2

// errUsage marks an error caused by the command line itself.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches one command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "caption":
		err = captionCommand(args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "info":
		err = infoCommand(args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "bench":
		err = benchCommand(args[1:], stdout, stderr)
	case len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help"):
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = guiCommand(args, stderr)
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "lorastudio:", err)
	if errors.Is(err, errUsage) {
		return exitUsage
	}
	return 1
}

// usageError wraps a message about the command line so run exits with exitUsage.
func usageError(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}
