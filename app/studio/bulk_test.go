package studio

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// tagDataset writes one image per caption (1.png with 1.txt ...) and opens
// the folder; the returned names are the images in caption order.
func tagDataset(t *testing.T, captions ...string) (string, *Dataset, []string) {
	t.Helper()
	s := newStudio(t)
	root := t.TempDir()
	var rels []string
	for i, c := range captions {
		name := fmt.Sprintf("%02d", i)
		writePNG(t, filepath.Join(root, name+".png"), 16, 16, i)
		writeText(t, filepath.Join(root, name+".txt"), c)
		rels = append(rels, name+".png")
	}
	d, err := s.OpenDataset(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, d, rels
}

// TestBulkAddsTagsWithoutDoubledSeparators: the text to prepend or append is
// a list of tags however it is written ("mytrigger, " as kohya users write a
// trigger), it meets each caption with exactly one ", ", and what the
// preview shows is what lands in the file.
func TestBulkAddsTagsWithoutDoubledSeparators(t *testing.T) {
	for _, c := range []struct {
		kind          BulkKind
		text, caption string
		want          string // "" when the caption stays as it is
	}{
		// The case, and the added text's own separators.
		{BulkPrepend, "mytrigger, ", "a diagram", "mytrigger, a diagram"},
		{BulkPrepend, "mytrigger,", "a diagram", "mytrigger, a diagram"},
		{BulkPrepend, " , mytrigger ,, ", "a diagram", "mytrigger, a diagram"},
		{BulkAppend, ", best quality", "a diagram", "a diagram, best quality"},
		{BulkAppend, "best quality, ", "a diagram", "a diagram, best quality"},
		// The caption's separators at the joint.
		{BulkPrepend, "mytrigger", ", a diagram", "mytrigger, a diagram"},
		{BulkPrepend, "mytrigger, ", " ,  a diagram", "mytrigger, a diagram"},
		{BulkAppend, "best quality", "a diagram,", "a diagram, best quality"},
		{BulkAppend, "best quality, ", "a diagram , ", "a diagram, best quality"},
		{BulkPrepend, "mytrigger", "a diagram,", "mytrigger, a diagram,"}, // the far end is the caption's own
		// Empty captions become the tags alone; line endings stay.
		{BulkPrepend, "mytrigger, ", "", "mytrigger"},
		{BulkAppend, "mytrigger, ", "  \n", "mytrigger\n"},
		{BulkPrepend, "mytrigger", ", ,", "mytrigger"},
		{BulkAppend, "x, ", "bird\n", "bird, x\n"},
		{BulkAppend, "x", "bird,\r\n", "bird, x\r\n"},
		{BulkPrepend, "x", "bird\n\n", "x, bird\n\n"},
		// Several tags, each added only where it is missing.
		{BulkPrepend, "a, b", "c", "a, b, c"},
		{BulkPrepend, "a,b,", "b, c", "a, b, c"},
		{BulkAppend, "a, b", "a, c", "a, c, b"},
		{BulkPrepend, "a, A, a", "c", "a, c"},
		// A tag the caption holds already (ignoring case) is not added twice.
		{BulkPrepend, "mytrigger, ", "mytrigger, a diagram", ""},
		{BulkPrepend, "mytrigger", "a diagram, MyTrigger", ""},
		{BulkAppend, "a, b", "b, c, a", ""},
		{BulkPrepend, "trigger", "my trigger word", "trigger, my trigger word"}, // a tag, not a substring
	} {
		name := fmt.Sprintf("%s %q to %q", c.kind, c.text, c.caption)
		root, d, rels := tagDataset(t, c.caption)
		op := BulkOp{Kind: c.kind, Text: c.text}
		plan, err := d.PlanBulk(op)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.want == "" {
			if len(plan.Changes) != 0 || plan.Already != 1 {
				t.Errorf("%s: preview %q, already %d; want no change and 1 already tagged", name, plan.Changes, plan.Already)
			}
			if note := plan.Note(); !strings.Contains(note, "1 caption already holds") {
				t.Errorf("%s: note %q", name, note)
			}
			continue
		}
		want := []BulkChange{{rels[0], c.caption, c.want}}
		if len(plan.Changes) != 1 || plan.Changes[0] != want[0] || plan.Already != 0 || plan.Note() != "" {
			t.Errorf("%s: preview %q (already %d, note %q), want %q", name, plan.Changes, plan.Already, plan.Note(), want)
			continue
		}
		if res, err := d.ApplyBulk(op); err != nil || res.Changed != 1 {
			t.Errorf("%s: apply %+v %v", name, res, err)
			continue
		}
		if got := readText(t, filepath.Join(root, "00.txt")); got != c.want {
			t.Errorf("%s: file holds %q, preview said %q", name, got, c.want)
		}
		for _, bad := range []string{",,", ", ,", ",  "} {
			if strings.Contains(c.want, bad) {
				t.Errorf("%s: the expectation itself holds %q", name, bad)
			}
		}
		// Applying again finds every tag in place.
		if again, _ := d.PlanBulk(op); len(again.Changes) != 0 || again.Already != 1 {
			t.Errorf("%s: a second run would change %q", name, again.Changes)
		}
	}
}

// TestBulkPreviewCountsCaptionsAlreadyTagged: over a dataset, the preview
// lists the captions that change and counts those that hold the tags
// already; uncaptioned images are neither.
func TestBulkPreviewCountsCaptionsAlreadyTagged(t *testing.T) {
	root, d, rels := tagDataset(t, "a diagram", "mytrigger, a chart", "MYTRIGGER", "a table")
	writePNG(t, filepath.Join(root, "99.png"), 16, 16, 99) // no caption file
	if err := d.Rescan(); err != nil {
		t.Fatal(err)
	}
	plan, err := d.PlanBulk(BulkOp{Kind: BulkPrepend, Text: "mytrigger, "})
	if err != nil {
		t.Fatal(err)
	}
	want := []BulkChange{{rels[0], "a diagram", "mytrigger, a diagram"}, {rels[3], "a table", "mytrigger, a table"}}
	if fmt.Sprint(plan.Changes) != fmt.Sprint(want) || plan.Already != 2 {
		t.Fatalf("plan %q, already %d; want %q and 2", plan.Changes, plan.Already, want)
	}
	if note := plan.Note(); note != `2 captions already hold "mytrigger" and are left as they are` {
		t.Errorf("note %q", note)
	}
	multi, _ := d.PlanBulk(BulkOp{Kind: BulkAppend, Text: "mytrigger, a chart"})
	if multi.Already != 1 || !strings.Contains(multi.Note(), `every tag of "mytrigger, a chart"`) {
		t.Errorf("two tags: already %d, note %q", multi.Already, multi.Note())
	}
	if ch, err := d.PreviewBulk(BulkOp{Kind: BulkPrepend, Text: "mytrigger, "}); err != nil || fmt.Sprint(ch) != fmt.Sprint(want) {
		t.Errorf("PreviewBulk %q %v, want PlanBulk's changes", ch, err)
	}
	for _, text := range []string{",", " , ,, ", ""} {
		if _, err := d.PlanBulk(BulkOp{Kind: BulkAppend, Text: text}); err == nil {
			t.Errorf("append %q accepted: it holds no tag", text)
		}
	}
}
