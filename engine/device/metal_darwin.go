package device

import (
	"lorastudio/engine/cpu"
	"lorastudio/engine/metal"
	"lorastudio/engine/tensor"
)

// gpuKind is the GPU backend of this OS: macOS has no OpenGL compute (its
// OpenGL stops at 4.1), so the kernels run through Metal.
const gpuKind = "metal"

// openGPU opens the Metal backend.
func openGPU() (tensor.Backend, error) {
	b, err := metal.New()
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return b, nil
}

// openAuto is auto on macOS: Metal when the Mac has a Metal device, else
// the CPU with the reason.
func openAuto() (tensor.Backend, string, error) {
	b, err := metal.New()
	if err != nil {
		return cpu.New(), err.Error(), nil
	}
	return b, "", nil
}

// describeGPU adds the Metal GPU's limits to inf.
func describeGPU(b tensor.Backend, inf *Info) {
	m, ok := b.(*metal.Backend)
	if !ok {
		return
	}
	l := m.Dev().Limits()
	inf.Renderer = l.Renderer
	inf.MaxSSBOBinding = l.MaxSSBOSize
	inf.MaxShared = l.MaxSharedBytes
	inf.MaxWorkGroups = l.MaxGroups
	inf.WorkingSet = l.WorkingSet
	inf.UnifiedMemory = l.Unified
}
