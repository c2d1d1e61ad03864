//go:build !darwin

package device

import (
	"fmt"

	"lorastudio/engine/cpu"
	"lorastudio/engine/gl"
	"lorastudio/engine/tensor"
)

// gpuKind is the GPU backend of this OS.
const gpuKind = "gl"

// openGPU opens the GL compute backend.
func openGPU() (tensor.Backend, error) {
	b, err := gl.New()
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return b, nil
}

// openAuto is auto on Linux and Windows: GL on a hardware renderer, else
// the CPU with the reason.
//
// auto passes over a software GL renderer (Mesa's llvmpipe and the like):
// it runs the kernels correctly but tens of times slower than the CPU
// backend on the same cores. "gl" still takes it (the tests do).
func openAuto() (tensor.Backend, string, error) {
	b, err := gl.New()
	if err != nil {
		return cpu.New(), err.Error(), nil
	}
	if r := b.Dev().Limits().Renderer; IsSoftwareRenderer(r) {
		b.Close()
		return cpu.New(), fmt.Sprintf("GL renderer %q is a software renderer, slower than the CPU backend (--device gl forces it)", r), nil
	}
	return b, "", nil
}

// describeGPU adds the GL context's limits to inf.
func describeGPU(b tensor.Backend, inf *Info) {
	g, ok := b.(*gl.Backend)
	if !ok {
		return
	}
	l := g.Dev().Limits()
	inf.Renderer = l.Renderer
	inf.Version = l.Version
	inf.GLSL = l.GLSL
	inf.Vendor = l.Vendor
	inf.Platform = l.Platform
	inf.MaxSSBOBinding = l.MaxSSBOSize
	inf.MaxShared = l.MaxSharedBytes
	inf.MaxWorkGroups = l.MaxGroups
	inf.DeviceMemory, inf.DeviceMemoryFree = l.DeviceMemory, l.DeviceMemoryFree
}
