// Command lorastudio is LoRA Studio: a desktop studio for captioning a dataset,
// training an SDXL LoRA and generating images with it. With no subcommand it
// opens the studio window; the subcommands run the same jobs from a terminal.
package main

import (
	_ "lorastudio/app/internal/localefix" // before Fyne reads the locale

	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// usage is printed by `lorastudio help` and on a bad command line.
const usage = `LoRA Studio — caption, train and generate with SDXL LoRAs.

Usage:
  lorastudio [--data-dir DIR] [DATASET]        open the studio (on DATASET if given)
  lorastudio caption SUBCOMMAND ...            caption a dataset from the terminal
  lorastudio generate --prompt TEXT --out F.png [--model PATH] [--lora F[:W]]...
                                               generate an image (see 'generate --help')
  lorastudio train --dataset DIR [--model PATH] [--out F.safetensors] [...]
                                               train a LoRA (see 'train --help')
  lorastudio runs list|show ID [--json]        the training runs
  lorastudio lora merge --lora F[:W]... --out PATH [--model PATH] [--format single|diffusers]
                                               bake LoRAs into a new checkpoint (see 'lora --help')
  lorastudio info --device [auto|cpu|gl] [--json]
                                               which compute backend that device gives
  lorastudio info [MODEL] [--json]             what an SDXL model holds (default: the demo model)
  lorastudio bench ops [--device D] [--json]   benchmark the engine's ops
  lorastudio bench sdxl|generate [...]         full-size SDXL with random weights
  lorastudio gallery list [--search TEXT] [--json]
                                               the generated images, newest first
  lorastudio help                              this text

Global flag (before or after the subcommand):
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
	cmd, rest := splitCommand(args)
	var err error
	switch cmd {
	case "caption":
		err = captionCommand(rest, stdout, stderr)
	case "generate":
		err = generateCommand(rest, stdout, stderr)
	case "train":
		err = trainCommand(rest, stdout, stderr)
	case "runs":
		err = runsCommand(rest, stdout, stderr)
	case "lora":
		err = loraCommand(rest, stdout, stderr)
	case "info":
		err = infoCommand(rest, stdout, stderr)
	case "bench":
		err = benchCommand(rest, stdout, stderr)
	case "gallery":
		err = galleryCommand(rest, stdout, stderr)
	case "help", "-h", "--help", "-help":
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

// globalValueFlags are the flags every command accepts that take a value; they
// may stand before the subcommand (`lorastudio --data-dir D caption list X`).
var globalValueFlags = map[string]bool{"--data-dir": true, "-data-dir": true}

// splitCommand finds the subcommand behind any leading global flags and returns
// it with the rest of the line, those flags leading it, so that each
// subcommand parses them itself. cmd is "" when the line names no subcommand.
func splitCommand(args []string) (cmd string, rest []string) {
	var globals []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(a, "=")
		switch {
		case globalValueFlags[name] && hasValue:
			globals = append(globals, a)
		case globalValueFlags[name] && i+1 < len(args):
			globals = append(globals, a, args[i+1])
			i++
		case strings.HasPrefix(a, "-") && a != "-h" && a != "--help" && a != "-help":
			return "", args // an unknown leading flag: the studio's own parser reports it
		default:
			return a, append(globals, args[i+1:]...)
		}
	}
	return "", args
}
