package ui

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"lorastudio/app/studio"
)

// scrollStep is how far one frame of the scroll benchmark moves the grid: a quarter of a
// row, as a smooth wheel scroll moves at 60 frames a second.
const scrollStep = 41

// frameInterval is how often the scroll benchmark starts a frame: eight times as often as a
// 60 Hz display, so the pass is quick and the background work (rows read ahead, thumbnails
// made) gets less time between frames than it would in the window.
const frameInterval = 2 * time.Millisecond

// distinctGalleryFiles writes n PNG files of 192×128 pixels, each with other pixels (so each
// has its own content hash and its own thumbnail), and returns their paths.
func distinctGalleryFiles(b *testing.B, n int) []string {
	b.Helper()
	dir := b.TempDir()
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	img := image.NewNRGBA(image.Rect(0, 0, 192, 128))
	files := make([]string, n)
	for i := range files {
		for k := range img.Pix {
			img.Pix[k] = uint8(k*7 + i*13)
		}
		img.Pix[0], img.Pix[1], img.Pix[2] = uint8(i), uint8(i>>8), 0xff
		files[i] = filepath.Join(dir, fmt.Sprintf("%05d.png", i))
		f, err := os.Create(files[i])
		if err != nil {
			b.Fatal(err)
		}
		if err := enc.Encode(f, img); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return files
}

// openScrollGallery opens a studio on a fresh data folder whose history holds one image per
// file (the newest last), and the gallery on it in a 1200×700 window.
func openScrollGallery(b *testing.B, files []string) (*studio.Studio, *GalleryScreen, fyne.Window) {
	b.Helper()
	st, err := studio.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	items := make([]studio.GalleryItem, len(files))
	for i, f := range files {
		items[i] = studio.GalleryItem{Time: base.Add(time.Duration(i) * time.Minute), Prompt: fmt.Sprintf("a red cat number %d", i),
			Model: "/models/base.safetensors", Seed: uint64(i), Steps: 20, CFG: 7, Sampler: "euler", Width: 1024, Height: 1024, File: f}
	}
	if _, err := st.ImportGenerations(items); err != nil {
		b.Fatal(err)
	}
	w := test.NewWindow(nil)
	g := NewGalleryScreen(w, st)
	g.Refresh()
	w.SetContent(g.Content())
	w.Resize(fyne.NewSize(1200, 700))
	return st, g, w
}

// scrollPass scrolls the grid from the top to the bottom scrollStep pixels a frame, a frame
// every frameInterval, and appends each frame's time to frames. A frame is what the UI
// goroutine does for one scroll position: laying out the cells, reading the rows they show
// and looking up (or asking for) their thumbnails. It holds backgroundMu as the UI goroutine
// would, so what background work hands to the UI (thumbnails made, rows read ahead) lands
// between frames; the frame's time starts once it holds it.
func scrollPass(g *GalleryScreen, frames []time.Duration) []time.Duration {
	backgroundMu.Lock()
	g.grid.ScrollToTop()
	backgroundMu.Unlock()
	// The last offset: the rows' height less what the grid shows (computed, not scrolled
	// to, so that no cell at the end is laid out before the pass).
	rows := (g.Count() + g.grid.ColumnCount() - 1) / g.grid.ColumnCount()
	end := float32(rows)*(g.newCell().MinSize().Height+theme.Padding()) - g.grid.Size().Height
	next := time.Now()
	for y := float32(0); y <= end; y += scrollStep {
		time.Sleep(time.Until(next))
		next = time.Now().Add(frameInterval)
		backgroundMu.Lock()
		start := time.Now()
		g.grid.ScrollToOffset(y)
		frames = append(frames, time.Since(start))
		backgroundMu.Unlock()
	}
	return frames
}

// reportFrames reports the mean, 99th percentile and worst frame time in milliseconds.
func reportFrames(b *testing.B, frames []time.Duration) {
	if len(frames) == 0 {
		b.Fatal("no frames")
	}
	var sum time.Duration
	for _, f := range frames {
		sum += f
	}
	slices.Sort(frames)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(sum)/float64(len(frames)), "ms/frame")
	b.ReportMetric(ms(frames[len(frames)*99/100]), "p99-ms/frame")
	b.ReportMetric(ms(frames[len(frames)-1]), "worst-ms/frame")
	slow := len(frames) - sort.Search(len(frames), func(i int) bool { return frames[i] > time.Second/60 })
	b.ReportMetric(float64(slow)/float64(b.N), "frames-over-16.7ms/op")
	b.ReportMetric(float64(len(frames))/float64(b.N), "frames/op")
}

// BenchmarkGalleryScroll10000 measures the frame time of scrolling the gallery over a history
// of 10,000 images, each with its own file, from the top to the bottom a quarter row a frame.
// first: a fresh studio, no thumbnail made yet (they are made on the workers while the grid
// scrolls). again: every thumbnail was made once this session, so the disk cache holds them
// all and the memory cache the most recent (128 MiB: fewer than 10,000), as when a user
// scrolls back through a long history. Frame times are the UI goroutine's work per scroll
// position (ms/frame, p99-ms/frame, worst-ms/frame, and how many frames of a pass took
// longer than a 60 Hz frame's 16.7 ms, which includes drawing). The machine's other load
// shows in the worst frame; the mean and p99 are the steadier numbers.
func BenchmarkGalleryScroll10000(b *testing.B) {
	test.NewTempApp(b)
	files := distinctGalleryFiles(b, galleryRows)
	b.Run("first", func(b *testing.B) {
		var frames []time.Duration
		for b.Loop() {
			b.StopTimer()
			st, g, w := openScrollGallery(b, files)
			b.StartTimer()
			frames = scrollPass(g, frames)
			b.StopTimer()
			w.Close()
			st.Close()
			b.StartTimer()
		}
		reportFrames(b, frames)
	})
	b.Run("again", func(b *testing.B) {
		st, g, w := openScrollGallery(b, files)
		defer st.Close()
		defer w.Close()
		// Make every thumbnail once, as a first pass would, and wait for them all.
		done := make(chan error, galleryRows)
		for i := range galleryRows {
			it, ok := g.Item(i)
			if !ok {
				b.Fatalf("no item %d", i)
			}
			st.RequestGalleryThumbnail(it, galleryThumbSize, func(_ image.Image, err error) { done <- err })
		}
		deadline := time.After(10 * time.Minute)
		for range galleryRows {
			select {
			case err := <-done:
				if err != nil {
					b.Fatal(err)
				}
			case <-deadline:
				b.Fatal("the thumbnails were not all made in 10 minutes")
			}
		}
		var frames []time.Duration
		for b.Loop() {
			frames = scrollPass(g, frames)
		}
		reportFrames(b, frames)
	})
}
