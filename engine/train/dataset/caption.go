package dataset

import (
	"slices"
	"strings"
)

// Caption returns the caption a sample trains with: c trimmed; "" with
// probability CaptionDropout (kohya's caption_dropout_rate; the empty prompt
// is then encoded like any caption); with ShuffleTags, its comma-separated
// tags trimmed, empty ones dropped, all but the first KeepTags shuffled and
// joined with ", " (kohya's shuffle_caption with keep_tokens). The draws are
// a pure function of (seed, step, index): step and index name the sample —
// the trainer passes the global micro-batch number and the position in the
// batch — so a resumed run draws the same captions.
func Caption(c string, o Options, seed uint64, step, index int) string {
	c = strings.TrimSpace(c)
	if o.CaptionDropout > 0 && unit(hashOf(seed, purposeDropout, uint64(step), uint64(index))) < o.CaptionDropout {
		return ""
	}
	if !o.ShuffleTags {
		return c
	}
	tags := Tags(c)
	if keep := min(max(o.KeepTags, 0), len(tags)); keep < len(tags) {
		rest := tags[keep:]
		newStream(seed, purposeShuffle, uint64(step), uint64(index)).shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	}
	return strings.Join(tags, ", ")
}

// Tags splits a caption at commas into trimmed, non-empty tags.
func Tags(c string) []string {
	var tags []string
	for t := range strings.SplitSeq(c, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

// TextCacheable reports whether the text embeddings of a run's captions can
// be cached: captions are not shuffled, so a sample's text is either its
// trimmed caption or (with caption dropout) "", both known before training.
func TextCacheable(o Options) bool { return !o.ShuffleTags }

// CaptionTexts returns every text a sample of imgs can train with under o
// when TextCacheable(o): each trimmed caption, plus "" when captions drop
// out. Sorted, without duplicates.
func CaptionTexts(imgs []Image, o Options) []string {
	set := map[string]bool{}
	for _, im := range imgs {
		set[strings.TrimSpace(im.Caption)] = true
	}
	if o.CaptionDropout > 0 {
		set[""] = true
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
