package ui

import (
	"sync"

	"fyne.io/fyne/v2"
)

// backgroundMu serialises the UI updates that background work hands to fyne.Do. The desktop
// driver runs them one at a time on its own thread anyway, but Fyne's test driver runs each
// on the goroutine that asked: without the mutex a thumbnail arriving while a test filters
// the dataset grid lays the grid out twice at once (a panic inside Fyne's GridWrap). Tests
// that drive a screen while background work may report hold it too (see waitUI).
var backgroundMu sync.Mutex

// fromBackground runs f on the UI from a background goroutine. Every screen's background
// work reports through it (or fromBackgroundWait), never through fyne.Do directly. Never
// call it from the UI goroutine while that goroutine holds backgroundMu.
func fromBackground(f func()) {
	fyne.Do(func() {
		backgroundMu.Lock()
		defer backgroundMu.Unlock()
		f()
	})
}

// fromBackgroundWait is fromBackground that returns once f has run.
func fromBackgroundWait(f func()) {
	fyne.DoAndWait(func() {
		backgroundMu.Lock()
		defer backgroundMu.Unlock()
		f()
	})
}
