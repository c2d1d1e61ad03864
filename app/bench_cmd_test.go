package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"lorastudio/engine/bench"
)

func TestBenchOpsJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if err := benchCommand([]string{"ops", "--device", "cpu", "--json", "--only", "groupnorm", "--min-time", "1ms"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out.String())
	}
	if len(rows) != 1 {
		t.Fatalf("want one groupnorm row, got %s", out.String())
	}
	r := rows[0]
	for _, k := range []string{"op", "shape", "device", "ms", "gflops", "gbps"} {
		if _, ok := r[k]; !ok {
			t.Errorf("row lacks %q: %v", k, r)
		}
	}
	if r["op"] != "groupnorm" || r["device"] != "cpu" || r["shape"] != "1x320x128x128/32" {
		t.Fatalf("row %v", r)
	}
	if ms, _ := r["ms"].(float64); ms <= 0 {
		t.Fatalf("ms %v", r["ms"])
	}
}

func TestBenchOpsTable(t *testing.T) {
	var out, errb bytes.Buffer
	if err := benchCommand([]string{"ops", "--device=cpu", "--only=groupnorm", "--min-time=1ms"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, w := range []string{"device: cpu", "GFLOP/s", "groupnorm", "1x320x128x128/32"} {
		if !strings.Contains(s, w) {
			t.Errorf("table lacks %q:\n%s", w, s)
		}
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"kernels"},
		{"ops", "--device", "vulkan"},
		{"ops", "--min-time", "soon"},
		{"ops", "--only", "("},
		{"ops", "--device"},
		{"ops", "--bogus"},
	} {
		var out, errb bytes.Buffer
		err := benchCommand(args, &out, &errb)
		if !errors.Is(err, errUsage) {
			t.Errorf("bench %q: %v, want a usage error", args, err)
		}
	}
}

func TestPrintRatios(t *testing.T) {
	var out bytes.Buffer
	printRatios(&out, []bench.Result{
		{Op: "matmul", Shape: "4096x1280x1280", Device: "blas", GFlops: 80},
		{Op: "matmul", Shape: "4096x1280x1280", Device: "cpu", GFlops: 60},
	})
	if !strings.Contains(out.String(), "ratio matmul 4096x1280x1280 cpu / blas: 0.75") {
		t.Fatalf("ratios:\n%s", out.String())
	}
}
