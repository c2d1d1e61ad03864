//go:build darwin

package metal

import (
	"errors"
	"runtime"
	"sync"
)

// thread is one OS-locked goroutine that runs every Metal call, each inside
// an autorelease pool, in the order they are submitted.
type thread struct {
	fns     chan func()
	stop    sync.Once
	stopped chan struct{}
}

var errStopped = errors.New("metal: device closed")

func newThread() *thread {
	t := &thread{fns: make(chan func()), stopped: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		for {
			select {
			case f := <-t.fns:
				f()
			case <-t.stopped:
				return
			}
		}
	}()
	return t
}

// call runs f on the thread inside an autorelease pool and returns its error.
func (t *thread) call(f func() error) error {
	done := make(chan error, 1)
	select {
	case t.fns <- func() { done <- withPool(f) }:
	case <-t.stopped:
		return errStopped
	}
	return <-done
}

// close runs last on the thread, then ends it.
func (t *thread) close(last func() error) error {
	err := t.call(last)
	t.stop.Do(func() { close(t.stopped) })
	return err
}
