//go:build !darwin

package device

import (
	"os"
	"strings"
	"testing"
)

// TestAutoAndGL: auto takes GL exactly when a GL context can be made on a
// hardware renderer, and says why not otherwise; with LORASTUDIO_REQUIRE_GL=1
// a GL context must be made.
func TestAutoAndGL(t *testing.T) {
	inf, err := Describe("auto")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("auto: %+v", inf)
	glInf, glErr := Describe("gl")
	software := glErr == nil && IsSoftwareRenderer(glInf.Renderer)
	switch {
	case glErr == nil && !software && inf.Backend != "gl":
		t.Fatalf("GL opens on %q but auto chose %q", glInf.Renderer, inf.Backend)
	case software && (inf.Backend != "cpu" || !strings.Contains(inf.Fallback, glInf.Renderer)):
		t.Fatalf("GL is the software renderer %q, but auto gave %+v", glInf.Renderer, inf)
	case glErr != nil && (inf.Backend != "cpu" || inf.Fallback == ""):
		t.Fatalf("GL fails (%v) but auto gave %+v", glErr, inf)
	case glErr != nil && os.Getenv("LORASTUDIO_REQUIRE_GL") == "1":
		t.Fatalf("LORASTUDIO_REQUIRE_GL=1 but no GL context: %v", glErr)
	}
	if inf.Backend == "gl" && (inf.Renderer == "" || inf.MaxSSBOBinding <= 0 || inf.Version == "") {
		t.Fatalf("GL info incomplete: %+v", inf)
	}
	// The device memory is the GL context's (0 where its driver has no
	// memory extension, as llvmpipe), never an error.
	if glErr == nil {
		if glInf.DeviceMemory < 0 || (glInf.DeviceMemory == 0 && glInf.DeviceMemoryFree) {
			t.Fatalf("GL device memory %d (free %v)", glInf.DeviceMemory, glInf.DeviceMemoryFree)
		}
		if IsSoftwareRenderer(glInf.Renderer) && strings.Contains(glInf.Renderer, "llvmpipe") && glInf.DeviceMemory != 0 {
			t.Fatalf("llvmpipe has no memory extension, yet reports %d bytes", glInf.DeviceMemory)
		}
	}
}
