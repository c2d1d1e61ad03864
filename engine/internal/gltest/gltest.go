// Package gltest opens the GL compute backend for tests, with the project's
// one rule: without a GL 4.3 context a test skips, unless
// LORASTUDIO_REQUIRE_GL=1 (set in CI), where it fails. GL tests never skip
// silently where a context is required.
package gltest

import (
	"os"
	"testing"

	"lorastudio/engine/device"
	"lorastudio/engine/tensor"
)

// Required reports whether a missing GL context must fail the test.
func Required() bool { return os.Getenv("LORASTUDIO_REQUIRE_GL") == "1" }

// Backend returns a GL backend closed when the test ends, or skips/fails the
// test when no GL 4.3 context can be made.
func Backend(t testing.TB) tensor.Backend {
	t.Helper()
	b, err := device.Open("gl")
	if err != nil {
		if Required() {
			t.Fatalf("LORASTUDIO_REQUIRE_GL=1 but no GL 4.3 context: %v", err)
		}
		t.Skipf("no GL 4.3 context (set LORASTUDIO_REQUIRE_GL=1 to fail instead): %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
