package gl

import (
	"fmt"

	"github.com/go-gl/gl/v4.3-core/gl"
)

// launch is one kernel dispatch: the kernel and its defines, the buffers
// bound at 0, 1, 2 ... in order, the P (int) and F (float) uniforms, and the
// grid of work groups.
type launch struct {
	kernel  string
	defines map[string]string
	bufs    []*buffer
	p       []int32
	f       []float32
	groups  [3]int

	// chunk > 0 marks a 1-D elementwise kernel over chunk f32 elements whose
	// P[0] is the count and whose bindings are all indexed by the
	// invocation (except those in whole): it may run in ranges, so tensors
	// beyond the per-binding limit work.
	chunk int
	whole uint32 // bit i: binding i is bound whole (a scalar operand)
}

// grid1D tiles a 1-D launch of n invocations in work groups of local into a
// 2-D grid within the per-dimension limit; kernels index it with gid().
func (d *Device) grid1D(n, local int) [3]int {
	g := (n + local - 1) / local
	if g < 1 {
		g = 1
	}
	return d.tileGroups(g)
}

// tileGroups spreads g work groups over x and y within the per-dimension
// limit; kernels index them with groupIndex() and skip the overshoot.
func (d *Device) tileGroups(g int) [3]int {
	mx := d.limits.MaxGroups[0]
	if g <= mx {
		return [3]int{g, 1, 1}
	}
	gy := (g + mx - 1) / mx
	gx := (g + gy - 1) / gy
	return [3]int{gx, gy, 1}
}

// run compiles (once) and dispatches l, then orders its writes before any
// later read. It runs on the GL thread.
func (d *Device) run(l launch) error {
	prog, err := d.programs.get(l.kernel, l.defines)
	if err != nil {
		return err
	}
	for i, g := range l.groups {
		if g < 1 {
			return nil // empty launch
		}
		if g > d.limits.MaxGroups[i] {
			return fmt.Errorf("gl: kernel %s: %d work groups in dimension %d exceeds the limit %d", l.kernel, g, i, d.limits.MaxGroups[i])
		}
	}
	gl.UseProgram(prog.id)
	if err := check(l.kernel, "glUseProgram"); err != nil {
		return err
	}
	big := false
	for i, b := range l.bufs {
		if b == nil || b.id == 0 {
			return fmt.Errorf("gl: kernel %s: binding %d is a released buffer", l.kernel, i)
		}
		if b.bytes > d.limits.MaxSSBOSize {
			if l.chunk == 0 || l.whole&(1<<i) != 0 {
				return fmt.Errorf("gl: kernel %s: binding %d is %d MiB, over this device's %d MiB shader storage binding limit (%s); split the tensor (e.g. by batch) or tile the work",
					l.kernel, i, b.bytes>>20, d.limits.MaxSSBOSize>>20, d.limits.Renderer)
			}
			big = true
		}
	}
	if big {
		return d.runChunked(l, prog)
	}
	for i, b := range l.bufs {
		size := b.size
		if size > d.limits.MaxSSBOSize {
			size = d.limits.MaxSSBOSize
		}
		gl.BindBufferRange(gl.SHADER_STORAGE_BUFFER, uint32(i), b.id, 0, size)
		if err := check(l.kernel, "glBindBufferRange"); err != nil {
			return err
		}
	}
	if len(l.p) > 0 && prog.locP >= 0 {
		if len(l.p) > 32 {
			return fmt.Errorf("gl: kernel %s: %d int parameters (at most 32)", l.kernel, len(l.p))
		}
		gl.Uniform1iv(prog.locP, int32(len(l.p)), &l.p[0])
		if err := check(l.kernel, "glUniform1iv"); err != nil {
			return err
		}
	}
	if len(l.f) > 0 && prog.locF >= 0 {
		if len(l.f) > 8 {
			return fmt.Errorf("gl: kernel %s: %d float parameters (at most 8)", l.kernel, len(l.f))
		}
		gl.Uniform1fv(prog.locF, int32(len(l.f)), &l.f[0])
		if err := check(l.kernel, "glUniform1fv"); err != nil {
			return err
		}
	}
	gl.DispatchCompute(uint32(l.groups[0]), uint32(l.groups[1]), uint32(l.groups[2]))
	if err := check(l.kernel, "glDispatchCompute"); err != nil {
		return err
	}
	gl.MemoryBarrier(gl.SHADER_STORAGE_BARRIER_BIT | gl.BUFFER_UPDATE_BARRIER_BIT)
	if d.finish {
		gl.Finish() // see Device.finish
	}
	return check(l.kernel, "glMemoryBarrier")
}

// runChunked runs an elementwise launch whose tensors exceed the binding
// limit as a series of dispatches, each over a range of elements bound with
// glBindBufferRange at an aligned offset. prog is already in use.
func (d *Device) runChunked(l launch, prog *program) error {
	align := d.limits.SSBOAlign / 4
	if align < 1 {
		align = 1
	}
	per := d.limits.MaxSSBOSize / 4 / align * align
	for c0 := 0; c0 < l.chunk; c0 += per {
		cnt := min(per, l.chunk-c0)
		for i, b := range l.bufs {
			if l.whole&(1<<i) != 0 {
				gl.BindBufferRange(gl.SHADER_STORAGE_BUFFER, uint32(i), b.id, 0, b.size)
				continue
			}
			gl.BindBufferRange(gl.SHADER_STORAGE_BUFFER, uint32(i), b.id, 4*c0, min(4*cnt, b.size-4*c0))
		}
		if err := check(l.kernel, "glBindBufferRange"); err != nil {
			return err
		}
		p := append([]int32(nil), l.p...)
		p[0] = int32(cnt)
		gl.Uniform1iv(prog.locP, int32(len(p)), &p[0])
		if len(l.f) > 0 && prog.locF >= 0 {
			gl.Uniform1fv(prog.locF, int32(len(l.f)), &l.f[0])
		}
		g := d.grid1D(cnt, 256)
		gl.DispatchCompute(uint32(g[0]), uint32(g[1]), uint32(g[2]))
		gl.MemoryBarrier(gl.SHADER_STORAGE_BARRIER_BIT | gl.BUFFER_UPDATE_BARRIER_BIT)
		if d.finish {
			gl.Finish()
		}
		if err := check(l.kernel, "glDispatchCompute"); err != nil {
			return err
		}
	}
	return nil
}

// glError returns the pending GL error, naming what was being done.
func glError(what string) error {
	if e := gl.GetError(); e != gl.NO_ERROR {
		return fmt.Errorf("gl: %s: GL error 0x%x", what, e)
	}
	return nil
}
