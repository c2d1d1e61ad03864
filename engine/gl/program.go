package gl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/go-gl/gl/v4.3-core/gl"

	"lorastudio/shaders"
)

// program is one compiled, linked compute kernel with its uniform slots.
type program struct {
	id   uint32
	name string
	locP int32 // uniform int P[32]
	locF int32 // uniform float F[8]
}

// programCache compiles each kernel once per set of defines. It is only
// touched on the GL thread.
type programCache struct {
	progs  map[string]*program
	source func(name string) (string, error) // kernel source lookup (tests replace it)
	// variant, when set, returns a variant's complete GLSL in place of
	// shaders.GLSource (tests: the kernels round-tripped through SPIR-V).
	variant func(name string, defines map[string]string) (string, error)
}

func newProgramCache() *programCache {
	return &programCache{progs: map[string]*program{}, source: shaders.KernelBody}
}

// key is the cache key: the kernel name and its sorted defines.
func key(name string, defines map[string]string) string {
	ks := make([]string, 0, len(defines))
	for k, v := range defines {
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	return name + "|" + strings.Join(ks, ",")
}

// get returns the program for name and defines, compiling it on first use.
// Compile and link errors name the kernel and carry the driver's info log.
func (c *programCache) get(name string, defines map[string]string) (*program, error) {
	k := key(name, defines)
	if p := c.progs[k]; p != nil {
		return p, nil
	}
	var text string
	var err error
	if c.variant != nil {
		text, err = c.variant(name, defines)
	} else {
		text, err = shaders.GLSource(name, defines, c.source)
	}
	if err != nil {
		return nil, fmt.Errorf("gl: %w", err)
	}

	sh := gl.CreateShader(gl.COMPUTE_SHADER)
	csrc, free := gl.Strs(text + "\x00")
	gl.ShaderSource(sh, 1, csrc, nil)
	free()
	gl.CompileShader(sh)
	var ok int32
	gl.GetShaderiv(sh, gl.COMPILE_STATUS, &ok)
	if ok == gl.FALSE {
		log := shaderLog(sh, false)
		gl.DeleteShader(sh)
		return nil, fmt.Errorf("gl: kernel %s (shaders/gl/%s.comp): compile error: %s", name, name, log)
	}
	id := gl.CreateProgram()
	gl.AttachShader(id, sh)
	gl.LinkProgram(id)
	gl.DeleteShader(sh)
	gl.GetProgramiv(id, gl.LINK_STATUS, &ok)
	if ok == gl.FALSE {
		log := shaderLog(id, true)
		gl.DeleteProgram(id)
		return nil, fmt.Errorf("gl: kernel %s (shaders/gl/%s.comp): link error: %s", name, name, log)
	}
	p := &program{
		id:   id,
		name: name,
		locP: gl.GetUniformLocation(id, gl.Str("P\x00")),
		locF: gl.GetUniformLocation(id, gl.Str("F\x00")),
	}
	if e := gl.GetError(); e != gl.NO_ERROR {
		gl.DeleteProgram(id)
		return nil, fmt.Errorf("gl: kernel %s: GL error 0x%x while building", name, e)
	}
	c.progs[k] = p
	return p, nil
}

// shaderLog returns the info log of a shader or a program.
func shaderLog(id uint32, isProgram bool) string {
	var n int32
	if isProgram {
		gl.GetProgramiv(id, gl.INFO_LOG_LENGTH, &n)
	} else {
		gl.GetShaderiv(id, gl.INFO_LOG_LENGTH, &n)
	}
	if n <= 1 {
		return "(no info log)"
	}
	buf := make([]byte, n)
	if isProgram {
		gl.GetProgramInfoLog(id, n, nil, &buf[0])
	} else {
		gl.GetShaderInfoLog(id, n, nil, &buf[0])
	}
	return strings.TrimSpace(strings.TrimRight(string(buf), "\x00"))
}

// deleteAll deletes every program (on the GL thread, at close).
func (c *programCache) deleteAll() {
	for k, p := range c.progs {
		gl.DeleteProgram(p.id)
		delete(c.progs, k)
	}
}
