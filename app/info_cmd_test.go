package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestInfoDeviceJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if err := infoCommand([]string{"--device", "--json"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	backend, _ := m["backend"].(string)
	renderer, _ := m["renderer"].(string)
	if (backend != "gl" && backend != "cpu") || renderer == "" {
		t.Fatalf("backend %q renderer %q in %s", backend, renderer, out.String())
	}
	if os.Getenv("LORASTUDIO_REQUIRE_GL") == "1" && backend != "gl" {
		t.Fatalf("LORASTUDIO_REQUIRE_GL=1 but info chose %q: %v", backend, m["fallback"])
	}
	if backend == "gl" && m["max_ssbo_binding"] == nil {
		t.Fatalf("gl info without max_ssbo_binding: %s", out.String())
	}
}

func TestInfoDeviceCPUText(t *testing.T) {
	var out, errb bytes.Buffer
	if err := infoCommand([]string{"--device", "--backend", "cpu"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "backend:") || !strings.Contains(out.String(), "cpu") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestInfoUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"model.safetensors"}, {"--device", "--backend", "vulkan"}, {"--frobnicate"}} {
		var out, errb bytes.Buffer
		err := infoCommand(args, &out, &errb)
		if !errors.Is(err, errUsage) {
			t.Errorf("info %v: %v, want a usage error", args, err)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"info"}, &out, &errb); code != exitUsage {
		t.Errorf("lorastudio info exits %d, want %d (stderr %q)", code, exitUsage, errb.String())
	}
}
