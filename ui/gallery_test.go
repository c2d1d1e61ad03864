package ui

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// galleryRows is how many images the gallery tests put in the history.
const galleryRows = 10000

// fillGallery records n images in the studio's real SQLite history, a minute apart (the
// newest last), cycling through a few real PNG files; images with an index divisible by 100
// say "lighthouse" in their prompt, every 7th is on a second model.
func fillGallery(t testing.TB, st *studio.Studio, n int) {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for k := 0; k < 4; k++ {
		p := filepath.Join(dir, fmt.Sprintf("img%d.png", k))
		img := image.NewNRGBA(image.Rect(0, 0, 96, 64))
		for i := range img.Pix {
			img.Pix[i] = uint8(40 * k)
		}
		img.Set(0, 0, color.White)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
		files = append(files, p)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	items := make([]studio.GalleryItem, n)
	for i := range items {
		prompt := fmt.Sprintf("a red cat number %d", i)
		if i%100 == 0 {
			prompt = fmt.Sprintf("a lighthouse at dusk number %d", i)
		}
		model := "/models/base.safetensors"
		if i%7 == 0 {
			model = "/models/other.safetensors"
		}
		items[i] = studio.GalleryItem{Time: base.Add(time.Duration(i) * time.Minute), Prompt: prompt, Model: model,
			Seed: uint64(i), Steps: 20, CFG: 7, Sampler: "euler", Width: 1024, Height: 1024, File: files[i%len(files)]}
	}
	if _, err := st.ImportGenerations(items); err != nil {
		t.Fatal(err)
	}
}

func TestGalleryPaging10000(t *testing.T) {
	m, st := newTestWindow(t, "")
	fillGallery(t, st, galleryRows)
	g := m.Gallery
	g.Refresh()
	m.showPlayground()
	w := test.NewWindow(g.Content()) // the gallery alone, large enough to show a few rows
	defer w.Close()
	w.Resize(fyne.NewSize(1200, 700))
	if g.Count() != galleryRows {
		t.Fatalf("count %d, want %d", g.Count(), galleryRows)
	}
	if g.model.Selected != anyModel || g.lora.Selected != anyLoRA || g.date.Selected != anyTime {
		t.Errorf("filter menus start on %q, %q, %q", g.model.Selected, g.lora.Selected, g.date.Selected)
	}
	if !strings.Contains(g.countText.Text, fmt.Sprint(galleryRows)) {
		t.Errorf("count label %q", g.countText.Text)
	}
	// Only the page on screen was read: the grid is virtualized.
	if n := g.LoadedPages(); n < 1 || n > 2 {
		t.Errorf("%d pages read to show the first screen, want 1 or 2", n)
	}
	first, _ := g.Item(0)
	last, _ := g.Item(galleryRows - 1)
	if first.Seed != galleryRows-1 || last.Seed != 0 {
		t.Errorf("newest first: item 0 has seed %d, the last %d", first.Seed, last.Seed)
	}
	waitUI(t, "thumbnails to replace the placeholders", func() (bool, string) {
		n := g.ShownThumbnails()
		return n > 0, fmt.Sprintf("%d thumbnails shown", n)
	})
	g.grid.ScrollToBottom()
	if n := g.LoadedPages(); n > 4 {
		t.Errorf("scrolling to the end read %d pages, want only those shown", n)
	}
	if it, ok := g.Item(galleryRows - 1); !ok || it.Seed != 0 {
		t.Errorf("last item %+v %v", it, ok)
	}

	// Filters: model, favourites, dates; search (when this build has FTS5).
	g.model.SetSelected(studio.ModelLabel("/models/other.safetensors"))
	if want := (galleryRows + 6) / 7; g.Count() != want {
		t.Errorf("model filter: %d, want %d", g.Count(), want)
	}
	g.model.SetSelected(anyModel)
	g.now = func() time.Time {
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add((galleryRows - 1) * time.Minute)
	}
	g.date.SetSelected(today)
	if want := (galleryRows-1)%(24*60) + 1; g.Count() != want {
		t.Errorf("today: %d images", g.Count())
	}
	g.date.SetSelected(anyTime)
	g.search.SetText("lighthouse")
	if g.status.Text != "" && !strings.Contains(g.status.Text, "sqlite_fts5") {
		t.Errorf("search status %q", g.status.Text)
	}
	if g.status.Text == "" {
		if g.Count() != galleryRows/100 {
			t.Errorf("search lighthouse: %d, want %d", g.Count(), galleryRows/100)
		}
		if it, _ := g.Item(0); !strings.Contains(it.Prompt, "lighthouse") {
			t.Errorf("search result %q", it.Prompt)
		}
	}
	g.search.SetText("")
	if g.Count() != galleryRows {
		t.Errorf("cleared search: %d", g.Count())
	}
}

// TestGalleryActions reuses, favourites, deletes and restores an image through the
// gallery's buttons on the real window.
func TestGalleryActions(t *testing.T) {
	m, st := newTestWindow(t, "")
	dir := t.TempDir()
	file := filepath.Join(dir, "one.png")
	writePNG(t, file, 64, 64)
	neg := "blurry"
	ids, err := st.ImportGenerations([]studio.GalleryItem{{Prompt: "a lighthouse", Negative: &neg, Model: "/m/base.safetensors",
		LoRAs: []studio.LoRASpec{{Path: "/l/style.safetensors", Weight: 0.6}}, Seed: 777, Steps: 12, CFG: 4.5,
		Sampler: "euler_a", Width: 832, Height: 1216, File: file}})
	if err != nil {
		t.Fatal(err)
	}
	g, p := m.Gallery, m.Playground
	g.Refresh()
	it, ok := g.Item(0)
	if !ok || it.ID != ids[0] {
		t.Fatalf("item %+v", it)
	}
	g.Select(it)
	tapButton(t, g.actions, "Reuse all")
	r, n, err := p.Request()
	if err != nil || n != 1 || r.Prompt != "a lighthouse" || r.Negative == nil || *r.Negative != "blurry" || r.Seed == nil ||
		*r.Seed != 777 || r.Steps != 12 || r.CFG != 4.5 || r.Sampler != "euler_a" || r.Width != 832 || r.Height != 1216 ||
		r.Model != "/m/base.safetensors" || len(r.LoRAs) != 1 || r.LoRAs[0].Path != "/l/style.safetensors" || r.LoRAs[0].Weight != 0.6 {
		t.Fatalf("reused request %+v (%v)", r, err)
	}
	if !m.playgroundShown() {
		t.Error("Reuse did not bring the Playground to the front")
	}
	p.seed.SetText("1")
	p.prompt.SetText("other")
	tapButton(t, g.actions, "Reuse seed")
	if p.seed.Text != "777" || p.prompt.Text != "other" {
		t.Errorf("reuse seed: seed %q prompt %q", p.seed.Text, p.prompt.Text)
	}
	tapButton(t, g.actions, "Reuse prompt")
	if p.prompt.Text != "a lighthouse" {
		t.Errorf("reuse prompt: %q", p.prompt.Text)
	}
	tapButton(t, g.actions, "Copy seed")
	if got := fyne.CurrentApp().Clipboard().Content(); got != "777" {
		t.Errorf("clipboard %q", got)
	}
	tapButton(t, g.actions, "Favourite")
	if it, _ := st.GalleryItem(ids[0]); !it.Favourite {
		t.Error("not a favourite after the button")
	}
	g.favs.SetChecked(true)
	if g.Count() != 1 {
		t.Errorf("favourites filter: %d", g.Count())
	}
	g.favs.SetChecked(false)

	g.Select(it)
	tapButton(t, g.actions, "Delete")
	if g.Count() != 0 || !g.undo.Visible() {
		t.Fatalf("after delete: count %d, undo shown %v", g.Count(), g.undo.Visible())
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the file is still at %s", file)
	}
	test.Tap(g.undo)
	if g.Count() != 1 || g.undo.Visible() {
		t.Fatalf("after undo: count %d", g.Count())
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("the file did not come back: %v", err)
	}
}

// TestDropPNG drops PNGs made as A1111 and ComfyUI save them on the window: what maps fills
// the Playground, what does not is listed in a dialog.
func TestDropPNG(t *testing.T) {
	m, _ := newTestWindow(t, "")
	p := m.Playground
	dir := t.TempDir()
	a1111 := filepath.Join(dir, "00012-3141592.png")
	writePNGText(t, a1111, studio.ParametersKey, `a corgi wearing a hat
Negative prompt: lowres
Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592, Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.9.4`)
	m.DropFiles([]fyne.URI{storage.NewFileURI(filepath.Join(dir, "notes.txt")), storage.NewFileURI(a1111)})
	waitUI(t, "the A1111 parameters and the not-applied list", func() (bool, string) {
		return p.prompt.Text == "a corgi wearing a hat" && m.Window.Canvas().Overlays().Top() != nil, p.status.Text
	})
	r, _, err := p.Request()
	if err != nil || r.Negative == nil || *r.Negative != "lowres" || r.Steps != 30 || r.CFG != 6.5 || r.Sampler != "dpmpp_2m_karras" ||
		r.Seed == nil || *r.Seed != 3141592 || r.Width != 832 || r.Height != 1216 {
		t.Fatalf("request after the A1111 drop %+v (%v)", r, err)
	}
	if !m.playgroundShown() {
		t.Error("the drop did not show the Playground")
	}
	if txt := texts(overlay(t, m.Window)); !strings.Contains(txt, "sd_xl_base_1.0") {
		t.Errorf("the not-applied list lacks the model:\n%s", txt)
	}
	m.Window.Canvas().Overlays().Remove(m.Window.Canvas().Overlays().Top())

	comfy := filepath.Join(dir, "ComfyUI_00001_.png")
	writePNGText(t, comfy, "prompt", `{"3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 9, "cfg": 3.5,
  "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
 "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1344, "height": 768, "batch_size": 1}},
 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "glass bottle landscape"}},
 "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "watermark"}},
 "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "bottles.safetensors", "strength_model": 0.7}}}`)
	m.DropFiles([]fyne.URI{storage.NewFileURI(comfy)})
	waitUI(t, "the ComfyUI parameters and the not-applied list", func() (bool, string) {
		return p.prompt.Text == "glass bottle landscape" && m.Window.Canvas().Overlays().Top() != nil, p.status.Text
	})
	r, _, err = p.Request()
	if err != nil || *r.Negative != "watermark" || r.Steps != 9 || r.CFG != 3.5 || r.Sampler != "euler" || *r.Seed != 42 ||
		r.Width != 1344 || r.Height != 768 {
		t.Fatalf("request after the ComfyUI drop %+v (%v)", r, err)
	}
	if txt := texts(overlay(t, m.Window)); !strings.Contains(txt, "bottles.safetensors") {
		t.Errorf("the not-applied list lacks the LoRA:\n%s", txt)
	}
}

// writePNGText writes a small PNG with one text chunk.
func writePNGText(t *testing.T, path, key, value string) {
	t.Helper()
	writePNG(t, path, 16, 16)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if data, err = studio.InsertPNGText(path, data, key, value); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tapButton taps the button labelled text inside o.
func tapButton(t *testing.T, o fyne.CanvasObject, text string) {
	t.Helper()
	for _, x := range test.LaidOutObjects(o) {
		if b, ok := x.(*widget.Button); ok && b.Text == text {
			test.Tap(b)
			return
		}
	}
	t.Fatalf("no button %q", text)
}

// BenchmarkGalleryOpen10000 measures opening the gallery on a history of 10,000 images:
// counting, reading the first page and laying out the first screen of cells.
func BenchmarkGalleryOpen10000(b *testing.B) {
	test.NewTempApp(b)
	st, err := studio.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fillGallery(b, st, galleryRows)
	for b.Loop() {
		w := test.NewWindow(nil)
		g := NewGalleryScreen(w, st)
		g.Refresh()
		w.SetContent(g.Content())
		w.Resize(fyne.NewSize(1200, 700))
		if g.Count() != galleryRows || g.LoadedPages() == 0 {
			b.Fatalf("count %d, pages %d", g.Count(), g.LoadedPages())
		}
		w.Close()
	}
}

// TestGalleryCompare marks one image, compares it with another: side by side and with the
// slider, whose composite takes the first image left of the split and the second right of it.
func TestGalleryCompare(t *testing.T) {
	m, st := newTestWindow(t, "")
	dir := t.TempDir()
	red, blue := filepath.Join(dir, "red.png"), filepath.Join(dir, "blue.png")
	for p, c := range map[string]color.NRGBA{red: {255, 0, 0, 255}, blue: {0, 0, 255, 255}} {
		img := image.NewNRGBA(image.Rect(0, 0, 64, 32)) // not square: fitted and centred
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
	}
	if _, err := st.ImportGenerations([]studio.GalleryItem{
		{Prompt: "red", Model: "/m", Seed: 1, Steps: 1, CFG: 1, Sampler: "euler", Width: 64, Height: 32, File: red},
		{Prompt: "blue", Model: "/m", Seed: 2, Steps: 1, CFG: 1, Sampler: "euler", Width: 64, Height: 32, File: blue},
	}); err != nil {
		t.Fatal(err)
	}
	g := m.Gallery
	g.Refresh()
	first, _ := g.Item(1) // red (older)
	second, _ := g.Item(0)
	g.Select(first)
	tapButton(t, g.actions, "Mark for compare")
	g.Select(second)
	tapButton(t, g.actions, "Compare")
	waitUI(t, "the comparison", func() (bool, string) { return g.compare != nil, g.status.Text })
	v := g.compare
	mid := compareSize / 2 // the fitted images fill the middle rows
	onLeft, onRight := color.NRGBAModel.Convert(v.overlay.Image.At(compareSize/4, mid)), color.NRGBAModel.Convert(v.overlay.Image.At(compareSize*3/4, mid))
	if onLeft != (color.NRGBA{255, 0, 0, 255}) || onRight != (color.NRGBA{0, 0, 255, 255}) {
		t.Fatalf("slider at 0.5: left %v, right %v", onLeft, onRight)
	}
	v.slider.SetValue(0.9)
	if c := color.NRGBAModel.Convert(v.overlay.Image.At(compareSize*3/4, mid)); c != (color.NRGBA{255, 0, 0, 255}) {
		t.Errorf("slider at 0.9: %v at three quarters, want the first image", c)
	}
	if c := color.NRGBAModel.Convert(v.overlay.Image.At(compareSize/2, 2)); c.(color.NRGBA).A != 0 {
		t.Errorf("the top rows of a wide image are not transparent: %v", c)
	}
}

// TestGalleryKeyboardReuse reuses an image without the mouse: Ctrl+G brings the gallery to
// the keyboard (re-reading the history, so an image the command line added since shows), an
// arrow key moves the focus, Enter selects the focused image and reuses all its parameters;
// Ctrl+Shift+R reuses the selected image again from anywhere; Enter on an empty grid reuses
// nothing.
func TestGalleryKeyboardReuse(t *testing.T) {
	m, st := newTestWindow(t, "")
	dir := t.TempDir()
	file := filepath.Join(dir, "one.png")
	writePNG(t, file, 32, 32)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	item := func(prompt string, seed uint64, steps int, k int) studio.GalleryItem {
		return studio.GalleryItem{Time: base.Add(time.Duration(k) * time.Minute), Prompt: prompt, Model: "/m/base.safetensors",
			Seed: seed, Steps: steps, CFG: 5.5, Sampler: "euler_a", Width: 832, Height: 1216, File: file}
	}
	if _, err := st.ImportGenerations([]studio.GalleryItem{item("oldest", 11, 10, 0), item("middle", 22, 20, 1)}); err != nil {
		t.Fatal(err)
	}
	g, p := m.Gallery, m.Playground
	g.Refresh()
	// Added behind the window's back, as `lorastudio generate` does: newest first, it is
	// item 0 and "middle" item 1 once Ctrl+G has re-read the history.
	if _, err := st.ImportGenerations([]studio.GalleryItem{item("newest", 33, 30, 2)}); err != nil {
		t.Fatal(err)
	}
	for _, tab := range m.tabs.Items {
		if tab.Text != "Playground" {
			m.tabs.Select(tab) // start elsewhere: Ctrl+G brings the Playground tab to the front
			break
		}
	}
	p.prompt.SetText("typed by hand")
	p.seed.SetText("5")
	press(m.Window, key(fyne.KeyG, ctrl))
	if !m.playgroundShown() {
		t.Error("Ctrl+G did not show the Playground tab")
	}
	if g.Count() != 3 {
		t.Fatalf("Ctrl+G: %d images, want the 3 in the history", g.Count())
	}
	focused, ok := m.Window.Canvas().Focused().(*galleryGrid)
	if !ok || focused != g.grid {
		t.Fatalf("Ctrl+G focused %T, want the gallery grid", m.Window.Canvas().Focused())
	}
	focused.TypedKey(&fyne.KeyEvent{Name: fyne.KeyRight})
	focused.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	r, n, err := p.Request()
	if err != nil || n != 1 || r.Prompt != "middle" || r.Seed == nil || *r.Seed != 22 || r.Steps != 20 || r.CFG != 5.5 ||
		r.Sampler != "euler_a" || r.Width != 832 || r.Height != 1216 || r.Model != "/m/base.safetensors" {
		t.Fatalf("after Right, Enter: request %+v (%v), want the parameters of \"middle\"", r, err)
	}
	if sel, ok := g.Selected(); !ok || sel.Prompt != "middle" {
		t.Errorf("Enter selected %+v, want \"middle\"", sel)
	}
	p.prompt.SetText("typed again")
	press(m.Window, key(fyne.KeyR, ctrl|fyne.KeyModifierShift))
	if p.prompt.Text != "middle" || p.seed.Text != "22" {
		t.Errorf("Ctrl+Shift+R: prompt %q seed %q, want the selected image's", p.prompt.Text, p.seed.Text)
	}
	focused.TypedKey(&fyne.KeyEvent{Name: fyne.KeyLeft})
	focused.TypedKey(&fyne.KeyEvent{Name: fyne.KeyEnter})
	if p.prompt.Text != "newest" || p.seed.Text != "33" || p.steps.Text != "30" {
		t.Errorf("after Left, Enter (keypad): prompt %q seed %q steps %q, want \"newest\"'s", p.prompt.Text, p.seed.Text, p.steps.Text)
	}

	// A filter matching nothing: Enter reuses no image left over from before.
	g.SetFilter(studio.GalleryFilter{Model: "/m/none.safetensors"})
	p.prompt.SetText("kept")
	m.Window.Canvas().Focus(g.grid)
	g.grid.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if g.Count() != 0 || p.prompt.Text != "kept" {
		t.Errorf("Enter on an empty gallery (%d images) changed the prompt to %q", g.Count(), p.prompt.Text)
	}
}

// TestGalleryCellsAndReadAhead: a cell waits for its thumbnail from the studio's workers the
// first time and shows it at once (from the gallery's recent thumbnails, no studio lookup on
// the UI goroutine) when it shows that image again; the page after the one shown is read in
// the background, so scrolling down does not wait for SQLite; the recent thumbnails stay
// within their bound, dropping the least recently used.
func TestGalleryCellsAndReadAhead(t *testing.T) {
	m, st := newTestWindow(t, "")
	fillGallery(t, st, galleryRows)
	g := m.Gallery
	g.Refresh()
	cell := g.newCell()
	img, placeholder, _ := cellParts(cell)
	backgroundMu.Lock()
	g.updateCell(0, cell)
	if img.Image != nil || !placeholder.Visible() {
		t.Error("a thumbnail never asked for shows at once: it was looked up on the UI goroutine")
	}
	backgroundMu.Unlock()
	waitUI(t, "item 0's thumbnail from the workers", func() (bool, string) {
		return img.Image != nil && !placeholder.Visible(), "placeholder still shown"
	})
	first := img.Image
	// Another cell showing the same image has it at once; the page after is read ahead.
	backgroundMu.Lock()
	again := g.newCell()
	img2, placeholder2, _ := cellParts(again)
	g.updateCell(0, again)
	if img2.Image != first || placeholder2.Visible() {
		t.Errorf("item 0 shown again: image %p (want %p), placeholder shown %v", img2.Image, first, placeholder2.Visible())
	}
	backgroundMu.Unlock()
	waitUI(t, "the second page read ahead", func() (bool, string) {
		g.pageMu.Lock()
		defer g.pageMu.Unlock()
		rows, ok := g.pages[1]
		return ok && len(rows) == galleryPageSize && rows[0].Seed == galleryRows-1-galleryPageSize, fmt.Sprintf("%d pages", len(g.pages))
	})
	// A filter drops the pages read before it (and the reads still under way: a new
	// generation), and the grid reads the filtered rows.
	g.pageMu.Lock()
	gen := g.pageGen
	g.pageMu.Unlock()
	g.SetFilter(studio.GalleryFilter{Model: "/models/other.safetensors"})
	g.pageMu.Lock()
	if g.pageGen == gen || len(g.loading) > 1 {
		t.Errorf("a filter kept the reads of generation %d (now %d, %d reads under way)", gen, g.pageGen, len(g.loading))
	}
	for pg, rows := range g.pages {
		for _, r := range rows {
			if r.Model != "/models/other.safetensors" {
				t.Fatalf("page %d after the model filter holds an image of %s", pg, r.Model)
			}
		}
	}
	g.pageMu.Unlock()

	c := newThumbLRU(3)
	thumbs := make([]image.Image, 5)
	for i := range thumbs {
		thumbs[i] = image.NewNRGBA(image.Rect(0, 0, i+1, 1))
	}
	c.put(1, thumbs[1])
	c.put(2, thumbs[2])
	c.put(3, thumbs[3])
	c.get(1) // 2 is now the least recently used
	c.put(4, thumbs[4])
	if _, ok := c.get(2); ok || c.len() != 3 {
		t.Errorf("after a fourth thumbnail: 2 kept %v, %d held; want 2 dropped, 3 held", ok, c.len())
	}
	for _, id := range []int64{1, 3, 4} {
		if th, ok := c.get(id); !ok || th != thumbs[id] {
			t.Errorf("thumbnail %d: %v %v", id, th, ok)
		}
	}
}
