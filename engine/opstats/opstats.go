// Package opstats times every op a tensor.Backend runs and attributes it to a
// kind (matmul, conv, attention, ...), so a benchmark can print where the time
// goes without pprof. Backend wraps another backend; its tensors report the
// wrapper as their backend (tensor.Adopt), so models that call ops through
// x.Backend() stay inside it.
//
// On a backend whose ops run asynchronously (tensor.Syncer, the GL backend)
// the wrapper syncs after every op so the time lands on the op that spent it;
// that serialises the queue, and totals measured through the wrapper are then
// slower than without it.
package opstats

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"lorastudio/engine/tensor"
)

// Kind is the family an op is attributed to.
type Kind string

// The kinds, in the order Summary lists them.
const (
	MatMul      Kind = "matmul"      // MatMul and its backward
	Conv        Kind = "conv"        // Conv2D and its backward
	Attention   Kind = "attention"   // fused Attention and its backward
	Norm        Kind = "norm"        // GroupNorm, LayerNorm and their backwards
	Activation  Kind = "activation"  // Activation, GEGLU, Softmax and their backwards
	Cast        Kind = "cast"        // Cast between dtypes
	Copy        Kind = "copy"        // Concat, Split, Slice, Permute, BroadcastTo, Upsample2x and backwards
	Elementwise Kind = "elementwise" // Binary, Scale, AddScalar, ReduceTo and backwards
	Transfer    Kind = "transfer"    // Upload, Zeros, Download
	Other       Kind = "other"       // TimestepEmbedding, MSELoss and its backward
)

// Kinds lists every kind in display order.
var Kinds = []Kind{MatMul, Conv, Attention, Norm, Activation, Cast, Copy, Elementwise, Transfer, Other}

// kindOf maps each op (the tensor.Backend method name) to its kind.
var kindOf = map[string]Kind{
	"MatMul": MatMul, "MatMulBackward": MatMul,
	"Conv2D": Conv, "Conv2DBackward": Conv,
	"Attention": Attention, "AttentionBackward": Attention,
	"GroupNorm": Norm, "GroupNormBackward": Norm, "LayerNorm": Norm, "LayerNormBackward": Norm,
	"Activation": Activation, "ActivationBackward": Activation, "GEGLU": Activation, "GEGLUBackward": Activation,
	"Softmax": Activation, "SoftmaxBackward": Activation,
	"Cast":   Cast,
	"Concat": Copy, "Split": Copy, "Slice": Copy, "SliceBackward": Copy, "Permute": Copy, "BroadcastTo": Copy,
	"Upsample2x": Copy, "Upsample2xBackward": Copy,
	"Binary": Elementwise, "BinaryBackward": Elementwise, "Scale": Elementwise, "AddScalar": Elementwise, "ReduceTo": Elementwise,
	"Upload": Transfer, "Zeros": Transfer, "Download": Transfer,
	"TimestepEmbedding": Other, "MSELoss": Other, "MSELossBackward": Other,
}

// KindOf returns the kind of the op named like its tensor.Backend method
// ("MatMul", "GroupNormBackward"), or Other for a name it does not know.
func KindOf(op string) Kind {
	if k, ok := kindOf[op]; ok {
		return k
	}
	return Other
}

// Count is what one op or one kind cost.
type Count struct {
	Name    string        `json:"name"`    // the op ("MatMul") or the kind ("matmul")
	Kind    Kind          `json:"kind"`    // the kind (equal to Name in a kind row)
	Calls   int64         `json:"calls"`   // how many times it ran (failed calls are not counted)
	Time    time.Duration `json:"time_ns"` // the total time it took
	Share   float64       `json:"share"`   // Time over the total of every op, 0..1
	Seconds float64       `json:"seconds"` // Time in seconds, for readers of the JSON
}

// Stats is a snapshot of what the wrapper counted since it was made or Reset.
type Stats struct {
	Backend string `json:"backend"`
	// Synced is true when the wrapped backend is asynchronous and every op
	// was followed by a sync (the queue ran serialised).
	Synced bool `json:"synced"`
	// Total is the time of every op together.
	Total time.Duration `json:"total_ns"`
	// Kinds has a row per kind that ran, in Kinds order; Ops a row per op,
	// the most expensive first.
	Kinds []Count `json:"kinds"`
	Ops   []Count `json:"ops"`
}

// Backend is a tensor.Backend that forwards every call to another one and
// counts it. It is safe for use by one goroutine at a time, like the
// backends it wraps; Stats and Reset may be called from another goroutine.
type Backend struct {
	inner  tensor.Backend
	syncer tensor.Syncer // nil for a synchronous backend

	mu  sync.Mutex
	ops map[string]*Count
	err error // the first failed per-op sync, returned by Sync
}

// New wraps b. Tensors b made before keep reporting b as their backend but
// are accepted by the wrapper's ops (tensor.Check compares tensor.Root).
func New(b tensor.Backend) *Backend {
	p := &Backend{inner: b, ops: map[string]*Count{}}
	if s, ok := b.(tensor.Syncer); ok {
		p.syncer = s
	}
	return p
}

// Unwrap returns the wrapped backend (tensor.Wrapper).
func (p *Backend) Unwrap() tensor.Backend { return p.inner }

// Synced reports whether the wrapper syncs after every op (an asynchronous
// backend).
func (p *Backend) Synced() bool { return p.syncer != nil }

// Sync waits for the wrapped backend's queue when it has one and returns the
// first error of an op or of a per-op sync.
func (p *Backend) Sync() error {
	p.mu.Lock()
	err := p.err
	p.err = nil
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if p.syncer == nil {
		return nil
	}
	return p.syncer.Sync()
}

// Reset drops every count (after syncing an asynchronous backend, so queued
// work is not billed to the next op).
func (p *Backend) Reset() error {
	err := p.Sync()
	p.mu.Lock()
	p.ops = map[string]*Count{}
	p.mu.Unlock()
	return err
}

// Stats returns what was counted since New or the last Reset.
func (p *Backend) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{Backend: p.inner.Name(), Synced: p.syncer != nil}
	byKind := map[Kind]*Count{}
	for _, c := range p.ops {
		s.Total += c.Time
		s.Ops = append(s.Ops, *c)
		k := byKind[c.Kind]
		if k == nil {
			k = &Count{Name: string(c.Kind), Kind: c.Kind}
			byKind[c.Kind] = k
		}
		k.Calls += c.Calls
		k.Time += c.Time
	}
	for _, k := range Kinds {
		if c := byKind[k]; c != nil {
			s.Kinds = append(s.Kinds, *c)
		}
	}
	slices.SortFunc(s.Ops, func(a, b Count) int {
		if c := cmp.Compare(b.Time, a.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	for _, rows := range [][]Count{s.Kinds, s.Ops} {
		for i := range rows {
			rows[i].Seconds = rows[i].Time.Seconds()
			if s.Total > 0 {
				rows[i].Share = float64(rows[i].Time) / float64(s.Total)
			}
		}
	}
	return s
}

// WriteTable writes the per-kind breakdown (and, with ops, the per-op rows)
// as an aligned table headed by title.
func (s Stats) WriteTable(w io.Writer, title string, ops bool) {
	fmt.Fprintf(w, "%s: %.3f s in ops\n", title, s.Total.Seconds())
	if s.Synced {
		fmt.Fprintf(w, "(%s runs asynchronously: per-op timing synced after every op, which serialises the queue)\n", s.Backend)
	}
	rows := func(head string, cs []Count) {
		fmt.Fprintf(w, "  %-20s %8s %10s %10s %7s\n", head, "calls", "seconds", "ms/call", "share")
		for _, c := range cs {
			fmt.Fprintf(w, "  %-20s %8d %10.3f %10.3f %6.1f%%\n", c.Name, c.Calls, c.Seconds, 1e3*c.Seconds/float64(max(c.Calls, 1)), 100*c.Share)
		}
	}
	rows("kind", s.Kinds)
	if ops {
		rows("op", s.Ops)
	}
}

// begin marks the start of an op.
func (p *Backend) begin() time.Time { return time.Now() }

// end records op's time since start (after a sync on an asynchronous backend)
// and adopts its results; a failed op is not counted.
func (p *Backend) end(op string, start time.Time, err error, outs ...*tensor.Tensor) error {
	if err != nil {
		return err
	}
	if p.syncer != nil {
		if serr := p.syncer.Sync(); serr != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = serr
			}
			p.mu.Unlock()
		}
	}
	d := time.Since(start)
	for _, t := range outs {
		if aerr := tensor.Adopt(t, p); aerr != nil {
			return aerr
		}
	}
	p.mu.Lock()
	c := p.ops[op]
	if c == nil {
		c = &Count{Name: op, Kind: KindOf(op)}
		p.ops[op] = c
	}
	c.Calls++
	c.Time += d
	p.mu.Unlock()
	return nil
}

var _ tensor.Backend = (*Backend)(nil)
var _ tensor.Wrapper = (*Backend)(nil)
var _ tensor.Syncer = (*Backend)(nil)
