package gl

import (
	"testing"

	"github.com/go-gl/gl/v4.3-core/gl"
)

// TestMemoryQuery checks that the vendor memory query is chosen from the
// extension list: NVIDIA's total, AMD's free texture memory, none otherwise.
func TestMemoryQuery(t *testing.T) {
	cases := []struct {
		exts     []string
		enum     uint32
		free, ok bool
	}{
		{[]string{"GL_ARB_compute_shader", "GL_NVX_gpu_memory_info", "GL_KHR_debug"}, gpuMemoryInfoTotalAvailableNVX, false, true},
		{[]string{"GL_ATI_meminfo", "GL_ARB_compute_shader"}, textureFreeMemoryATI, true, true},
		{[]string{"GL_ATI_meminfo", "GL_NVX_gpu_memory_info"}, gpuMemoryInfoTotalAvailableNVX, false, true},
		{[]string{"GL_ARB_compute_shader", "GL_NVX_gpu_memory_info_extra", "GL_ATI_meminfo2"}, 0, false, false},
		{nil, 0, false, false},
	}
	for _, c := range cases {
		enum, free, ok := memoryQuery(c.exts)
		if enum != c.enum || free != c.free || ok != c.ok {
			t.Errorf("%v: enum 0x%x free %v ok %v, want 0x%x %v %v", c.exts, enum, free, ok, c.enum, c.free, c.ok)
		}
	}
}

// TestDeviceMemory opens a real context: the memory is known exactly when
// the driver lists a vendor memory extension, and opening never fails for
// its absence (Mesa's llvmpipe has none: 0, unknown).
func TestDeviceMemory(t *testing.T) {
	d := newTestBackend(t).Dev()
	var exts []string
	if err := d.thread.Call(func() error {
		var n int32
		gl.GetIntegerv(gl.NUM_EXTENSIONS, &n)
		for i := range n {
			exts = append(exts, gl.GoStr(gl.GetStringi(gl.EXTENSIONS, uint32(i))))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	l := d.Limits()
	_, free, ok := memoryQuery(exts)
	if !ok {
		if l.DeviceMemory != 0 {
			t.Fatalf("%s lists no memory extension but reports %d bytes", l.Renderer, l.DeviceMemory)
		}
		return
	}
	if l.DeviceMemory <= 0 || l.DeviceMemory%1024 != 0 || l.DeviceMemoryFree != free {
		t.Fatalf("%s: device memory %d bytes (free %v), want a positive KiB count (free %v)", l.Renderer, l.DeviceMemory, l.DeviceMemoryFree, free)
	}
	t.Logf("%s: %d MiB", l.Renderer, l.DeviceMemory>>20)
}
