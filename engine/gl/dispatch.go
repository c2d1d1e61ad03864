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
	for i, b := range l.bufs {
		if b == nil || b.id == 0 {
			return fmt.Errorf("gl: kernel %s: binding %d is a released buffer", l.kernel, i)
		}
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
	return check(l.kernel, "glMemoryBarrier")
}

// glError returns the pending GL error, naming what was being done.
func glError(what string) error {
	if e := gl.GetError(); e != gl.NO_ERROR {
		return fmt.Errorf("gl: %s: GL error 0x%x", what, e)
	}
	return nil
}
