package dataset

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"lorastudio/engine/clip"
	"lorastudio/engine/cpu"
	"lorastudio/engine/internal/fixtures"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/sdxl/pipeline"
	"lorastudio/engine/tensor"
	"lorastudio/engine/vae"
)

// tinyOptions bucket at 64² in 16-pixel steps: real buckets small enough for
// the tiny fixture model on the CPU.
func tinyOptions() Options {
	return Options{Resolution: 64, BucketStep: 16, MinSide: 32, MaxSide: 128}
}

// prepareFixture writes three small images and opens the tiny model.
func prepareFixture(t *testing.T) (tensor.Backend, *sdxl.Source, []Image) {
	t.Helper()
	src, err := sdxl.OpenSource(fixtures.Path(t, "model"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	dir := t.TempDir()
	imgs := []Image{
		{Path: writePNG(t, dir, "wide.png", pattern(80, 56, 1)), Caption: "a red square ", Repeats: 2},
		{Path: writeJPEG(t, dir, "tall.jpg", pattern(48, 80, 2)), Caption: "a blue circle"},
		{Path: writePNG(t, dir, "square.png", pattern(64, 64, 3)), Caption: "a red square"},
	}
	return cpu.New(), src, imgs
}

// plansFor plans epochs 0..n-1.
func plansFor(t *testing.T, imgs []Image, o Options, n int) [][]Batch {
	t.Helper()
	var plans [][]Batch
	for e := range n {
		p, err := Plan(imgs, o, 2, 42, e)
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, p)
	}
	return plans
}

// distinctCuts counts the distinct cache entries plans need (repeats of the
// same cut share one).
func distinctCuts(plans [][]Batch) int {
	set := map[LatentKey]bool{}
	for _, p := range plans {
		for _, b := range p {
			for _, e := range b.Entries {
				set[KeyFor(strconv.Itoa(e.Image), "", e, b.Bucket)] = true
			}
		}
	}
	return len(set)
}

func TestPrepareEncodesOnceAndMatchesTheEncoders(t *testing.T) {
	be, src, imgs := prepareFixture(t)
	o := tinyOptions()
	plans := plansFor(t, imgs, o, 2)
	cache := &Cache{Dir: t.TempDir()}
	var last Progress
	calls := 0
	opts := PrepareOptions{ModelHash: "tiny-1", Progress: func(p Progress) { last = p; calls++ }}
	p, err := Prepare(context.Background(), be, src, cache, imgs, o, plans, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := distinctCuts(plans)
	if p.Stats.LatentsEncoded != want || p.Stats.LatentsCached != 0 || !p.Stats.VAELoaded {
		t.Fatalf("first run: %+v, want %d latents encoded", p.Stats, want)
	}
	// Texts: "a red square" (twice, trimmed to one) and "a blue circle".
	if p.Stats.TextsEncoded != 2 || !p.Stats.TextEncodersLoaded {
		t.Fatalf("first run texts: %+v", p.Stats)
	}
	if calls == 0 || last.Stage != StageText || last.Done != last.Total {
		t.Errorf("last progress %+v after %d calls", last, calls)
	}

	// The cache holds what the VAE gives for the sample's pixels.
	m, err := vae.FromSource(be, src)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	b := plans[1][0]
	e := b.Entries[0]
	px, err := LoadPixels(imgs[e.Image].Path, e, b.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := be.Upload(px, tensor.Shape{1, 3, b.Bucket.H, b.Bucket.W}, tensor.F32)
	d, err := m.Encode(x)
	x.Free()
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Latents(e, b.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	f := m.Factor()
	if got.Shape != [3]int{m.Config().LatentChannels, b.Bucket.H / f, b.Bucket.W / f} {
		t.Fatalf("latent shape %v for bucket %v", got.Shape, b.Bucket)
	}
	for i := range d.Mean {
		if got.Mean[i] != d.Mean[i] || got.Std[i] != d.Std[i] {
			t.Fatalf("latent %d: cached (%v, %v), encoder (%v, %v)", i, got.Mean[i], got.Std[i], d.Mean[i], d.Std[i])
		}
	}
	// And the text cache what the pipeline's prompt encoding gives.
	tok1, tok2, err := pipeline.OpenTokenizers(src, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := src.Config()
	te1, err := clip.Load(be, src.Weights(sdxl.TextEncoder), clip.Config(cfg.TextEncoder))
	if err != nil {
		t.Fatal(err)
	}
	defer te1.Free()
	te2, err := clip.Load(be, src.Weights(sdxl.TextEncoder2), clip.Config(cfg.TextEncoder2))
	if err != nil {
		t.Fatal(err)
	}
	defer te2.Free()
	direct, err := encodeText(be, te1, te2, tok1, tok2, "a blue circle")
	if err != nil {
		t.Fatal(err)
	}
	cached, err := p.Text(Caption(imgs[1].Caption, o, 42, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if cached.Tokens != tok1.MaxLength() || cached.Dim != cfg.TextEncoder.HiddenSize+cfg.TextEncoder2.HiddenSize || len(cached.Pooled) != cfg.TextEncoder2.ProjectionDim {
		t.Fatalf("text embeds (%d, %d) pooled %d", cached.Tokens, cached.Dim, len(cached.Pooled))
	}
	for i := range direct.Embeds {
		if cached.Embeds[i] != direct.Embeds[i] {
			t.Fatalf("prompt_embeds %d: %v vs %v", i, cached.Embeds[i], direct.Embeds[i])
		}
	}

	// Second run: everything from the cache, no encoder loaded, no file
	// rewritten.
	stamp := modTimes(t, cache.Dir)
	p2, err := Prepare(context.Background(), be, src, cache, imgs, o, plans, PrepareOptions{ModelHash: "tiny-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p2.Stats != (PrepareStats{LatentsCached: want, TextsCached: 2}) {
		t.Fatalf("second run: %+v", p2.Stats)
	}
	if after := modTimes(t, cache.Dir); len(after) != len(stamp) {
		t.Fatalf("%d cache files, then %d", len(stamp), len(after))
	} else {
		for path, mt := range stamp {
			if after[path] != mt {
				t.Errorf("%s rewritten", path)
			}
		}
	}
}

// modTimes maps every file under dir to its modification time.
func modTimes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[path] = info.ModTime().UnixNano()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPrepareRebuildsWhatChanged(t *testing.T) {
	be, src, imgs := prepareFixture(t)
	o := tinyOptions()
	plans := plansFor(t, imgs, o, 1)
	cache := &Cache{Dir: t.TempDir()}
	ctx := context.Background()
	first, err := Prepare(ctx, be, src, cache, imgs, o, plans, PrepareOptions{ModelHash: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	n := first.Stats.LatentsEncoded

	// Another model: every latent and text again.
	p, err := Prepare(ctx, be, src, cache, imgs, o, plans, PrepareOptions{ModelHash: "m2"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Stats.LatentsEncoded != n || p.Stats.LatentsCached != 0 || p.Stats.TextsEncoded != first.Stats.TextsEncoded {
		t.Errorf("new model hash: %+v", p.Stats)
	}

	// Other buckets (resolution 96): every latent again, texts kept.
	o2 := o
	o2.Resolution = 96
	p, err = Prepare(ctx, be, src, cache, imgs, o2, plansFor(t, imgs, o2, 1), PrepareOptions{ModelHash: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Stats.LatentsCached != 0 || p.Stats.LatentsEncoded == 0 || p.Stats.TextsEncoded != 0 || p.Stats.TextEncodersLoaded {
		t.Errorf("new buckets: %+v", p.Stats)
	}

	// Flip on: the flipped samples are new, the unflipped ones cached.
	o3 := o
	o3.Flip = true
	plans3 := plansFor(t, imgs, o3, 3)
	flipped, plain := 0, 0
	seen := map[LatentKey]bool{}
	for _, pl := range plans3 {
		for _, b := range pl {
			for _, e := range b.Entries {
				k := KeyFor(first.ImageHashes[e.Image], "m1", e, b.Bucket)
				if seen[k] {
					continue
				}
				seen[k] = true
				if e.Flip {
					flipped++
				} else {
					plain++
				}
			}
		}
	}
	if flipped == 0 || plain == 0 {
		t.Fatalf("3 epochs gave %d flipped and %d plain samples", flipped, plain)
	}
	p, err = Prepare(ctx, be, src, cache, imgs, o3, plans3, PrepareOptions{ModelHash: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Stats.LatentsEncoded != flipped || p.Stats.LatentsCached != plain {
		t.Errorf("flip: %+v, want %d encoded and %d cached", p.Stats, flipped, plain)
	}

	// A truncated cache file is rebuilt, not trusted.
	b := plans[0][0]
	e := b.Entries[0]
	path := cache.LatentPath(KeyFor(first.ImageHashes[e.Image], "m1", e, b.Bucket))
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	truncate(t, path, info.Size()/2)
	p, err = Prepare(ctx, be, src, cache, imgs, o, plans, PrepareOptions{ModelHash: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Stats.Rebuilt != 1 || p.Stats.LatentsEncoded != 1 || p.Stats.LatentsCached != n-1 {
		t.Errorf("truncated entry: %+v", p.Stats)
	}
	if _, err := p.Latents(e, b.Bucket); err != nil {
		t.Errorf("rebuilt entry: %v", err)
	}

	// An edited image (new content) misses; the others stay cached.
	writePNG(t, filepath.Dir(imgs[2].Path), filepath.Base(imgs[2].Path), pattern(64, 64, 99))
	p, err = Prepare(ctx, be, src, cache, imgs, o, plans, PrepareOptions{ModelHash: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Stats.LatentsEncoded != 1 || p.Stats.LatentsCached != n-1 {
		t.Errorf("edited image: %+v", p.Stats)
	}
}

func TestPrepareCancelAndBadInput(t *testing.T) {
	be, src, imgs := prepareFixture(t)
	o := tinyOptions()
	plans := plansFor(t, imgs, o, 1)
	cache := &Cache{Dir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	encoded := 0
	_, err := Prepare(ctx, be, src, cache, imgs, o, plans, PrepareOptions{ModelHash: "m", Progress: func(p Progress) {
		if p.Stage == StageLatents {
			encoded++
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || encoded != 1 {
		t.Fatalf("cancel: %v after %d latents", err, encoded)
	}
	// What was written before the cancel is intact and reused.
	p, err := Prepare(context.Background(), be, src, cache, imgs, o, plans, PrepareOptions{ModelHash: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Stats.LatentsCached != 1 || p.Stats.Rebuilt != 0 {
		t.Errorf("after cancel: %+v", p.Stats)
	}

	if _, err := Prepare(context.Background(), be, src, cache, imgs, o, plans, PrepareOptions{}); err == nil {
		t.Error("no model hash accepted")
	}
	// An image whose header reads but whose pixels do not: the error names it.
	bad := filepath.Join(t.TempDir(), "bad.jpg")
	data, _ := os.ReadFile(imgs[1].Path)
	writeFile(t, bad, data[:len(data)/2])
	imgs2 := []Image{{Path: bad, Caption: "x"}}
	plans2 := plansFor(t, imgs2, o, 1)
	if _, err := Prepare(context.Background(), be, src, &Cache{Dir: t.TempDir()}, imgs2, o, plans2, PrepareOptions{ModelHash: "m"}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("undecodable image: %v", err)
	}
}

func TestPrepareTilesBeyondTheTensorLimit(t *testing.T) {
	be, src, imgs := prepareFixture(t)
	o := tinyOptions()
	plans := plansFor(t, imgs[2:], o, 1) // the 64x64 square
	cfg := src.Config().VAE
	// A limit the whole 64² image exceeds but a half-size tile fits.
	limit := (vae.LargestActivation(cfg, 64) + vae.LargestActivation(cfg, 32)) / 2
	tiling, err := vae.TilingWithin(cfg, limit)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(context.Background(), be, src, &Cache{Dir: t.TempDir()}, imgs[2:], o, plans, PrepareOptions{ModelHash: "m", MaxTensorBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	b := plans[0][0]
	e := b.Entries[0]
	got, err := p.Latents(e, b.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	m, err := vae.FromSource(be, src)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	px, err := LoadPixels(imgs[2].Path, e, b.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := be.Upload(px, tensor.Shape{1, 3, b.Bucket.H, b.Bucket.W}, tensor.F32)
	defer x.Free()
	tiled, err := m.EncodeTiled(x, tiling)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := m.Encode(x)
	if err != nil {
		t.Fatal(err)
	}
	same := true
	for i := range tiled.Mean {
		if got.Mean[i] != tiled.Mean[i] || got.Std[i] != tiled.Std[i] {
			t.Fatalf("latent %d: cached %v, tiled encode %v", i, got.Mean[i], tiled.Mean[i])
		}
		same = same && tiled.Mean[i] == whole.Mean[i]
	}
	if same {
		t.Error("the tiled and whole encodes agree exactly: the test does not tell them apart")
	}
}
