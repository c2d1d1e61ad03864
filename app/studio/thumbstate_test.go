package studio

import (
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fetchUntil calls Fetch, as a redrawing screen does, until the state is
// want or the deadline passes; every call passes the same callback.
func fetchUntil(t *testing.T, th *Thumbnailer, it *Item, size int, want ThumbState, done func(image.Image, error)) (image.Image, error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		img, st, err := th.Fetch(it, size, done)
		if st == want {
			return img, err
		}
		if time.Now().After(deadline) {
			t.Fatalf("Fetch of %s: still %v after 30 s, want %v", it.ImagePath, st, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFetchCallsBackOnceAndRemembersFailures checks the pending state the
// Thumbnailer keeps for screens: asking on every redraw makes one thumbnail
// and one callback; a thumbnail that failed is not queued again until its
// file changes.
func TestFetchCallsBackOnceAndRemembersFailures(t *testing.T) {
	th, err := NewThumbnailer(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	root := t.TempDir()
	good := &Item{ImagePath: filepath.Join(root, "good.png")}
	writePNG(t, good.ImagePath, 80, 40, 1)

	var calls atomic.Int32
	called := make(chan error, 16)
	cb := func(_ image.Image, err error) {
		calls.Add(1)
		called <- err
	}
	img, _ := fetchUntil(t, th, good, 32, ThumbReady, cb)
	if b := img.Bounds(); b.Dx() != 32 || b.Dy() != 16 {
		t.Fatalf("thumbnail %v, want 32×16", b)
	}
	select {
	case err := <-called:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the callback of the queued thumbnail was never called")
	}
	if _, st, _ := th.Fetch(good, 32, cb); st != ThumbReady {
		t.Fatalf("cached thumbnail: state %v", st)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d callbacks for one thumbnail asked for on every redraw, want 1", n)
	}
	if n := th.Generated(); n != 1 {
		t.Fatalf("%d thumbnails decoded, want 1", n)
	}

	// A file that is not an image: the error once, then ThumbFailed without
	// queueing it again.
	bad := &Item{ImagePath: filepath.Join(root, "bad.png")}
	writeText(t, bad.ImagePath, "not a png")
	if _, st, _ := th.Fetch(bad, 32, cb); st != ThumbQueued {
		t.Fatalf("first fetch of a bad image: state %v, want queued", st)
	}
	select {
	case err := <-called:
		if err == nil || !strings.Contains(err.Error(), bad.ImagePath) {
			t.Fatalf("bad image: callback error %v, want one naming the file", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the bad image's callback was never called")
	}
	_, failErr := fetchUntil(t, th, bad, 32, ThumbFailed, cb)
	if failErr == nil || !strings.Contains(failErr.Error(), bad.ImagePath) {
		t.Fatalf("ThumbFailed with error %v, want one naming the file", failErr)
	}
	for range 3 {
		if _, st, _ := th.Fetch(bad, 32, cb); st != ThumbFailed {
			t.Fatalf("a failed thumbnail was queued again (state %v)", st)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d callbacks after the failure, want 2", n)
	}

	// Repaired (another size and time): tried again.
	writePNG(t, bad.ImagePath, 40, 40, 2)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(bad.ImagePath, later, later); err != nil {
		t.Fatal(err)
	}
	if img, _ = fetchUntil(t, th, bad, 32, ThumbReady, nil); img.Bounds().Dx() != 32 {
		t.Fatalf("repaired image: thumbnail %v", img.Bounds())
	}

	th.Close()
	if _, st, err := th.Fetch(&Item{ImagePath: filepath.Join(root, "new.png")}, 32, cb); st != ThumbQueued {
		t.Fatalf("after Close: state %v %v", st, err)
	}
	select {
	case err := <-called:
		if !errors.Is(err, ErrThumbnailerClosed) {
			t.Fatalf("after Close: callback error %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no callback after Close")
	}
}

// TestNeedsCaption pins the one caption rule the dataset and the screens share.
func TestNeedsCaption(t *testing.T) {
	for _, c := range []struct {
		it   Item
		want bool
	}{
		{Item{}, true},
		{Item{HasCaption: true, Caption: " \n\t"}, true},
		{Item{HasCaption: true, Caption: "a cat"}, false},
		{Item{HasCaption: true, CaptionErr: ErrNotUTF8}, false},
	} {
		if got := c.it.NeedsCaption(); got != c.want {
			t.Errorf("%+v: NeedsCaption %v, want %v", c.it, got, c.want)
		}
	}
}
