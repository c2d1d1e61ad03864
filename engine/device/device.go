// Package device picks the compute backend: on Linux and Windows the OpenGL
// compute backend when a headless OpenGL 4.3 context with compute shaders
// can be made on a GPU, on macOS the Metal backend (macOS has no OpenGL
// compute), else the pure-Go CPU reference. The GPU backend of each OS is
// in its own file (gl.go, metal_darwin.go), so the package builds on every
// OS.
package device

import (
	"fmt"
	"os"
	"strings"

	"lorastudio/engine/cpu"
	"lorastudio/engine/tensor"
)

// Kinds are the accepted values of Open's kind: auto, cpu and this OS's
// GPU backend (gl, or metal on macOS).
var Kinds = []string{"auto", "cpu", gpuKind}

// EnvVar names the environment variable that Open reads when kind is "".
const EnvVar = "LORASTUDIO_DEVICE"

// Open returns the backend for kind: "cpu", "gl" (an error saying why when
// no GL 4.3 context can be made), "metal" on macOS, or "auto" (the GPU
// backend when a GPU gives it, else CPU). An empty kind reads
// $LORASTUDIO_DEVICE, defaulting to "auto".
//
// auto passes over a software GL renderer (Mesa's llvmpipe and the like):
// it runs the kernels correctly but tens of times slower than the CPU
// backend on the same cores. "gl" still takes it (the tests do).
func Open(kind string) (tensor.Backend, error) {
	b, _, err := open(kind)
	return b, err
}

// resolve applies the default and validates kind.
func resolve(kind string) (string, error) {
	if kind == "" {
		kind = os.Getenv(EnvVar)
	}
	kind = strings.ToLower(strings.TrimSpace(kind))
	if kind == "" {
		kind = "auto"
	}
	for _, k := range Kinds {
		if kind == k {
			return kind, nil
		}
	}
	return "", fmt.Errorf("device: unknown device %q (want %s)", kind, strings.Join(Kinds, ", "))
}

// open is Open that also returns, for auto, why GL was not taken.
func open(kind string) (tensor.Backend, string, error) {
	k, err := resolve(kind)
	if err != nil {
		return nil, "", err
	}
	switch k {
	case "cpu":
		return cpu.New(), "", nil
	case gpuKind:
		b, err := openGPU()
		if err != nil {
			return nil, "", fmt.Errorf("device %s: %w", k, err)
		}
		return b, "", nil
	}
	return openAuto()
}

// IsSoftwareRenderer reports whether a GL_RENDERER string names a renderer
// that runs on the CPU: Mesa's llvmpipe, softpipe and swrast, or lavapipe.
func IsSoftwareRenderer(renderer string) bool {
	r := strings.ToLower(renderer)
	for _, s := range []string{"llvmpipe", "softpipe", "swrast", "lavapipe", "software rasterizer"} {
		if strings.Contains(r, s) {
			return true
		}
	}
	return false
}

// Info describes a backend and, for GL, the context's limits, for Metal
// the GPU's memory.
type Info struct {
	Backend        string `json:"backend"`                    // "gl", "metal" or "cpu"
	Renderer       string `json:"renderer"`                   // the GL renderer, the Metal GPU, or the CPU description
	Version        string `json:"version,omitempty"`          // GL_VERSION
	GLSL           string `json:"glsl,omitempty"`             // GL_SHADING_LANGUAGE_VERSION
	Vendor         string `json:"vendor,omitempty"`           // GL_VENDOR
	Platform       string `json:"platform,omitempty"`         // EGL platform: surfaceless, device or default
	MaxSSBOBinding int    `json:"max_ssbo_binding,omitempty"` // bytes one shader storage binding may address
	MaxShared      int    `json:"max_shared_memory,omitempty"`
	MaxWorkGroups  [3]int `json:"max_work_groups,omitempty"`
	Fallback       string `json:"fallback,omitempty"` // why auto did not take the GPU backend
	// WorkingSet is Metal's recommendedMaxWorkingSetSize: the bytes the GPU
	// can hold without paging (on Apple Silicon, a share of the unified memory).
	WorkingSet int64 `json:"recommended_working_set,omitempty"`
	// DeviceMemory is the GL device's memory in bytes as its driver reports
	// it (gl.Limits.DeviceMemory: NVIDIA's total, AMD's free at open); 0 when
	// unknown (no vendor extension, as on llvmpipe).
	DeviceMemory int64 `json:"device_memory,omitempty"`
	// DeviceMemoryFree says DeviceMemory is the free memory at open, not the total.
	DeviceMemoryFree bool `json:"device_memory_free,omitempty"`
	// UnifiedMemory is whether the Metal GPU shares the CPU's memory.
	UnifiedMemory bool `json:"unified_memory,omitempty"`
}

// Describe opens the backend kind would give (see Open), describes it and
// closes it again.
func Describe(kind string) (Info, error) {
	b, why, err := open(kind)
	if err != nil {
		return Info{}, err
	}
	defer b.Close()
	return describe(b, why), nil
}

// describe fills Info from an open backend.
func describe(b tensor.Backend, why string) Info {
	inf := Info{Backend: b.Name(), Renderer: b.Device(), Fallback: why}
	describeGPU(b, &inf)
	return inf
}
