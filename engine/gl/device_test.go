package gl

import (
	"strings"
	"testing"
	"unsafe"
)

func TestDeviceLimits(t *testing.T) {
	d := device(t)
	l := d.Limits()
	t.Logf("renderer %q, GL %s, GLSL %s, platform %s, max SSBO %d MiB, shared %d KiB, groups %v",
		l.Renderer, l.Version, l.GLSL, l.Platform, l.MaxSSBOSize>>20, l.MaxSharedBytes>>10, l.MaxGroups)
	if l.Renderer == "" || l.MaxSSBOSize < 1<<24 || l.MaxGroups[0] < 65535 || l.MaxSharedBytes < 16384 {
		t.Fatalf("implausible limits: %+v", l)
	}
}

// TestAddKernel runs the trivial add kernel over a length that needs a
// partial last work group.
func TestAddKernel(t *testing.T) {
	d := device(t)
	const n = 1000
	a, b := make([]float32, n), make([]float32, n)
	for i := range a {
		a[i] = float32(i)
		b[i] = float32(2*i) + 0.5
	}
	out := make([]float32, n)
	err := d.thread.Call(func() error {
		ba, err := d.pool.alloc(4 * n)
		if err != nil {
			return err
		}
		bb, _ := d.pool.alloc(4 * n)
		bo, _ := d.pool.alloc(4 * n)
		defer func() { d.pool.release(ba); d.pool.release(bb); d.pool.release(bo) }()
		upload(ba, unsafe.Pointer(&a[0]), 4*n)
		upload(bb, unsafe.Pointer(&b[0]), 4*n)
		if err := d.run(launch{kernel: "add", bufs: []*buffer{ba, bb, bo}, p: []int32{n}, groups: d.grid1D(n, 256)}); err != nil {
			return err
		}
		download(bo, unsafe.Pointer(&out[0]), 4*n)
		return glError("add test")
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if want := a[i] + b[i]; out[i] != want {
			t.Fatalf("out[%d] = %v, want %v", i, out[i], want)
		}
	}
}

// TestCompileErrorNamesKernel feeds a kernel with a syntax error through the
// program cache and expects an error with the kernel name and the info log.
func TestCompileErrorNamesKernel(t *testing.T) {
	d := device(t)
	err := d.thread.Call(func() error {
		c := newProgramCache()
		c.source = func(name string) (string, error) {
			return "layout(local_size_x = 1) in;\nvoid main() { float x = ; }\n", nil
		}
		_, err := c.get("broken_kernel", nil)
		return err
	})
	if err == nil {
		t.Fatal("a kernel with a syntax error compiled")
	}
	if !strings.Contains(err.Error(), "broken_kernel") || !strings.Contains(err.Error(), "compile error") {
		t.Fatalf("error does not name the kernel: %v", err)
	}
	t.Log(err)
	// A kernel that does not exist is an error too.
	err = d.thread.Call(func() error { _, err := d.programs.get("no_such_kernel", nil); return err })
	if err == nil || !strings.Contains(err.Error(), "no_such_kernel") {
		t.Fatalf("missing kernel: %v", err)
	}
}

func TestThreadAsyncErrorAtSync(t *testing.T) {
	d := device(t)
	d.thread.CallAsync(func() error { return errTest })
	if err := d.thread.Sync(); err != errTest {
		t.Fatalf("Sync returned %v, want the async error", err)
	}
	if err := d.thread.Sync(); err != nil {
		t.Fatalf("the async error was returned twice: %v", err)
	}
}

type testErr struct{}

func (testErr) Error() string { return "test error" }

var errTest error = testErr{}

func TestSizeClass(t *testing.T) {
	for _, c := range []struct{ n, want int }{{1, 256}, {256, 256}, {257, 320}, {1000, 1024}, {1025, 1280}, {4 << 20, 4 << 20}, {4<<20 + 1, 5 << 20}} {
		if got := sizeClass(c.n); got != c.want {
			t.Errorf("sizeClass(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}
