package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"lorastudio/app/studio"
)

// captionUsage is printed by `lorastudio caption help`.
const captionUsage = `Caption a dataset from the terminal (the same code as the studio window).

Usage:
  lorastudio caption list DIR [--json]
  lorastudio caption set DIR IMAGE TEXT [--force]
  lorastudio caption bulk DIR (--prepend T | --append T | --replace OLD NEW) [--dry-run]
  lorastudio caption bulk DIR --resume   finish a bulk edit that was cut short
  lorastudio caption undo-bulk DIR       undo the last bulk edit (or roll back one cut short)
  lorastudio caption history DIR IMAGE [--json]
  lorastudio caption undo DIR IMAGE
  lorastudio caption redo DIR IMAGE
  lorastudio caption sample            write the sample dataset, print its folder
  lorastudio caption help

DIR is a dataset folder: images/ + captions/ (NAME.png with captions/NAME.txt),
or kohya style (NAME.png with NAME.txt beside it, N_name repeat folders).
IMAGE is the image's path relative to DIR, as 'list' prints it.
Every change is written atomically and recorded in the history, so it can be
undone. --force lets 'set' replace a caption file that is not UTF-8 text (the
old bytes are backed up under the data directory first).
Prepend and append skip captions that already have the tag, and only touch
images that have a caption file. --dry-run shows the changes without writing.
A bulk edit is recorded as a whole before its first file changes: if it is cut
short (a crash, kill -9), every caption file holds its old or its new text and
the next command names the unfinished edit; finish it with --resume or roll it
back with undo-bulk. A caption edited by hand since a bulk edit is left as it
is by undo-bulk and listed.

Flags (anywhere on the line):
  --data-dir DIR   where the database, thumbnails and backups live
  --json           machine-readable output (list, history)
`

// captionArgs is a parsed caption command line.
type captionArgs struct {
	dataDir  string
	json     bool
	dryRun   bool
	force    bool
	resume   bool
	ops      []studio.BulkOp
	pos      []string
	dataDirs int
}

// parseCaptionArgs separates flags (allowed anywhere) from positional arguments.
func parseCaptionArgs(args []string) (*captionArgs, error) {
	a := &captionArgs{}
	need := func(i, n int, flag string) error {
		if i+n >= len(args) {
			return usageError("%s needs %d value(s)", flag, n)
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			a.pos = append(a.pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			a.pos = append(a.pos, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		switch name {
		case "data-dir":
			if !hasValue {
				if err := need(i, 1, "--data-dir"); err != nil {
					return nil, err
				}
				i++
				value = args[i]
			}
			a.dataDir = value
			a.dataDirs++
		case "json", "dry-run", "force", "resume", "h", "help":
			if hasValue {
				return nil, usageError("--%s takes no value", name)
			}
			switch name {
			case "json":
				a.json = true
			case "dry-run":
				a.dryRun = true
			case "force":
				a.force = true
			case "resume":
				a.resume = true
			default:
				a.pos = append([]string{"help"}, a.pos...)
			}
		case "prepend", "append":
			if !hasValue {
				if err := need(i, 1, "--"+name); err != nil {
					return nil, err
				}
				i++
				value = args[i]
			}
			kind := studio.BulkPrepend
			if name == "append" {
				kind = studio.BulkAppend
			}
			a.ops = append(a.ops, studio.BulkOp{Kind: kind, Text: value})
		case "replace":
			if hasValue {
				return nil, usageError("--replace takes two values: --replace OLD NEW")
			}
			if err := need(i, 2, "--replace"); err != nil {
				return nil, err
			}
			a.ops = append(a.ops, studio.BulkOp{Kind: studio.BulkReplace, Old: args[i+1], New: args[i+2]})
			i += 2
		default:
			return nil, usageError("unknown flag %s (see 'lorastudio caption help')", arg)
		}
	}
	return a, nil
}

// captionCommand runs `lorastudio caption ...`.
func captionCommand(args []string, stdout, stderr io.Writer) error {
	a, err := parseCaptionArgs(args)
	if err != nil {
		return err
	}
	if len(a.pos) == 0 {
		fmt.Fprint(stderr, captionUsage)
		return usageError("caption needs a subcommand")
	}
	sub, rest := a.pos[0], a.pos[1:]
	nargs := map[string]int{"sample": 0, "list": 1, "set": 3, "bulk": 1, "undo-bulk": 1, "history": 2, "undo": 2, "redo": 2}
	if sub == "help" {
		fmt.Fprint(stdout, captionUsage)
		return nil
	}
	want, ok := nargs[sub]
	if !ok {
		return usageError("unknown caption subcommand %q (see 'lorastudio caption help')", sub)
	}
	if len(rest) != want {
		return usageError("caption %s takes %d argument(s), got %d (see 'lorastudio caption help')", sub, want, len(rest))
	}
	if a.dataDirs > 1 {
		return usageError("--data-dir given more than once")
	}
	if a.json && sub != "list" && sub != "history" {
		return usageError("--json applies to list and history only")
	}
	if a.dryRun && sub != "bulk" {
		return usageError("--dry-run applies to bulk only")
	}
	if a.force && sub != "set" {
		return usageError("--force applies to set only")
	}
	if a.resume && (sub != "bulk" || len(a.ops) > 0 || a.dryRun) {
		return usageError("--resume applies to bulk alone: 'caption bulk DIR --resume'")
	}
	if sub == "bulk" && !a.resume && len(a.ops) != 1 {
		return usageError("caption bulk needs exactly one of --prepend T, --append T, --replace OLD NEW")
	}
	if sub != "bulk" && len(a.ops) > 0 {
		return usageError("--prepend, --append and --replace apply to bulk only")
	}
	if sub == "set" && !utf8.ValidString(rest[2]) {
		return usageError("caption text is not valid UTF-8")
	}

	st, err := openStudio(a.dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	if sub == "sample" {
		dir, err := st.SampleDataset()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, dir)
		return nil
	}
	d, err := st.OpenDataset(rest[0])
	if err != nil {
		return err
	}
	u, unfinished, err := d.UnfinishedBatch()
	if err != nil {
		return err
	}
	switch {
	case sub == "bulk" && a.resume:
		if !unfinished {
			return fmt.Errorf("no unfinished bulk edit in %s: nothing to resume", d.Root())
		}
		out, err := d.FinishBatch()
		printBatchOutcome(d, out, stdout, stderr)
		return err
	case sub == "undo-bulk":
		out, err := d.UndoLastBulk()
		if errors.Is(err, studio.ErrNothingToUndo) {
			return fmt.Errorf("no bulk edit to undo in %s", d.Root())
		}
		printBatchOutcome(d, out, stdout, stderr)
		return err
	case unfinished && sub == "bulk" && !a.dryRun:
		fmt.Fprint(stderr, u.Notice(d.Root()))
		return fmt.Errorf("a new bulk edit waits until the unfinished one in %s is finished or rolled back", d.Root())
	case unfinished:
		fmt.Fprint(stderr, u.Notice(d.Root()))
	}
	switch sub {
	case "list":
		return captionList(d, a.json, stdout)
	case "set":
		return captionSet(d, rest[1], rest[2], a.force, stdout)
	case "bulk":
		return captionBulk(d, a.ops[0], a.dryRun, stdout, stderr)
	case "history":
		return captionHistory(d, rest[1], a.json, stdout)
	default: // undo, redo
		return captionUndoRedo(d, sub, rest[1], stdout)
	}
}

// imageRel finds IMAGE in the dataset: a path relative to DIR as list prints
// it, or a path to the image file itself. The error names it.
func imageRel(d *studio.Dataset, image string) (string, error) {
	rel := filepath.ToSlash(filepath.Clean(image))
	if _, ok := d.Item(rel); ok {
		return rel, nil
	}
	if abs, err := filepath.Abs(image); err == nil {
		if r, err := filepath.Rel(d.Root(), abs); err == nil && !strings.HasPrefix(r, "..") {
			if _, ok := d.Item(filepath.ToSlash(r)); ok {
				return filepath.ToSlash(r), nil
			}
		}
	}
	return "", fmt.Errorf("image %s is not in dataset %s (see 'lorastudio caption list %s')", image, d.Root(), d.Root())
}

// listEntry is one element of `caption list --json`.
type listEntry struct {
	Image        string   `json:"image"`
	Caption      *string  `json:"caption"`
	Width        int      `json:"width"`
	Height       int      `json:"height"`
	Format       string   `json:"format,omitempty"`
	Repeats      int      `json:"repeats,omitempty"`
	Error        string   `json:"error,omitempty"`
	CaptionError string   `json:"caption_error,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
}

// captionList prints the dataset's images and captions.
func captionList(d *studio.Dataset, asJSON bool, w io.Writer) error {
	items := d.Items()
	if asJSON {
		out := make([]listEntry, 0, len(items))
		for _, it := range items {
			e := listEntry{Image: it.Rel, Width: it.Width, Height: it.Height, Format: it.Format, Warnings: it.WarningTexts()}
			if it.HasCaption && it.CaptionErr == nil {
				c := it.Caption
				e.Caption = &c
			}
			if d.Layout() == studio.LayoutKohya {
				e.Repeats = it.Repeats
			}
			if it.Err != nil {
				e.Error = it.Err.Error()
			}
			if it.CaptionErr != nil {
				e.CaptionError = it.CaptionErr.Error()
			}
			out = append(out, e)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tSIZE\tCAPTION")
	for _, it := range items {
		size := fmt.Sprintf("%dx%d", it.Width, it.Height)
		if it.Err != nil {
			size = "unreadable"
		}
		name := it.Rel
		if it.Repeats > 1 {
			name += fmt.Sprintf(" (x%d)", it.Repeats)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, size, captionCell(it))
	}
	tw.Flush()
	captioned, total := d.Progress()
	others := d.Others()
	fmt.Fprintf(w, "\n%s, %s layout: %d image(s), %d captioned, %d other file(s)\n", d.Root(), d.Layout(), total, captioned, len(others))
	for _, it := range items {
		if it.Err != nil {
			fmt.Fprintf(w, "error: %v\n", it.Err)
		}
		for _, warn := range it.Warnings {
			fmt.Fprintf(w, "warning: %s: %s\n", it.Rel, warn)
		}
	}
	for _, o := range others {
		fmt.Fprintf(w, "other file: %s\n", o)
	}
	return nil
}

// captionCell is a caption shortened to one table cell.
func captionCell(it *studio.Item) string {
	switch {
	case it.CaptionErr != nil:
		return "(unreadable caption file)"
	case !it.HasCaption:
		return "(none)"
	}
	c := strings.Join(strings.Fields(it.Caption), " ")
	if utf8.RuneCountInString(c) > 80 {
		c = string([]rune(c)[:79]) + "…"
	}
	if c == "" {
		return "(empty)"
	}
	return c
}

// captionSet writes one caption.
func captionSet(d *studio.Dataset, image, text string, force bool, w io.Writer) error {
	rel, err := imageRel(d, image)
	if err != nil {
		return err
	}
	if force {
		err = d.ForceSave(rel, text)
	} else {
		err = d.Save(rel, text)
	}
	var ce *studio.ConflictError
	if errors.As(err, &ce) && ce.NotUTF8 {
		return fmt.Errorf("%w (use --force to replace it)", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: saved\n", rel)
	return nil
}

// captionBulk previews and (unless dry-run) applies a bulk edit.
func captionBulk(d *studio.Dataset, op studio.BulkOp, dryRun bool, stdout, stderr io.Writer) error {
	plan, err := d.PlanBulk(op)
	if err != nil {
		return usageError("%v", err)
	}
	for _, c := range plan.Changes {
		fmt.Fprintf(stdout, "%s: %s → %s\n", c.Rel, strconv.Quote(c.Before), strconv.Quote(c.After))
	}
	note := plan.Note() // captions that hold the tags already
	if note != "" {
		note = "; " + note
	}
	if dryRun {
		fmt.Fprintf(stdout, "dry run: %d caption(s) would change%s; nothing written\n", len(plan.Changes), note)
		return nil
	}
	res, err := d.ApplyBulk(op)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "changed %d caption(s)%s", res.Changed, note)
	if res.BatchID != 0 {
		fmt.Fprintf(stdout, " (undo with 'lorastudio caption undo-bulk %s')", d.Root())
	}
	fmt.Fprintln(stdout)
	for _, f := range res.Failed {
		fmt.Fprintln(stderr, "not changed:", f)
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("%d caption(s) could not be changed", len(res.Failed))
	}
	return nil
}

// printBatchOutcome reports what finishing, rolling back or undoing a bulk
// edit did: the count on stdout, each caption left alone and each failure
// on stderr.
func printBatchOutcome(d *studio.Dataset, out studio.BatchOutcome, stdout, stderr io.Writer) {
	if out.BatchID == 0 {
		return
	}
	what := fmt.Sprintf("bulk edit %d (%s)", out.BatchID, out.Description)
	switch {
	case out.Action == studio.BatchFinished && out.Undo:
		fmt.Fprintf(stdout, "finished the undo of %s: %d caption(s) restored\n", what, out.Restored())
	case out.Action == studio.BatchFinished:
		fmt.Fprintf(stdout, "finished %s: %d caption(s) now hold the edit (undo with 'lorastudio caption undo-bulk %s')\n", what, out.Restored(), d.Root())
	case out.Action == studio.BatchRolledBack && out.Undo:
		fmt.Fprintf(stdout, "rolled back the undo of %s: %d caption(s) hold the edit again\n", what, out.Restored())
	case out.Action == studio.BatchRolledBack:
		fmt.Fprintf(stdout, "rolled back %s: %d caption(s) restored\n", what, out.Restored())
	default:
		fmt.Fprintf(stdout, "undid %s: restored %d caption(s)\n", what, out.Restored())
	}
	for _, c := range out.Conflicts {
		fmt.Fprintln(stderr, "conflict:", c)
	}
	for _, f := range out.Failed {
		fmt.Fprintln(stderr, "not written:", f)
	}
}

// historyEntry is one element of `caption history --json`.
type historyEntry struct {
	ID      int64  `json:"id"`
	Caption string `json:"caption"`
	Time    string `json:"time"`
	Origin  string `json:"origin"`
}

// captionHistory prints an image's caption revisions, oldest first.
func captionHistory(d *studio.Dataset, image string, asJSON bool, w io.Writer) error {
	rel, err := imageRel(d, image)
	if err != nil {
		return err
	}
	revs, err := d.History(rel)
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]historyEntry, 0, len(revs))
		for _, r := range revs {
			out = append(out, historyEntry{ID: r.ID, Caption: r.Text, Time: r.Time.UTC().Format(time.RFC3339Nano), Origin: string(r.Origin)})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(revs) == 0 {
		fmt.Fprintf(w, "%s: no history yet\n", rel)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tORIGIN\tCAPTION")
	for _, r := range revs {
		text := strconv.Quote(r.Text)
		if r.Text == "" {
			text = "(no caption)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.ID, r.Time.Local().Format("2006-01-02 15:04:05"), r.Origin, text)
	}
	return tw.Flush()
}

// captionUndoRedo undoes or redoes one caption change.
func captionUndoRedo(d *studio.Dataset, sub, image string, w io.Writer) error {
	rel, err := imageRel(d, image)
	if err != nil {
		return err
	}
	var text string
	if sub == "undo" {
		text, err = d.Undo(rel)
	} else {
		text, err = d.Redo(rel)
	}
	switch {
	case errors.Is(err, studio.ErrNothingToUndo):
		return fmt.Errorf("%s: nothing to undo", rel)
	case errors.Is(err, studio.ErrNothingToRedo):
		return fmt.Errorf("%s: nothing to redo", rel)
	case err != nil:
		return err
	}
	if text == "" {
		fmt.Fprintf(w, "%s: no caption (file removed)\n", rel)
		return nil
	}
	fmt.Fprintf(w, "%s: %s\n", rel, strconv.Quote(text))
	return nil
}
