package device

import (
	"os"
	"strings"
	"testing"
)

// TestAutoAndMetal: on macOS auto takes Metal exactly when a Metal device
// opens, and says why not otherwise; "gl" is not a device here (macOS has
// no OpenGL compute). With LORASTUDIO_REQUIRE_METAL=1 Metal must open.
func TestAutoAndMetal(t *testing.T) {
	inf, err := Describe("auto")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("auto: %+v", inf)
	mInf, mErr := Describe("metal")
	switch {
	case mErr == nil && inf.Backend != "metal":
		t.Fatalf("Metal opens on %q but auto chose %q", mInf.Renderer, inf.Backend)
	case mErr != nil && (inf.Backend != "cpu" || inf.Fallback == ""):
		t.Fatalf("Metal fails (%v) but auto gave %+v", mErr, inf)
	case mErr != nil && os.Getenv("LORASTUDIO_REQUIRE_METAL") == "1":
		t.Fatalf("LORASTUDIO_REQUIRE_METAL=1 but no Metal device: %v", mErr)
	}
	if mErr == nil && (mInf.Renderer == "" || mInf.WorkingSet <= 0 || mInf.MaxSSBOBinding <= 0) {
		t.Fatalf("Metal info incomplete: %+v", mInf)
	}
	if _, err := Open("gl"); err == nil || !strings.Contains(err.Error(), "metal") {
		t.Fatalf("Open(gl) on macOS: %v, want an unknown-device error listing metal", err)
	}
}
