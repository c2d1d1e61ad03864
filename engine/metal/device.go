//go:build darwin

package metal

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/ebitengine/purego/objc"

	"lorastudio/shaders"
)

// Limits are the device limits the backend respects, queried at start. The
// field names are engine/gl's, so the op files shared with it read them.
type Limits struct {
	MaxSSBOSize    int    // bytes one buffer binding may address: maxBufferLength, capped at 2 GiB - 1 (the kernels' int32 counts)
	SSBOAlign      int    // byte alignment of a binding's offset when a launch runs in ranges
	MaxGroups      [3]int // threadgroups per grid dimension the launches tile to (as on GL)
	MaxSharedBytes int    // threadgroup memory a kernel may use (the generated tiles assume 32 KiB)
	Renderer       string // the GPU's name (MTLDevice.name)
	WorkingSet     int64  // recommendedMaxWorkingSetSize: bytes the GPU can use without paging
	MaxBuffer      int64  // maxBufferLength
	Unified        bool   // hasUnifiedMemory
}

// Device is the system's default Metal GPU with its command queue, the
// pipelines built so far and the buffer pool. All Metal work goes through
// its thread.
type Device struct {
	thread    *thread
	dev       objc.ID // id<MTLDevice>
	queue     objc.ID // id<MTLCommandQueue>
	limits    Limits
	pipelines *pipelineCache
	pool      *bufferPool
	enc       encoder
	gemmReg   bool // never: the register-only GEMM is for CPU rasterizers
	gemm128   bool // tests: always use the 128x128 shared-memory tiles
	splitK    int  // tests: split K this many ways in every product without bias
	closed    atomic.Bool
}

// OpenDevice opens the system's default Metal device. It fails, saying
// why, when there is none (a Mac without Metal, or not macOS 10.13+).
func OpenDevice() (*Device, error) {
	if err := load(); err != nil {
		return nil, err
	}
	d := &Device{thread: newThread()}
	err := d.thread.call(func() error {
		d.dev = mtlCreateSystemDefaultDevice()
		if d.dev == 0 {
			return fmt.Errorf("metal: MTLCreateSystemDefaultDevice returned no device")
		}
		d.queue = d.dev.Send(selNewCommandQueue)
		if d.queue == 0 {
			d.dev.Send(selRelease)
			return fmt.Errorf("metal: %s: newCommandQueue failed", goString(d.dev.Send(selName)))
		}
		maxBuf := objc.Send[uint64](d.dev, selMaxBufferLength)
		shared := int(objc.Send[uint64](d.dev, selMaxThreadgroupMemory))
		d.limits = Limits{
			MaxSSBOSize:    int(min(maxBuf, 1<<31-1)),
			SSBOAlign:      256,
			MaxGroups:      [3]int{65535, 65535, 65535},
			MaxSharedBytes: min(shared, shaders.MetalSharedBytes),
			Renderer:       goString(d.dev.Send(selName)),
			WorkingSet:     int64(objc.Send[uint64](d.dev, selRecommendedWorkingSet)),
			MaxBuffer:      int64(maxBuf),
			Unified:        objc.Send[bool](d.dev, selHasUnifiedMemory),
		}
		if shared < shaders.MetalSharedBytes {
			return fmt.Errorf("metal: %s gives kernels %d bytes of threadgroup memory; the generated kernels need %d", d.limits.Renderer, shared, shaders.MetalSharedBytes)
		}
		return nil
	})
	if err != nil {
		d.thread.close(func() error { return nil })
		return nil, err
	}
	d.pipelines = newPipelineCache(d)
	d.pool = newBufferPool(d)
	return d, nil
}

// Limits returns the limits queried when the device was opened.
func (d *Device) Limits() Limits { return d.limits }

// Renderer returns a one-line description: "GPU name, Metal".
func (d *Device) Renderer() string {
	mem := ""
	if d.limits.Unified {
		mem = ", unified memory"
	}
	return fmt.Sprintf("%s, Metal%s", strings.TrimSpace(d.limits.Renderer), mem)
}

// Close waits for queued work, releases the pipelines, buffers and queue
// and stops the thread. The device must not be used afterwards.
func (d *Device) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.thread.close(func() error {
		err := d.wait()
		d.pipelines.releaseAll()
		d.pool.trim()
		d.queue.Send(selRelease)
		d.dev.Send(selRelease)
		return err
	})
}

// gemmConfig returns the defines of the GEMM variant for an (m, n) product
// over batch, and its tile size, as engine/gl picks them on a GPU: 128x128
// tiles when there are enough to fill it, else 64x64. allowReg matters
// only with gemmReg, which is never set here (the register-only variant is
// for CPU rasterizers).
func (d *Device) gemmConfig(defs map[string]string, m, n, batch int, allowReg bool) (map[string]string, int) {
	switch {
	case allowReg && d.gemmReg:
		return shaders.GemmDefines(defs, shaders.GemmReg)
	case d.gemm128 || ((m+127)/128)*((n+127)/128)*batch >= 64:
		return shaders.GemmDefines(defs, shaders.Gemm128)
	}
	return shaders.GemmDefines(defs, shaders.Gemm64)
}
