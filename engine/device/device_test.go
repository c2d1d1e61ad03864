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

func TestIsSoftwareRenderer(t *testing.T) {
	for r, want := range map[string]bool{
		"llvmpipe (LLVM 15.0.6, 256 bits)":          true,
		"softpipe":                                  true,
		"Mesa X11 / swrast":                         true,
		"NVIDIA H100 80GB HBM3/PCIe/SSE2":           false,
		"AMD Radeon RX 7900 XTX (radeonsi, navi31)": false,
		"Mesa Intel(R) UHD Graphics 620 (KBL GT2)":  false,
	} {
		if got := IsSoftwareRenderer(r); got != want {
			t.Errorf("IsSoftwareRenderer(%q) = %v, want %v", r, got, want)
		}
	}
}
