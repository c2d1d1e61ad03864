package device

import (
	"os"
	"strings"
	"testing"
)

func TestOpenCPU(t *testing.T) {
	b, err := Open("cpu")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != "cpu" {
		t.Fatalf("Open(cpu) gave %q", b.Name())
	}
}

func TestOpenUnknown(t *testing.T) {
	if _, err := Open("vulkan"); err == nil || !strings.Contains(err.Error(), "vulkan") {
		t.Fatalf("Open(vulkan): %v", err)
	}
}

// TestAutoAndGL: auto takes GL exactly when a GL context can be made; with
// LORASTUDIO_REQUIRE_GL=1 it must.
func TestAutoAndGL(t *testing.T) {
	inf, err := Describe("auto")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("auto: %+v", inf)
	g, glErr := Open("gl")
	if glErr == nil {
		g.Close()
	}
	switch {
	case glErr == nil && inf.Backend != "gl":
		t.Fatalf("GL opens but auto chose %q", inf.Backend)
	case glErr != nil && (inf.Backend != "cpu" || inf.Fallback == ""):
		t.Fatalf("GL fails (%v) but auto gave %+v", glErr, inf)
	case glErr != nil && os.Getenv("LORASTUDIO_REQUIRE_GL") == "1":
		t.Fatalf("LORASTUDIO_REQUIRE_GL=1 but no GL context: %v", glErr)
	}
	if inf.Backend == "gl" && (inf.Renderer == "" || inf.MaxSSBOBinding <= 0 || inf.Version == "") {
		t.Fatalf("GL info incomplete: %+v", inf)
	}
}

func TestEnvDefault(t *testing.T) {
	t.Setenv(EnvVar, "cpu")
	b, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() != "cpu" {
		t.Fatalf("Open(\"\") with %s=cpu gave %q", EnvVar, b.Name())
	}
}
