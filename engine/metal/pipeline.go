//go:build darwin

package metal

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"unsafe"

	"github.com/ebitengine/purego/objc"

	"lorastudio/shaders"
)

// reflection is the part of shaders/metal/NAME.json a launch needs (see
// shaders/internal/gen).
type reflection struct {
	Entry           string `json:"entry"`
	ThreadgroupSize [3]int `json:"threadgroup_size"`
	Buffers         []struct {
		Binding int `json:"binding"`
		Index   int `json:"index"`
	} `json:"buffers"`
	P int `json:"p"`
	F int `json:"f"`
}

// pipeline is one compiled kernel variant.
type pipeline struct {
	state   objc.ID // id<MTLComputePipelineState>
	name    string  // the variant, e.g. "binary__OP=1"
	refl    reflection
	index   map[int]int // GL binding -> Metal buffer index
	threads int         // the variant's threads per threadgroup
}

// pipelineCache builds each variant's pipeline once, from the MSL that go
// generate made of the GLSL. It is only touched on the Metal thread.
type pipelineCache struct {
	dev   *Device
	pipes map[string]*pipeline
}

func newPipelineCache(d *Device) *pipelineCache {
	return &pipelineCache{dev: d, pipes: map[string]*pipeline{}}
}

// get returns the pipeline of kernel with defines, building it on first
// use. Errors name the kernel and the variant.
func (c *pipelineCache) get(kernel string, defines map[string]string) (*pipeline, error) {
	name := shaders.VariantName(kernel, defines)
	if p := c.pipes[name]; p != nil {
		return p, nil
	}
	src, err := fs.ReadFile(shaders.Metal, "metal/"+name+".metal")
	if err != nil {
		return nil, fmt.Errorf("metal: kernel %s: no generated variant %s (add it to shaders.Variants and run go generate ./shaders/)", kernel, name)
	}
	rj, err := fs.ReadFile(shaders.Metal, "metal/"+name+".json")
	if err != nil {
		return nil, fmt.Errorf("metal: kernel %s: no reflection for %s", kernel, name)
	}
	p := &pipeline{name: name, index: map[int]int{}}
	if err := json.Unmarshal(rj, &p.refl); err != nil {
		return nil, fmt.Errorf("metal: kernel %s: shaders/metal/%s.json: %w", kernel, name, err)
	}
	for _, b := range p.refl.Buffers {
		p.index[b.Binding] = b.Index
	}
	ts := p.refl.ThreadgroupSize
	p.threads = ts[0] * ts[1] * ts[2]
	if p.threads < 1 {
		return nil, fmt.Errorf("metal: kernel %s: shaders/metal/%s.json: threadgroup size %v", kernel, name, ts)
	}
	// Fast math (Metal's default) may reorder and flush what the GL drivers
	// compute as written, and assumes no infinities: the causal attention
	// masks with -inf. The kernels are compiled as written.
	opts := objc.ID(classMTLCompileOptions).Send(selAlloc).Send(selInit)
	defer opts.Send(selRelease)
	opts.Send(selSetFastMath, false)
	var nsErr objc.ID
	lib := c.dev.dev.Send(selNewLibrary, nsString(string(src)), opts, unsafe.Pointer(&nsErr))
	if lib == 0 {
		return nil, fmt.Errorf("metal: kernel %s (shaders/metal/%s.metal): compile error: %s", kernel, name, errorText(nsErr))
	}
	defer lib.Send(selRelease)
	fn := lib.Send(selNewFunction, nsString(p.refl.Entry))
	if fn == 0 {
		return nil, fmt.Errorf("metal: kernel %s (shaders/metal/%s.metal): no function %s", kernel, name, p.refl.Entry)
	}
	defer fn.Send(selRelease)
	nsErr = 0
	p.state = c.dev.dev.Send(selNewPipeline, fn, unsafe.Pointer(&nsErr))
	if p.state == 0 {
		return nil, fmt.Errorf("metal: kernel %s (shaders/metal/%s.metal): pipeline error: %s", kernel, name, errorText(nsErr))
	}
	if mx := int(objc.Send[uint64](p.state, selMaxThreads)); p.threads > mx {
		p.state.Send(selRelease)
		return nil, fmt.Errorf("metal: kernel %s (%s): %d threads per threadgroup, but this GPU runs the pipeline with at most %d", kernel, name, p.threads, mx)
	}
	c.pipes[name] = p
	return p, nil
}

// releaseAll releases every pipeline (on the Metal thread, at close).
func (c *pipelineCache) releaseAll() {
	for k, p := range c.pipes {
		p.state.Send(selRelease)
		delete(c.pipes, k)
	}
}
