package studio

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	xdraw "golang.org/x/image/draw"
)

// ErrThumbnailerClosed is given to callbacks still waiting when the Thumbnailer closes.
var ErrThumbnailerClosed = errors.New("thumbnailer closed")

// defaultThumbMemory is the in-memory cache budget in bytes.
const defaultThumbMemory = 128 << 20

// Thumbnailer makes thumbnails on background workers (one per CPU), caches
// them on disk as <dir>/<content-hash>-<size>.png (the hash of the image
// file's bytes, so a renamed file hits the cache) and keeps the most recently
// used ones in memory. It is safe for concurrent use.
type Thumbnailer struct {
	dir string

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*thumbJob          // LIFO: the most recently requested first
	pending map[string]*thumbJob // by path and size
	closed  bool
	wg      sync.WaitGroup

	hashes map[hashKey]string // content hash by file identity
	failed map[failKey]error  // thumbnails that could not be made, for the file as it was

	mem      map[string]*list.Element // LRU by cache key
	lru      *list.List               // front: most recent
	memBytes int
	memLimit int

	// Generated counts thumbnails decoded from their source image (not from a cache).
	generated int
}

// hashKey identifies a file's content cheaply: path, size and modification time.
type hashKey struct {
	path  string
	size  int64
	mtime time.Time
}

// failKey is a thumbnail that could not be made: the file's identity when
// it was tried, and the thumbnail size. A file changed since (replaced,
// repaired, or appeared) has another identity and is tried again.
type failKey struct {
	file hashKey
	size int
}

// ThumbState is where a thumbnail stands, as Fetch reports it.
type ThumbState int

const (
	// ThumbReady: the thumbnail was in memory or on disk and is returned.
	ThumbReady ThumbState = iota
	// ThumbQueued: the thumbnail is being made in the background.
	ThumbQueued
	// ThumbFailed: making it failed (the error says why) and the file has
	// not changed since; it is not tried again until it does.
	ThumbFailed
)

// thumbJob is one queued thumbnail and everyone waiting for it.
type thumbJob struct {
	path  string
	hash  string
	size  int
	dones []func(image.Image, error)
}

// memEntry is one thumbnail in the memory cache.
type memEntry struct {
	key string
	img image.Image
	n   int
}

// NewThumbnailer starts a thumbnailer caching under dir with the given
// number of workers (0: GOMAXPROCS).
func NewThumbnailer(dir string, workers int) (*Thumbnailer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("thumbnail cache %s: %w", dir, err)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	t := &Thumbnailer{
		dir:      dir,
		pending:  map[string]*thumbJob{},
		hashes:   map[hashKey]string{},
		failed:   map[failKey]error{},
		mem:      map[string]*list.Element{},
		lru:      list.New(),
		memLimit: defaultThumbMemory,
	}
	t.cond = sync.NewCond(&t.mu)
	for i := 0; i < workers; i++ {
		t.wg.Add(1)
		go t.worker()
	}
	return t, nil
}

// Dir returns the disk cache folder.
func (t *Thumbnailer) Dir() string { return t.dir }

// Generated returns how many thumbnails were decoded from source images.
func (t *Thumbnailer) Generated() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.generated
}

// Close stops the workers; callbacks still queued get ErrThumbnailerClosed.
func (t *Thumbnailer) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	queued := t.queue
	t.queue = nil
	t.pending = map[string]*thumbJob{}
	t.cond.Broadcast()
	t.mu.Unlock()
	t.wg.Wait()
	for _, j := range queued {
		for _, done := range j.dones {
			done(nil, ErrThumbnailerClosed)
		}
	}
}

// cacheKey names a thumbnail: content hash and size.
func cacheKey(hash string, size int) string { return hash + "-" + strconv.Itoa(size) }

// cachePath is the disk cache file of a thumbnail.
func (t *Thumbnailer) cachePath(hash string, size int) string {
	return filepath.Join(t.dir, cacheKey(hash, size)+".png")
}

// knownHash returns the content hash of path if it is known for the file as it is now.
func (t *Thumbnailer) knownHash(path, itemHash string) (hashKey, string, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return hashKey{}, "", false
	}
	k := hashKey{path: path, size: st.Size(), mtime: st.ModTime()}
	t.mu.Lock()
	h, ok := t.hashes[k]
	t.mu.Unlock()
	if !ok && itemHash != "" {
		return k, itemHash, true
	}
	return k, h, ok
}

// fromCache returns a thumbnail from memory, then from the disk cache.
func (t *Thumbnailer) fromCache(hash string, size int) (image.Image, bool) {
	key := cacheKey(hash, size)
	t.mu.Lock()
	if el, ok := t.mem[key]; ok {
		t.lru.MoveToFront(el)
		img := el.Value.(*memEntry).img
		t.mu.Unlock()
		return img, true
	}
	t.mu.Unlock()
	b, err := os.ReadFile(t.cachePath(hash, size))
	if err != nil {
		return nil, false
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		os.Remove(t.cachePath(hash, size)) // a damaged cache file is remade
		return nil, false
	}
	t.remember(key, img)
	return img, true
}

// remember puts a thumbnail in the memory cache, evicting the least recently used.
func (t *Thumbnailer) remember(key string, img image.Image) {
	b := img.Bounds()
	n := b.Dx() * b.Dy() * 4
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.mem[key]; ok {
		t.lru.MoveToFront(el)
		return
	}
	t.mem[key] = t.lru.PushFront(&memEntry{key: key, img: img, n: n})
	t.memBytes += n
	for t.memBytes > t.memLimit && t.lru.Len() > 1 {
		el := t.lru.Back()
		me := el.Value.(*memEntry)
		t.lru.Remove(el)
		delete(t.mem, me.key)
		t.memBytes -= me.n
	}
}

// Get returns the thumbnail (longest side size pixels) at once if it is in
// memory or on disk; otherwise it queues it and returns false.
func (t *Thumbnailer) Get(item *Item, size int) (image.Image, bool) {
	if _, h, ok := t.knownHash(item.ImagePath, item.Hash); ok {
		if img, ok := t.fromCache(h, size); ok {
			return img, true
		}
	}
	t.enqueue(item, size, nil, true)
	return nil, false
}

// Request makes the thumbnail in the background and calls done (from a
// worker goroutine) with it or with an error naming the file.
func (t *Thumbnailer) Request(item *Item, size int, done func(image.Image, error)) {
	t.enqueue(item, size, done, true)
}

// Fetch is what a screen drawing a thumbnail asks, as often as it redraws.
// A cached thumbnail is returned at once (ThumbReady). One that failed
// before, for the file as it is now, is not tried again: ThumbFailed with
// the error. Otherwise it is queued (ThumbQueued) and done is called once,
// from a worker goroutine, when it is made or fails — unless a request for
// the same file and size is already waiting with a callback, which is
// called instead; so a screen asking on every redraw is called back once,
// not once per redraw. After Close, done gets ErrThumbnailerClosed.
func (t *Thumbnailer) Fetch(item *Item, size int, done func(image.Image, error)) (image.Image, ThumbState, error) {
	if size <= 0 {
		return nil, ThumbFailed, fmt.Errorf("thumbnail of %s: invalid size %d", item.ImagePath, size)
	}
	k, h, ok := t.knownHash(item.ImagePath, item.Hash)
	if ok {
		if img, ok := t.fromCache(h, size); ok {
			return img, ThumbReady, nil
		}
	}
	if k.path == "" {
		k = hashKey{path: item.ImagePath} // cannot stat it: a missing file
	}
	t.mu.Lock()
	err, failed := t.failed[failKey{k, size}]
	t.mu.Unlock()
	if failed {
		return nil, ThumbFailed, err
	}
	t.enqueue(item, size, done, false)
	return nil, ThumbQueued, nil
}

// enqueue adds a job, or joins the one already queued for the same file and
// size; a done given with join false is dropped when that job already has a
// callback.
func (t *Thumbnailer) enqueue(item *Item, size int, done func(image.Image, error), join bool) {
	if size <= 0 {
		if done != nil {
			done(nil, fmt.Errorf("thumbnail of %s: invalid size %d", item.ImagePath, size))
		}
		return
	}
	key := item.ImagePath + "|" + strconv.Itoa(size)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		if done != nil {
			done(nil, ErrThumbnailerClosed)
		}
		return
	}
	j, ok := t.pending[key]
	if !ok {
		j = &thumbJob{path: item.ImagePath, hash: item.Hash, size: size}
		t.pending[key] = j
		t.queue = append(t.queue, j)
		t.cond.Signal()
	}
	if done != nil && (join || len(j.dones) == 0) {
		j.dones = append(j.dones, done)
	}
	t.mu.Unlock()
}

// worker takes jobs until Close.
func (t *Thumbnailer) worker() {
	defer t.wg.Done()
	for {
		t.mu.Lock()
		for len(t.queue) == 0 && !t.closed {
			t.cond.Wait()
		}
		if t.closed {
			t.mu.Unlock()
			return
		}
		j := t.queue[len(t.queue)-1]
		t.queue = t.queue[:len(t.queue)-1]
		t.mu.Unlock()

		file := hashKey{path: j.path}
		if st, err := os.Stat(j.path); err == nil {
			file = hashKey{path: j.path, size: st.Size(), mtime: st.ModTime()}
		}
		img, err := t.make(j)

		t.mu.Lock()
		if err != nil {
			t.failed[failKey{file, j.size}] = err
		}
		delete(t.pending, j.path+"|"+strconv.Itoa(j.size))
		dones := j.dones
		t.mu.Unlock()
		for _, done := range dones {
			done(img, err)
		}
	}
}

// make produces one thumbnail: from the caches, else from the image.
func (t *Thumbnailer) make(j *thumbJob) (image.Image, error) {
	k, hash, ok := t.knownHash(j.path, j.hash)
	if !ok {
		h, err := hashFile(j.path)
		if err != nil {
			return nil, err
		}
		hash = h
		if k.path != "" {
			t.mu.Lock()
			t.hashes[k] = hash
			t.mu.Unlock()
		}
	}
	if img, ok := t.fromCache(hash, j.size); ok {
		return img, nil
	}
	src, err := LoadImage(j.path)
	if err != nil {
		return nil, err
	}
	thumb := scaleToFit(src, j.size)
	var buf bytes.Buffer
	if err := png.Encode(&buf, thumb); err != nil {
		return nil, fmt.Errorf("thumbnail of %s: %w", j.path, err)
	}
	// The cache is an optimisation: failing to write it is not an error.
	_ = writeFileAtomic(t.cachePath(hash, j.size), buf.Bytes(), 0o644)
	t.remember(cacheKey(hash, j.size), thumb)
	t.mu.Lock()
	t.generated++
	t.mu.Unlock()
	return thumb, nil
}

// scaleToFit scales src so its longest side is size (never upscaling).
func scaleToFit(src image.Image, size int) *image.NRGBA {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w >= h && w > size {
		w, h = size, max(1, h*size/w)
	} else if h > w && h > size {
		w, h = max(1, w*size/h), size
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	xdraw.BiLinear.Scale(dst, dst.Bounds(), src, b, xdraw.Src, nil)
	return dst
}
