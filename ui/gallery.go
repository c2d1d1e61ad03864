package ui

import (
	"container/list"
	"fmt"
	"image"
	"image/color"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"lorastudio/app/studio"
)

// galleryPageSize is how many rows the gallery reads from the history at a time: the grid
// asks for the cells on screen and the page holding each is read once.
const galleryPageSize = 200

// galleryThumbSize is the longest side of a gallery thumbnail in pixels.
const galleryThumbSize = 160

// galleryRecentThumbs is how many thumbnails the gallery keeps for the cells it showed last
// (about fifteen screens), so scrolling back shows them at once without asking the studio.
const galleryRecentThumbs = 512

// galleryPrefetch is how close (in images) to the start of a page the grid must show before
// the page before it is read in the background (the page after is read as soon as a page
// shows: scrolling down is the common way, and a whole page is time enough for the read).
const galleryPrefetch = galleryPageSize / 2

// Date filter choices.
const (
	anyTime   = "Any time"
	today     = "Today"
	lastWeek  = "Last 7 days"
	lastMonth = "Last 30 days"
)

// anyModel and anyLoRA are the filter menus' "no filter" entries.
const (
	anyModel = "Any model"
	anyLoRA  = "Any LoRA"
)

// GalleryScreen shows the generation history newest first in a virtualized grid: search by
// prompt, filters, and for the selected image its parameters and what can be done with it.
// Rows come page by page from app/studio; thumbnails are made off the UI goroutine into the
// studio's bounded cache and a placeholder shows until one is ready.
type GalleryScreen struct {
	win fyne.Window
	st  *studio.Studio

	filter studio.GalleryFilter
	count  int
	// pageMu guards pages, loading and pageGen: pages read in the background land through
	// fromBackground, which runs off the UI goroutine in Fyne's test driver.
	pageMu  sync.Mutex
	pages   map[int][]studio.GalleryItem // page number → its rows
	loading map[int]bool                 // pages being read in the background
	pageGen int                          // counts Refresh calls: a page read before the last one is dropped
	cellMu  sync.Mutex                   // guards cells and recent: thumbnail callbacks run off the UI goroutine in Fyne's test driver
	cells   map[*canvas.Image]int64      // the id each grid cell shows, so a late thumbnail lands only where it belongs
	recent  *thumbLRU                    // the thumbnails of the cells shown last, by image id

	search    *widget.Entry
	model     *widget.Select
	modelPath map[string]string
	lora      *widget.Select
	date      *widget.Select
	favs      *widget.Check
	grid      *galleryGrid
	gridSel   widget.GridWrapItemID // the grid's selected cell, -1 for none
	countText *widget.Label

	selected  *studio.GalleryItem
	detail    *widget.Label
	favButton *widget.Button
	actions   *fyne.Container
	status    *widget.Label
	undo      *widget.Button
	undoID    int64
	// compareWith is the image marked as the first of a comparison; compare the open one.
	compareWith *studio.GalleryItem
	compare     *compareView
	listErr     bool // the status line shows why the list failed (cleared when it works again)

	content fyne.CanvasObject

	// OnReuse, when set, takes an image's request and which of its parameters to reuse.
	OnReuse func(studio.GenerateRequest, Reuse)
	// now is the clock of the date filter (tests fix it).
	now func() time.Time
}

// NewGalleryScreen builds the gallery; call Refresh to fill it.
func NewGalleryScreen(win fyne.Window, st *studio.Studio) *GalleryScreen {
	g := &GalleryScreen{win: win, st: st, pages: map[int][]studio.GalleryItem{}, loading: map[int]bool{},
		cells: map[*canvas.Image]int64{}, recent: newThumbLRU(galleryRecentThumbs), modelPath: map[string]string{}, now: time.Now, gridSel: -1}
	g.build()
	return g
}

// Content is the screen's root object.
func (g *GalleryScreen) Content() fyne.CanvasObject { return g.content }

func (g *GalleryScreen) build() {
	g.search = widget.NewEntry()
	g.search.SetPlaceHolder("Search prompts …")
	g.search.OnChanged = func(s string) {
		g.filter.Search = s
		g.Refresh()
	}
	g.model = widget.NewSelect([]string{anyModel}, func(s string) {
		g.filter.Model = g.modelPath[s]
		g.Refresh()
	})
	g.lora = widget.NewSelect([]string{anyLoRA}, func(s string) {
		if s == anyLoRA {
			s = ""
		}
		g.filter.LoRA = s
		g.Refresh()
	})
	g.date = widget.NewSelect([]string{anyTime, today, lastWeek, lastMonth}, func(s string) {
		g.filter.Since = g.since(s)
		g.Refresh()
	})
	g.model.Selected, g.lora.Selected, g.date.Selected = anyModel, anyLoRA, anyTime
	g.favs = widget.NewCheck("Favourites", func(on bool) {
		g.filter.Favourites = on
		g.Refresh()
	})
	g.countText = widget.NewLabel("")
	g.grid = newGalleryGrid(func() int { return g.count }, g.newCell, g.updateCell, func() {
		if g.gridSel >= 0 { // an empty grid selects nothing: no stale image is reused
			g.ReuseSelected(ReuseAll)
		}
	})
	g.grid.OnSelected = g.selectCell
	g.grid.OnUnselected = func(widget.GridWrapItemID) { g.gridSel = -1 }

	g.detail = widget.NewLabel("Select an image to see its parameters.")
	g.detail.Wrapping = fyne.TextWrapWord
	g.detail.Selectable = true
	g.favButton = widget.NewButtonWithIcon("Favourite", theme.ConfirmIcon(), g.toggleFavourite)
	reuse := func(what Reuse) func() { return func() { g.ReuseSelected(what) } }
	g.actions = container.NewGridWithColumns(2,
		widget.NewButtonWithIcon("Reuse all", theme.ContentRedoIcon(), reuse(ReuseAll)),
		widget.NewButton("Reuse seed", reuse(ReuseSeed)),
		widget.NewButton("Reuse prompt", reuse(ReusePrompt)),
		widget.NewButtonWithIcon("Copy seed", theme.ContentCopyIcon(), g.CopySeed),
		widget.NewButtonWithIcon("Open folder", theme.FolderOpenIcon(), g.openFolder),
		g.favButton,
		widget.NewButtonWithIcon("Delete", theme.DeleteIcon(), g.DeleteSelected),
		widget.NewButton("Mark for compare", g.MarkForCompare),
		widget.NewButton("Compare", g.CompareSelected),
	)
	g.actions.Hide()
	g.status = widget.NewLabel("")
	g.status.Wrapping = fyne.TextWrapWord
	g.undo = widget.NewButtonWithIcon("Undo delete", theme.ContentUndoIcon(), g.UndoDelete)
	g.undo.Hide()

	bar := container.NewBorder(nil, nil, nil, container.NewHBox(g.model, g.lora, g.date, g.favs, g.countText), g.search)
	side := container.NewVScroll(container.NewVBox(g.detail, g.actions, g.status, g.undo))
	side.SetMinSize(fyne.NewSize(280, 0))
	g.content = container.NewBorder(bar, nil, nil, side, g.grid)
}

// since is the lower time bound of a date filter choice.
func (g *GalleryScreen) since(choice string) time.Time {
	now := g.now()
	switch choice {
	case today:
		y, m, d := now.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, now.Location())
	case lastWeek:
		return now.AddDate(0, 0, -7)
	case lastMonth:
		return now.AddDate(0, 0, -30)
	}
	return time.Time{}
}

// SetFilter replaces the whole filter (the search box and menus follow) and refreshes.
func (g *GalleryScreen) SetFilter(f studio.GalleryFilter) {
	g.filter = f
	g.search.OnChanged = nil
	g.search.SetText(f.Search)
	g.search.OnChanged = func(s string) {
		g.filter.Search = s
		g.Refresh()
	}
	g.Refresh()
}

// Filter is the filter in force.
func (g *GalleryScreen) Filter() studio.GalleryFilter { return g.filter }

// Refresh re-reads the count and drops the cached pages; the grid reads what it shows again.
func (g *GalleryScreen) Refresh() {
	n, err := g.st.GalleryCount(g.filter)
	switch {
	case err != nil:
		g.count = 0
		g.setStatus(err.Error())
		g.listErr = true
	case g.listErr:
		g.count = n
		g.setStatus("")
		g.listErr = false
	default:
		g.count = n
	}
	g.pageMu.Lock()
	g.pages, g.loading = map[int][]studio.GalleryItem{}, map[int]bool{}
	g.pageGen++
	g.pageMu.Unlock()
	g.countText.SetText(fmt.Sprintf("%d images", g.count))
	g.refreshMenus()
	g.grid.UnselectAll()
	g.grid.Refresh()
}

// refreshMenus fills the model and LoRA filter menus from the history.
func (g *GalleryScreen) refreshMenus() {
	models, _ := g.st.GalleryModels() // a failing list leaves the menu short; the grid reports errors
	g.modelPath = map[string]string{anyModel: ""}
	opts := []string{anyModel}
	for _, m := range models {
		label := studio.ModelLabel(m)
		if _, dup := g.modelPath[label]; dup {
			label += "  (" + filepath.Dir(m) + ")"
		}
		g.modelPath[label] = m
		opts = append(opts, label)
	}
	g.model.Options = opts
	loras, _ := g.st.GalleryLoRAs()
	g.lora.Options = append([]string{anyLoRA}, loras...)
}

// Count is how many images match the filter.
func (g *GalleryScreen) Count() int { return g.count }

// Item returns the i-th image of the filtered gallery (newest first), reading its page
// from the history when it is not loaded. Scrolling rarely waits for that: near a page's
// end the next page is read in the background (see prefetch); a jump (the scroll bar
// dragged, the end key) reads the page it lands on here.
func (g *GalleryScreen) Item(i int) (studio.GalleryItem, bool) {
	if i < 0 || i >= g.count {
		return studio.GalleryItem{}, false
	}
	pg := i / galleryPageSize
	g.pageMu.Lock()
	rows, ok := g.pages[pg]
	g.pageMu.Unlock()
	if !ok {
		var err error
		rows, err = g.st.Gallery(g.filter, pg*galleryPageSize, galleryPageSize)
		if err != nil {
			g.setStatus(err.Error())
			return studio.GalleryItem{}, false
		}
		g.pageMu.Lock()
		g.pages[pg] = rows
		g.pageMu.Unlock()
	}
	k := i - pg*galleryPageSize
	if k >= len(rows) {
		return studio.GalleryItem{}, false // the history shrank since the count
	}
	return rows[k], true
}

// prefetch reads, on a background goroutine, the page after i's, and the page before when i
// is near its page's start, so that scrolling on finds its rows loaded and the UI goroutine
// does not wait for SQLite.
func (g *GalleryScreen) prefetch(i int) {
	pg := i / galleryPageSize
	if (pg+1)*galleryPageSize < g.count {
		g.prefetchPage(pg + 1)
	}
	if i%galleryPageSize < galleryPrefetch && pg > 0 {
		g.prefetchPage(pg - 1)
	}
}

// prefetchPage reads page next in the background unless it is held or being read.
func (g *GalleryScreen) prefetchPage(next int) {
	g.pageMu.Lock()
	_, have := g.pages[next]
	if have || g.loading[next] {
		g.pageMu.Unlock()
		return
	}
	g.loading[next] = true
	gen, filter := g.pageGen, g.filter
	g.pageMu.Unlock()
	go func() {
		rows, err := g.st.Gallery(filter, next*galleryPageSize, galleryPageSize)
		fromBackground(func() {
			g.pageMu.Lock()
			defer g.pageMu.Unlock()
			if gen != g.pageGen {
				return // read for a filter or history that has changed since
			}
			delete(g.loading, next)
			if err != nil {
				return // Item reads it again when it is shown, and reports the error then
			}
			if _, have := g.pages[next]; !have {
				g.pages[next] = rows
			}
		})
	}()
}

// LoadedPages is how many pages of rows are held (the grid reads only what it shows).
func (g *GalleryScreen) LoadedPages() int {
	g.pageMu.Lock()
	defer g.pageMu.Unlock()
	return len(g.pages)
}

// galleryCell is a grid cell: a placeholder under the thumbnail, a star for favourites.
func (g *GalleryScreen) newCell() fyne.CanvasObject {
	bg := canvas.NewRectangle(color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x30})
	img := canvas.NewImageFromImage(nil)
	img.FillMode = canvas.ImageFillContain
	img.ScaleMode = canvas.ImageScaleFastest
	star := widget.NewLabel("")
	cell := container.NewStack(bg, container.NewCenter(widget.NewIcon(theme.MediaPhotoIcon())), img,
		container.NewVBox(container.NewHBox(star)))
	return container.NewGridWrap(fyne.NewSize(galleryThumbSize, galleryThumbSize), cell)
}

// cellParts returns a cell's image, placeholder icon and star label.
func cellParts(o fyne.CanvasObject) (*canvas.Image, *fyne.Container, *widget.Label) {
	cell := o.(*fyne.Container).Objects[0].(*fyne.Container)
	star := cell.Objects[3].(*fyne.Container).Objects[0].(*fyne.Container).Objects[0].(*widget.Label)
	return cell.Objects[2].(*canvas.Image), cell.Objects[1].(*fyne.Container), star
}

// updateCell shows image i: its thumbnail at once when the cell showed it lately, else the
// placeholder until a worker has it. The UI goroutine never reads a thumbnail file: the
// studio's thumbnail lookup can read and decode one from its disk cache, so the lookup is
// left to its workers and only this screen's own recent thumbnails are used here.
func (g *GalleryScreen) updateCell(i widget.GridWrapItemID, o fyne.CanvasObject) {
	img, placeholder, star := cellParts(o)
	it, ok := g.Item(i)
	if !ok {
		g.setCell(img, 0)
		img.Image = nil
		img.Refresh()
		return
	}
	g.prefetch(i)
	if it.Favourite {
		star.SetText("★")
	} else {
		star.SetText("")
	}
	id := it.ID
	g.cellMu.Lock()
	g.cells[img] = id
	th, ok := g.recent.get(id)
	g.cellMu.Unlock()
	if ok {
		g.setThumb(img, placeholder, th)
		return
	}
	g.setThumb(img, placeholder, nil)
	g.st.RequestGalleryThumbnail(it, galleryThumbSize, func(th image.Image, err error) {
		fromBackground(func() {
			g.cellMu.Lock()
			defer g.cellMu.Unlock()
			if err == nil {
				g.recent.put(id, th)
			}
			if g.cells[img] != id {
				return // the cell shows another image by now
			}
			if err != nil {
				placeholder.Objects[0] = widget.NewIcon(theme.BrokenImageIcon())
				placeholder.Refresh()
				return
			}
			g.setThumb(img, placeholder, th)
		})
	})
}

// setCell records which image a cell shows.
func (g *GalleryScreen) setCell(img *canvas.Image, id int64) {
	g.cellMu.Lock()
	g.cells[img] = id
	g.cellMu.Unlock()
}

// thumbLRU holds the last n thumbnails by image id. It is not safe for concurrent use.
// The images are mostly the studio cache's own (shared, not copied); this keeps the ones
// just shown even when the studio's larger cache has moved on.
type thumbLRU struct {
	n   int
	m   map[int64]*list.Element
	lru *list.List // front: most recent; values are thumbEntry
}

// thumbEntry is one thumbnail of a thumbLRU.
type thumbEntry struct {
	id  int64
	img image.Image
}

// newThumbLRU makes an empty cache of n thumbnails.
func newThumbLRU(n int) *thumbLRU {
	return &thumbLRU{n: n, m: map[int64]*list.Element{}, lru: list.New()}
}

// get returns image id's thumbnail and marks it used.
func (c *thumbLRU) get(id int64) (image.Image, bool) {
	el, ok := c.m[id]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(thumbEntry).img, true
}

// put keeps image id's thumbnail, dropping the least recently used beyond n.
func (c *thumbLRU) put(id int64, img image.Image) {
	if el, ok := c.m[id]; ok {
		el.Value = thumbEntry{id, img}
		c.lru.MoveToFront(el)
		return
	}
	c.m[id] = c.lru.PushFront(thumbEntry{id, img})
	for c.lru.Len() > c.n {
		el := c.lru.Back()
		c.lru.Remove(el)
		delete(c.m, el.Value.(thumbEntry).id)
	}
}

// len is how many thumbnails are held.
func (c *thumbLRU) len() int { return c.lru.Len() }

// setThumb shows a thumbnail, or the placeholder for nil.
func (g *GalleryScreen) setThumb(img *canvas.Image, placeholder *fyne.Container, th image.Image) {
	img.Image = th
	img.Refresh()
	if th == nil {
		placeholder.Show()
	} else {
		placeholder.Hide()
	}
}

// ShownThumbnails counts the grid cells showing a thumbnail (not the placeholder).
func (g *GalleryScreen) ShownThumbnails() int {
	g.cellMu.Lock()
	defer g.cellMu.Unlock()
	n := 0
	for img, id := range g.cells {
		if id != 0 && img.Image != nil {
			n++
		}
	}
	return n
}

// selectCell shows the selected image's parameters and actions.
func (g *GalleryScreen) selectCell(i widget.GridWrapItemID) {
	it, ok := g.Item(i)
	if !ok {
		return
	}
	g.gridSel = i
	g.Select(it)
}

// ReuseSelected hands the selected image's request to OnReuse with what to take from it.
func (g *GalleryScreen) ReuseSelected(what Reuse) {
	if g.selected != nil && g.OnReuse != nil {
		g.OnReuse(g.selected.Request(), what)
	}
}

// Focus re-reads the history (the command line may have added images) and puts the keyboard
// in the grid: the arrow keys move between images, Space selects one, Enter reuses all of
// its parameters.
func (g *GalleryScreen) Focus() {
	g.Refresh()
	g.win.Canvas().Focus(g.grid)
}

// galleryGrid is the gallery's GridWrap with one more key: Enter selects the image that has
// the keyboard focus (as Space does) and reuses all its parameters, so an image is reused
// without the mouse.
type galleryGrid struct {
	widget.GridWrap
	onEnter func()
}

// newGalleryGrid builds the grid; onEnter runs after Enter has selected the focused cell.
func newGalleryGrid(length func() int, create func() fyne.CanvasObject, update func(widget.GridWrapItemID, fyne.CanvasObject), onEnter func()) *galleryGrid {
	g := &galleryGrid{GridWrap: widget.GridWrap{Length: length, CreateItem: create, UpdateItem: update}, onEnter: onEnter}
	g.ExtendBaseWidget(g)
	return g
}

// TypedKey handles Enter and leaves every other key to the GridWrap.
func (g *galleryGrid) TypedKey(k *fyne.KeyEvent) {
	if k.Name != fyne.KeyReturn && k.Name != fyne.KeyEnter {
		g.GridWrap.TypedKey(k)
		return
	}
	// Space selects the focused cell (and does nothing when it is already selected); the
	// focused cell is not otherwise visible outside the GridWrap.
	g.GridWrap.TypedKey(&fyne.KeyEvent{Name: fyne.KeySpace})
	g.onEnter()
}

// Select makes it the image the actions work on.
func (g *GalleryScreen) Select(it studio.GalleryItem) {
	g.selected = &it
	var b strings.Builder
	fmt.Fprintf(&b, "#%d  %s\n\n%s\n", it.ID, it.Time.Local().Format("2006-01-02 15:04:05"), it.Prompt)
	if it.Negative != nil {
		fmt.Fprintf(&b, "\nNegative: %s\n", *it.Negative)
	}
	fmt.Fprintf(&b, "\nModel: %s\n", studio.ModelLabel(it.Model))
	for _, l := range it.LoRAs {
		fmt.Fprintf(&b, "LoRA: %s at %s\n", filepath.Base(l.Path), strconv.FormatFloat(float64(l.Weight), 'g', -1, 32))
	}
	fmt.Fprintf(&b, "Seed: %d\nSteps: %d  CFG: %s  Sampler: %s\nSize: %d × %d\n", it.Seed, it.Steps,
		strconv.FormatFloat(it.CFG, 'f', -1, 64), it.Sampler, it.Width, it.Height)
	if it.Cached {
		b.WriteString("From the cache\n")
	}
	fmt.Fprintf(&b, "\n%s", it.File)
	g.detail.SetText(b.String())
	if it.Favourite {
		g.favButton.SetText("Unfavourite")
	} else {
		g.favButton.SetText("Favourite")
	}
	g.actions.Show()
}

// Selected is the image the actions work on, if any.
func (g *GalleryScreen) Selected() (studio.GalleryItem, bool) {
	if g.selected == nil {
		return studio.GalleryItem{}, false
	}
	return *g.selected, true
}

// CopySeed puts the selected image's seed on the clipboard.
func (g *GalleryScreen) CopySeed() {
	if g.selected == nil {
		return
	}
	fyne.CurrentApp().Clipboard().SetContent(strconv.FormatUint(g.selected.Seed, 10))
	g.setStatus(fmt.Sprintf("Copied seed %d.", g.selected.Seed))
}

// openFolder shows the selected image's folder in the system's file manager.
func (g *GalleryScreen) openFolder() {
	if g.selected == nil {
		return
	}
	dir := filepath.Dir(g.selected.File)
	if err := fyne.CurrentApp().OpenURL(&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}); err != nil {
		g.setStatus(fmt.Sprintf("Opening %s: %v", dir, err))
	}
}

// toggleFavourite marks or unmarks the selected image.
func (g *GalleryScreen) toggleFavourite() {
	if g.selected == nil {
		return
	}
	it := *g.selected
	if err := g.st.SetFavourite(it.ID, !it.Favourite); err != nil {
		g.setStatus(err.Error())
		return
	}
	it.Favourite = !it.Favourite
	g.Refresh()
	g.Select(it)
}

// DeleteSelected moves the selected image to the trash; Undo delete brings it back.
func (g *GalleryScreen) DeleteSelected() {
	if g.selected == nil {
		return
	}
	id := g.selected.ID
	if err := g.st.DeleteGeneration(id); err != nil {
		g.setStatus(err.Error())
		return
	}
	g.selected = nil
	g.actions.Hide()
	g.detail.SetText("Select an image to see its parameters.")
	g.undoID = id
	g.undo.Show()
	g.setStatus(fmt.Sprintf("Deleted #%d (moved to the trash in the data folder).", id))
	g.Refresh()
}

// UndoDelete restores the last deleted image.
func (g *GalleryScreen) UndoDelete() {
	if g.undoID == 0 {
		return
	}
	if err := g.st.RestoreGeneration(g.undoID); err != nil {
		g.setStatus(err.Error())
		return
	}
	g.setStatus(fmt.Sprintf("Restored #%d.", g.undoID))
	g.undoID = 0
	g.undo.Hide()
	g.Refresh()
}

// setStatus shows a line under the actions.
func (g *GalleryScreen) setStatus(s string) { g.status.SetText(s) }
