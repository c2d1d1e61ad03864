package device

import (
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
