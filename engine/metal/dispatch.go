//go:build darwin

package metal

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego/objc"
)

// launch is one kernel dispatch, as in engine/gl: the kernel and its
// defines, the buffers at GL bindings 0, 1, 2 ... in order, the P (int) and
// F (float) uniforms, and the grid of threadgroups.
type launch struct {
	kernel  string
	defines map[string]string
	bufs    []*buffer
	p       []int32
	f       []float32
	groups  [3]int

	// chunk > 0 marks a 1-D elementwise kernel over chunk f32 elements whose
	// P[0] is the count and whose bindings are all indexed by the
	// invocation (except those in whole): it may run in ranges.
	chunk int
	whole uint32 // bit i: binding i is bound whole (a scalar operand)
}

// encoder is the command buffer being filled and the one committed last.
// Dispatches in one compute encoder run in order, and Metal orders their
// reads after earlier writes to the same (tracked) buffer.
type encoder struct {
	cmd, enc objc.ID  // the open command buffer and its compute encoder, 0 when none
	kernels  []string // the kernels encoded into cmd, for error messages
	last     objc.ID  // retained: the last committed command buffer, 0 when waited for
	lastKern []string
	err      error // an error from a finished command buffer, kept for the next wait
}

// grid1D tiles a 1-D launch of n invocations in threadgroups of local into
// a 2-D grid; kernels index it with GID.
func (d *Device) grid1D(n, local int) [3]int {
	g := (n + local - 1) / local
	if g < 1 {
		g = 1
	}
	return d.tileGroups(g)
}

// tileGroups spreads g threadgroups over x and y within MaxGroups; kernels
// index them with GROUP and skip the overshoot.
func (d *Device) tileGroups(g int) [3]int {
	mx := d.limits.MaxGroups[0]
	if g <= mx {
		return [3]int{g, 1, 1}
	}
	gy := (g + mx - 1) / mx
	gx := (g + gy - 1) / gy
	return [3]int{gx, gy, 1}
}

// run encodes l into the open command buffer (opening one if needed). It
// runs on the Metal thread.
func (d *Device) run(l launch) error {
	p, err := d.pipelines.get(l.kernel, l.defines)
	if err != nil {
		return err
	}
	for i, g := range l.groups {
		if g < 1 {
			return nil // empty launch
		}
		if g > d.limits.MaxGroups[i] {
			return fmt.Errorf("metal: kernel %s: %d threadgroups in dimension %d exceeds the limit %d", l.kernel, g, i, d.limits.MaxGroups[i])
		}
	}
	if len(l.p) > 32 || len(l.f) > 8 {
		return fmt.Errorf("metal: kernel %s: %d int and %d float parameters (at most 32 and 8)", l.kernel, len(l.p), len(l.f))
	}
	big := false
	for i, b := range l.bufs {
		if b == nil || b.id == 0 {
			return fmt.Errorf("metal: kernel %s: binding %d is a released buffer", l.kernel, i)
		}
		if b.bytes > d.limits.MaxSSBOSize {
			if l.chunk == 0 || l.whole&(1<<i) != 0 {
				return fmt.Errorf("metal: kernel %s: binding %d is %d MiB, over the %d MiB one binding may address (%s); split the tensor or tile the work",
					l.kernel, i, b.bytes>>20, d.limits.MaxSSBOSize>>20, d.limits.Renderer)
			}
			big = true
		}
	}
	enc := d.encoderFor(l.kernel)
	enc.Send(selSetPipeline, p.state)
	if !big {
		return d.dispatch(enc, p, l, l.p, func(int) int { return 0 }, l.groups)
	}
	// Chunked: consecutive ranges of elements, each bound at an offset.
	align := d.limits.SSBOAlign / 4
	per := d.limits.MaxSSBOSize / 4 / align * align
	for c0 := 0; c0 < l.chunk; c0 += per {
		cnt := min(per, l.chunk-c0)
		pp := append([]int32(nil), l.p...)
		pp[0] = int32(cnt)
		off := func(i int) int {
			if l.whole&(1<<i) != 0 {
				return 0
			}
			return 4 * c0
		}
		if err := d.dispatch(enc, p, l, pp, off, d.grid1D(cnt, 256)); err != nil {
			return err
		}
	}
	return nil
}

// dispatch binds l's buffers (at offset(i) bytes) and uniforms at the
// indices the reflection gives and encodes one grid.
func (d *Device) dispatch(enc objc.ID, p *pipeline, l launch, params []int32, offset func(i int) int, groups [3]int) error {
	for bnd := range p.index {
		if bnd >= len(l.bufs) {
			return fmt.Errorf("metal: kernel %s: reads binding %d, but the launch binds %d buffers", l.kernel, bnd, len(l.bufs))
		}
	}
	for i, b := range l.bufs {
		idx, used := p.index[i]
		if !used {
			continue // the kernel does not read this binding
		}
		enc.Send(selSetBuffer, b.id, uint64(offset(i)), uint64(idx))
	}
	if p.refl.P >= 0 {
		var pv [32]int32
		copy(pv[:], params)
		enc.Send(selSetBytes, unsafe.Pointer(&pv[0]), uint64(len(pv)*4), uint64(p.refl.P))
	}
	if p.refl.F >= 0 {
		var fv [8]float32
		copy(fv[:], l.f)
		enc.Send(selSetBytes, unsafe.Pointer(&fv[0]), uint64(len(fv)*4), uint64(p.refl.F))
	}
	ts := p.refl.ThreadgroupSize
	enc.Send(selDispatch,
		mtlSize{uint64(groups[0]), uint64(groups[1]), uint64(groups[2])},
		mtlSize{uint64(ts[0]), uint64(ts[1]), uint64(ts[2])})
	return nil
}

// encoderFor returns the open compute encoder, opening a command buffer
// when none is open, and notes kernel for error messages.
func (d *Device) encoderFor(kernel string) objc.ID {
	e := &d.enc
	if e.cmd == 0 {
		e.cmd = d.queue.Send(selCommandBuffer).Send(selRetain)
		e.enc = e.cmd.Send(selComputeEncoder).Send(selRetain)
		e.kernels = e.kernels[:0]
	}
	if n := len(e.kernels); n == 0 || e.kernels[n-1] != kernel {
		e.kernels = append(e.kernels, kernel)
	}
	return e.enc
}

// flush commits the open command buffer without waiting; the previous one
// is checked first (queue order means it finished or will before this one).
func (d *Device) flush() {
	e := &d.enc
	if e.cmd == 0 {
		return
	}
	e.enc.Send(selEndEncoding)
	e.enc.Send(selRelease)
	e.cmd.Send(selCommit)
	if e.last != 0 {
		d.finish()
	}
	e.last, e.lastKern = e.cmd, append([]string(nil), e.kernels...)
	e.cmd, e.enc = 0, 0
}

// finish waits for the last committed command buffer, keeps its error and
// releases it.
func (d *Device) finish() {
	e := &d.enc
	if e.last == 0 {
		return
	}
	e.last.Send(selWaitUntilCompleted)
	const statusError = 5 // MTLCommandBufferStatusError
	if st := objc.Send[uint64](e.last, selStatus); st == statusError && e.err == nil {
		e.err = fmt.Errorf("metal: command buffer with kernels %s failed: %s", strings.Join(e.lastKern, ", "), errorText(e.last.Send(selError)))
	}
	e.last.Send(selRelease)
	e.last = 0
}

// wait commits what is open, waits until the GPU is idle and returns (once)
// the error a command buffer ended with. It runs on the Metal thread.
func (d *Device) wait() error {
	d.flush()
	d.finish()
	err := d.enc.err
	d.enc.err = nil
	return err
}
