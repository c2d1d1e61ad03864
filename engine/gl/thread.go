package gl

import (
	"errors"
	"runtime"
	"sync"
)

// Thread is the one goroutine, locked to its OS thread, that owns a GL
// context. Everything else talks to it through Call (synchronous) and
// CallAsync (queued; its error is kept and returned by the next Call).
type Thread struct {
	funcs chan func()
	done  chan struct{}

	sendMu sync.RWMutex // held for reading while sending, for writing to close funcs
	closed bool         // guarded by sendMu

	mu       sync.Mutex
	asyncErr error
}

// errClosed is returned by calls on a stopped thread.
var errClosed = errors.New("gl: the GL thread is closed")

// NewThread starts a thread; init runs first on it (to create and bind the
// context) and its error is returned, in which case the thread is stopped.
func NewThread(init func() error) (*Thread, error) {
	t := &Thread{funcs: make(chan func(), 256), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer close(t.done)
		if err := init(); err != nil {
			ready <- err
			// Stay locked: the thread may hold a half-made context; the
			// runtime discards a goroutine's OS thread that exits locked.
			return
		}
		ready <- nil
		for f := range t.funcs {
			f()
		}
	}()
	if err := <-ready; err != nil {
		t.closed = true
		return nil, err
	}
	return t, nil
}

// Call runs f on the GL thread and waits for it. It returns the first error
// kept from earlier CallAsync work, else f's error.
func (t *Thread) Call(f func() error) error {
	errc := make(chan error, 1)
	if !t.send(func() { errc <- f() }) {
		return errClosed
	}
	err := <-errc
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.asyncErr != nil {
		aerr := t.asyncErr
		t.asyncErr = nil
		return aerr
	}
	return err
}

// CallAsync queues f on the GL thread and returns at once; the first error
// from queued work is returned by the next Call (or Sync).
func (t *Thread) CallAsync(f func() error) {
	t.send(func() {
		if err := f(); err != nil {
			t.mu.Lock()
			if t.asyncErr == nil {
				t.asyncErr = err
			}
			t.mu.Unlock()
		}
	})
}

// send queues f unless the thread is closed.
func (t *Thread) send(f func()) bool {
	t.sendMu.RLock()
	defer t.sendMu.RUnlock()
	if t.closed {
		return false
	}
	t.funcs <- f
	return true
}

// Sync waits for all queued work and returns the first error it kept.
func (t *Thread) Sync() error { return t.Call(func() error { return nil }) }

// Stop runs last on the thread (to release the context) and ends the
// thread. Later calls return an error.
func (t *Thread) Stop(last func()) error {
	err := t.Call(func() error {
		if last != nil {
			last()
		}
		return nil
	})
	t.sendMu.Lock()
	if !t.closed {
		t.closed = true
		close(t.funcs)
	}
	t.sendMu.Unlock()
	<-t.done
	return err
}
