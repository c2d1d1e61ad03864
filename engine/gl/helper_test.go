package gl

import (
	"os"
	"sync"
	"testing"
)

var (
	testDevOnce sync.Once
	testDev     *Device
	testDevErr  error
)

// device returns the package's shared test device. Without a GL 4.3
// context the test skips, unless LORASTUDIO_REQUIRE_GL=1, where it fails
// naming why.
func device(t testing.TB) *Device {
	t.Helper()
	testDevOnce.Do(func() { testDev, testDevErr = OpenDevice() })
	if testDevErr != nil {
		if os.Getenv("LORASTUDIO_REQUIRE_GL") == "1" {
			t.Fatalf("LORASTUDIO_REQUIRE_GL=1 but no GL context: %v", testDevErr)
		}
		t.Skipf("no GL 4.3 context (set LORASTUDIO_REQUIRE_GL=1 to fail instead): %v", testDevErr)
	}
	return testDev
}

// newTestBackend returns a Backend on the shared test device (closed with
// the process, not per test).
func newTestBackend(t testing.TB) *Backend {
	t.Helper()
	return &Backend{dev: device(t)}
}
