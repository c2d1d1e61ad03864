package gl

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/go-gl/gl/v4.3-core/gl"

	"lorastudio/shaders"
)

// Limits are the device limits the backend respects, queried at start.
type Limits struct {
	MaxSSBOSize      int    // GL_MAX_SHADER_STORAGE_BLOCK_SIZE: bytes one binding may address
	MaxSSBOBindings  int    // GL_MAX_SHADER_STORAGE_BUFFER_BINDINGS
	SSBOAlign        int    // GL_SHADER_STORAGE_BUFFER_OFFSET_ALIGNMENT
	MaxGroups        [3]int // GL_MAX_COMPUTE_WORK_GROUP_COUNT per dimension
	MaxInvocations   int    // GL_MAX_COMPUTE_WORK_GROUP_INVOCATIONS
	MaxSharedBytes   int    // GL_MAX_COMPUTE_SHARED_MEMORY_SIZE
	Vendor, Renderer string
	Version          string // GL_VERSION
	GLSL             string // GL_SHADING_LANGUAGE_VERSION
	Platform         string // the EGL platform: surfaceless, device or default
	// DeviceMemory is the GPU's memory in bytes as the driver reports it
	// (core GL has no query): GL_NVX_gpu_memory_info's total available
	// memory on NVIDIA, GL_ATI_meminfo's free texture memory at open on AMD;
	// 0 when unknown (no such extension, as on Mesa's llvmpipe).
	DeviceMemory int64
	// DeviceMemoryFree says DeviceMemory is what was free at open (AMD's
	// query) rather than the total.
	DeviceMemoryFree bool
}

// Device is one headless GL context with the thread that owns it, its
// compiled programs and its buffer pool. All GL work goes through Thread.
type Device struct {
	thread   *Thread
	ctx      *eglContext
	limits   Limits
	programs *programCache
	pool     *bufferPool
	gemmReg  bool // GEMM kernels use the register-only variant (CPU rasterizers)
	gemm128  bool // tests: always use the 128x128 shared-memory tiles
	splitK   int  // tests: split K this many ways in every product without bias
	// finish waits (glFinish) for every dispatch before the next GL call.
	// On an NVIDIA H200 (driver 580.159) some multi-op results came out
	// wrong without it — CLIP's concatenated prompt embeddings, NaN
	// pipeline latents, a checkpointed resnet backward — while every op's
	// parity test passed, and extra glMemoryBarrier bits (all bits, before
	// and after each dispatch) did not help; with glFinish every GL golden
	// passed. Until the cause is found it is on; LORASTUDIO_GL_FINISH=0
	// turns it off to look for it.
	finish bool
	// poison (LORASTUDIO_GL_POISON=1) fills every new allocation with NaN, as
	// a real GPU hands out whatever its memory held (llvmpipe's fresh buffers
	// read as zeros): a kernel that reads what no one wrote then fails on
	// any renderer.
	poison bool
	closed atomic.Bool
}

// OpenDevice creates a headless OpenGL 4.3+ context on its own locked thread
// and queries its limits. It fails with a message saying why when no such
// context can be made.
func OpenDevice() (*Device, error) {
	d := &Device{}
	th, err := NewThread(func() error {
		ctx, err := newEGLContext()
		if err != nil {
			return err
		}
		if err := ctx.makeCurrent(); err != nil {
			ctx.destroy()
			return err
		}
		if err := gl.InitWithProcAddrFunc(eglProcAddress); err != nil {
			ctx.destroy()
			return fmt.Errorf("gl: loading OpenGL 4.3 functions: missing %v", err)
		}
		d.ctx = ctx
		return d.queryLimits()
	})
	if err != nil {
		return nil, err
	}
	d.thread = th
	d.gemmReg = chooseGemmReg(d.limits.Renderer, os.Getenv("LORASTUDIO_GL_GEMM"))
	d.finish = os.Getenv("LORASTUDIO_GL_FINISH") != "0"
	d.poison = os.Getenv("LORASTUDIO_GL_POISON") == "1"
	d.programs = newProgramCache()
	d.pool = newBufferPool(d)
	return d, nil
}

// queryLimits fills d.limits; it runs on the GL thread.
func (d *Device) queryLimits() error {
	geti := func(e uint32) int {
		var v int32
		gl.GetIntegerv(e, &v)
		return int(v)
	}
	l := Limits{
		MaxSSBOSize:     geti(gl.MAX_SHADER_STORAGE_BLOCK_SIZE),
		MaxSSBOBindings: geti(gl.MAX_SHADER_STORAGE_BUFFER_BINDINGS),
		SSBOAlign:       geti(gl.SHADER_STORAGE_BUFFER_OFFSET_ALIGNMENT),
		MaxInvocations:  geti(gl.MAX_COMPUTE_WORK_GROUP_INVOCATIONS),
		MaxSharedBytes:  geti(gl.MAX_COMPUTE_SHARED_MEMORY_SIZE),
		Vendor:          gl.GoStr(gl.GetString(gl.VENDOR)),
		Renderer:        gl.GoStr(gl.GetString(gl.RENDERER)),
		Version:         gl.GoStr(gl.GetString(gl.VERSION)),
		GLSL:            gl.GoStr(gl.GetString(gl.SHADING_LANGUAGE_VERSION)),
		Platform:        d.ctx.platform,
	}
	for i := range 3 {
		var v int32
		gl.GetIntegeri_v(gl.MAX_COMPUTE_WORK_GROUP_COUNT, uint32(i), &v)
		l.MaxGroups[i] = int(v)
	}
	if e := gl.GetError(); e != gl.NO_ERROR {
		return fmt.Errorf("gl: querying limits: GL error 0x%x", e)
	}
	var maj, min int32
	gl.GetIntegerv(gl.MAJOR_VERSION, &maj)
	gl.GetIntegerv(gl.MINOR_VERSION, &min)
	if maj < 4 || (maj == 4 && min < 3) {
		return fmt.Errorf("gl: context is OpenGL %d.%d (%s); compute shaders need 4.3", maj, min, l.Renderer)
	}
	if l.MaxSSBOSize <= 0 || l.MaxGroups[0] <= 0 {
		return fmt.Errorf("gl: %s reports no compute support", l.Renderer)
	}
	// The signed query saturates at 2 GiB - 1 on drivers that allow more.
	if l.MaxSSBOSize < 0 {
		l.MaxSSBOSize = 1<<31 - 1
	}
	if l.SSBOAlign <= 0 {
		l.SSBOAlign = 256
	}
	l.DeviceMemory, l.DeviceMemoryFree = queryDeviceMemory()
	d.limits = l
	return nil
}

// The vendor memory queries (not in core GL, so not in go-gl's constants).
const (
	gpuMemoryInfoTotalAvailableNVX = 0x9048 // GL_GPU_MEMORY_INFO_TOTAL_AVAILABLE_MEMORY_NVX: KiB
	textureFreeMemoryATI           = 0x87FC // GL_TEXTURE_FREE_MEMORY_ATI: 4 ints, [0] the pool's free KiB
)

// memoryQuery picks the vendor query for the device's memory from the
// context's extensions: the enum to read with glGetIntegerv and whether it
// reports free (AMD) rather than total (NVIDIA) memory; ok is false when
// neither extension is there.
func memoryQuery(extensions []string) (enum uint32, free, ok bool) {
	has := func(name string) bool {
		for _, e := range extensions {
			if strings.TrimSpace(e) == name {
				return true
			}
		}
		return false
	}
	switch {
	case has("GL_NVX_gpu_memory_info"):
		return gpuMemoryInfoTotalAvailableNVX, false, true
	case has("GL_ATI_meminfo"):
		return textureFreeMemoryATI, true, true
	}
	return 0, false, false
}

// queryDeviceMemory asks the driver for the GPU's memory in bytes when an
// extension offers it (memoryQuery); 0 when none does or the query fails, so
// an unknown size never fails opening the device. It runs on the GL thread.
func queryDeviceMemory() (bytes int64, free bool) {
	var n int32
	gl.GetIntegerv(gl.NUM_EXTENSIONS, &n)
	exts := make([]string, 0, max(n, 0))
	for i := range max(n, 0) {
		if p := gl.GetStringi(gl.EXTENSIONS, uint32(i)); p != nil {
			exts = append(exts, gl.GoStr(p))
		}
	}
	enum, free, ok := memoryQuery(exts)
	if !ok {
		gl.GetError() // clear anything the extension listing raised
		return 0, false
	}
	// ATI's query writes four values; NVX's one. Room for four either way.
	var v [4]int32
	gl.GetIntegerv(enum, &v[0])
	if gl.GetError() != gl.NO_ERROR || v[0] <= 0 {
		return 0, false
	}
	return int64(v[0]) << 10, free
}

// Limits returns the limits queried when the device was opened.
func (d *Device) Limits() Limits { return d.limits }

// Renderer returns a one-line description: "renderer, OpenGL version".
func (d *Device) Renderer() string {
	return fmt.Sprintf("%s, OpenGL %s", d.limits.Renderer, strings.TrimSpace(d.limits.Version))
}

// Thread returns the thread that owns the device's context.
func (d *Device) Thread() *Thread { return d.thread }

// Close deletes every program and buffer, releases the context and stops
// the thread. The device must not be used afterwards.
// Tensors freed later only update the accounting.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.thread.Stop(func() {
		d.programs.deleteAll()
		d.pool.deleteAll()
		d.ctx.destroy()
	})
}

// chooseGemmReg picks the GEMM variant: the register-only one on CPU
// rasterizers (llvmpipe, softpipe), where barriers are costly, the
// shared-memory tiles elsewhere. env ("reg" or "shared", from
// $LORASTUDIO_GL_GEMM) overrides.
func chooseGemmReg(renderer, env string) bool {
	switch env {
	case "reg":
		return true
	case "shared":
		return false
	}
	r := strings.ToLower(renderer)
	return strings.Contains(r, "llvmpipe") || strings.Contains(r, "softpipe")
}

// gemmConfig returns the defines of the GEMM variant for an (m, n) product
// over batch, and its tile size (see common/gemm.glsl). allowReg is false
// for the convolutions, which always stage their gathered operand.
func (d *Device) gemmConfig(defs map[string]string, m, n, batch int, allowReg bool) (map[string]string, int) {
	switch {
	case allowReg && d.gemmReg:
		// 8x8 blocks: 9 GFLOP/s on llvmpipe (2 cores) for 1024x640x640,
		// twice the 4x4 blocks' 4.6 measured in the same minute.
		return shaders.GemmDefines(defs, shaders.GemmReg)
	case d.gemm128 || (!d.gemmReg && ((m+127)/128)*((n+127)/128)*batch >= 64):
		// Enough 128x128 tiles to fill a GPU: 8x8 register blocks.
		return shaders.GemmDefines(defs, shaders.Gemm128)
	}
	return shaders.GemmDefines(defs, shaders.Gemm64)
}
