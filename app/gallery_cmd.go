package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"lorastudio/app/studio"
)

// galleryUsage is printed by `lorastudio gallery --help` and on a bad line.
const galleryUsage = `Usage: lorastudio gallery list [--search TEXT] [--favourites] [--limit N] [--json]

Lists the generated images of the history (the Playground's gallery), newest first.

Flags:
  --search TEXT   only images whose prompt or negative prompt holds these words
                  (the last word may be the start of a word); needs a build with
                  SQLite FTS5 (-tags sqlite_fts5, as 'make build' does)
  --favourites    only favourites
  --trash         the deleted images instead
  --limit N       at most N images (default: all)
  --json          a JSON array; each item has id, time, prompt, negative, model,
                  loras, seed, steps, cfg, sampler, size, file, cached, favourite
  --data-dir DIR  where the database lives
`

// galleryJSONItem is one image of `gallery list --json`.
type galleryJSONItem struct {
	ID        int64             `json:"id"`
	Time      time.Time         `json:"time"`
	Prompt    string            `json:"prompt"`
	Negative  *string           `json:"negative"`
	Model     string            `json:"model"`
	LoRAs     []galleryJSONLoRA `json:"loras"`
	Seed      uint64            `json:"seed"`
	Steps     int               `json:"steps"`
	CFG       float64           `json:"cfg"`
	Sampler   string            `json:"sampler"`
	Size      string            `json:"size"`
	File      string            `json:"file"`
	Cached    bool              `json:"cached"`
	Favourite bool              `json:"favourite"`
}

// galleryJSONLoRA is a LoRA of a listed image.
type galleryJSONLoRA struct {
	Path   string  `json:"path"`
	Weight float32 `json:"weight"`
}

// galleryArgs is a parsed `gallery list` line.
type galleryArgs struct {
	filter  studio.GalleryFilter
	limit   int
	asJSON  bool
	dataDir string
}

// parseGalleryArgs reads `gallery list [flags]`.
func parseGalleryArgs(args []string, stderr io.Writer) (galleryArgs, error) {
	var a galleryArgs
	// The global flags stand before the subcommand (see splitCommand): skip them to find it.
	i := 0
	for i < len(args) {
		name, _, hasValue := strings.Cut(args[i], "=")
		if !globalValueFlags[name] {
			break
		}
		i++
		if !hasValue {
			i++
		}
	}
	switch {
	case i < len(args) && args[i] == "list":
		args = append(append([]string{}, args[:i]...), args[i+1:]...)
	case hasHelpFlag(args):
	case i < len(args) && !strings.HasPrefix(args[i], "-"):
		return a, usageError("gallery: unknown subcommand %q (want list; see 'lorastudio gallery --help')", args[i])
	default:
		return a, usageError("gallery: want a subcommand: list (see 'lorastudio gallery --help')")
	}
	fs := flag.NewFlagSet("gallery list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.filter.Search, "search", "", "")
	fs.BoolVar(&a.filter.Favourites, "favourites", false, "")
	fs.BoolVar(&a.filter.Trash, "trash", false, "")
	fs.IntVar(&a.limit, "limit", 0, "")
	fs.BoolVar(&a.asJSON, "json", false, "")
	fs.StringVar(&a.dataDir, "data-dir", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, galleryUsage)
			return a, err
		}
		return a, usageError("gallery list: %v (see 'lorastudio gallery --help')", err)
	}
	if fs.NArg() > 0 {
		return a, usageError("gallery list: unexpected argument %q (quote a search and pass it with --search)", fs.Arg(0))
	}
	if a.limit < 0 {
		return a, usageError("gallery list: --limit %d: want 0 (all) or more", a.limit)
	}
	return a, nil
}

// hasHelpFlag reports whether args ask for help.
func hasHelpFlag(args []string) bool {
	for _, x := range args {
		switch x {
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// galleryCommand runs `lorastudio gallery`.
func galleryCommand(args []string, stdout, stderr io.Writer) error {
	a, err := parseGalleryArgs(args, stderr)
	if err != nil {
		return err
	}
	st, err := openStudio(a.dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	items, err := st.Gallery(a.filter, 0, a.limit)
	if err != nil {
		return fmt.Errorf("gallery list: %w", err)
	}
	if a.asJSON {
		out := make([]galleryJSONItem, 0, len(items))
		for _, it := range items {
			j := galleryJSONItem{ID: it.ID, Time: it.Time, Prompt: it.Prompt, Negative: it.Negative, Model: it.Model,
				LoRAs: []galleryJSONLoRA{}, Seed: it.Seed, Steps: it.Steps, CFG: it.CFG, Sampler: it.Sampler,
				Size: fmt.Sprintf("%dx%d", it.Width, it.Height), File: it.File, Cached: it.Cached, Favourite: it.Favourite}
			for _, l := range it.LoRAs {
				j.LoRAs = append(j.LoRAs, galleryJSONLoRA{Path: l.Path, Weight: l.Weight})
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(items) == 0 {
		fmt.Fprintln(stdout, "no images")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tSEED\tSIZE\tMODEL\tFLAGS\tPROMPT")
	for _, it := range items {
		var flags []string
		if it.Favourite {
			flags = append(flags, "fav")
		}
		if it.Cached {
			flags = append(flags, "cached")
		}
		prompt := strings.ReplaceAll(it.Prompt, "\n", " ")
		if r := []rune(prompt); len(r) > 60 {
			prompt = string(r[:59]) + "…"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%dx%d\t%s\t%s\t%s\n", it.ID, it.Time.Local().Format("2006-01-02 15:04:05"), it.Seed,
			it.Width, it.Height, studio.ModelLabel(it.Model), strings.Join(flags, ","), prompt)
	}
	return tw.Flush()
}
