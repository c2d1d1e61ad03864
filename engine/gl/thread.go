package gl

import (
	"errors"
	"runtime"
	"sync"
)

// Thread is the one goroutine, locked to its OS thread, that owns a GL
// context. Everything else talks to it through Call (synchronous) and
// CallAsync (queued; its error is kept and returned by the next Call). The
// queue is unbounded, so work queued from the GL thread itself (a tensor
// freed inside an op) never blocks.
type Thread struct {
	mu       sync.Mutex
	cond     *sync.Cond
	queue    []func()
	closed   bool
	asyncErr error
	done     chan struct{}
}

// errClosed is returned by calls on a stopped thread.
var errClosed = errors.New("gl: the GL thread is closed")

// NewThread starts a thread; init runs first on it (to create and bind the
// context) and its error is returned, in which case the thread is stopped.
func NewThread(init func() error) (*Thread, error) {
	t := &Thread{done: make(chan struct{})}
	t.cond = sync.NewCond(&t.mu)
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The goroutine exits locked: the runtime then retires its OS
		// thread, so no other goroutine ever runs with this context current.
		defer close(t.done)
		if err := init(); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for {
			t.mu.Lock()
			for len(t.queue) == 0 && !t.closed {
				t.cond.Wait()
			}
			if len(t.queue) == 0 {
				t.mu.Unlock()
				return
			}
			f := t.queue[0]
			t.queue[0] = nil
			t.queue = t.queue[1:]
			t.mu.Unlock()
			f()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return t, nil
}

// send queues f unless the thread is closed.
func (t *Thread) send(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.queue = append(t.queue, f)
	t.cond.Signal()
	return true
}

// Call runs f on the GL thread and waits for it. It returns the first error
// kept from earlier CallAsync work, else f's error. It must not be called
// from the GL thread itself.
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
	ok := t.send(func() {
		if err := f(); err != nil {
			t.mu.Lock()
			if t.asyncErr == nil {
				t.asyncErr = err
			}
			t.mu.Unlock()
		}
	})
	if !ok {
		t.mu.Lock()
		if t.asyncErr == nil {
			t.asyncErr = errClosed
		}
		t.mu.Unlock()
	}
}

// Sync waits for all queued work and returns the first error it kept.
func (t *Thread) Sync() error { return t.Call(func() error { return nil }) }

// Stop runs last on the thread (to release the context), ends the thread
// and waits for it. Later calls return an error.
func (t *Thread) Stop(last func()) error {
	err := t.Call(func() error {
		if last != nil {
			last()
		}
		return nil
	})
	t.mu.Lock()
	t.closed = true
	t.cond.Signal()
	t.mu.Unlock()
	<-t.done
	return err
}
