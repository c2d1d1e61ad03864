package sdxlbench

import (
	"bytes"
	"strings"
	"testing"

	"lorastudio/engine/cpu"
	"lorastudio/engine/sdxl/demo"
)

// TestTrainTiny times training steps of the demo model's tiny UNet on the
// CPU with and without checkpointing: both measured, checkpointing holding
// less at its peak.
func TestTrainTiny(t *testing.T) {
	cfg := demo.Config()
	b := cpu.New()
	defer b.Close()
	var out bytes.Buffer
	rep, err := Train(b, TrainOptions{Size: 64, Rank: 4, Config: &cfg, Warmup: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if len(rep.Timings) != 2 || !rep.Timings[0].Checkpointing || rep.Timings[1].Checkpointing {
		t.Fatalf("timings %+v: want checkpointing on, then off", rep.Timings)
	}
	for _, tm := range rep.Timings {
		if tm.Seconds <= 0 || tm.GFLOPS <= 0 || tm.DevicePeakBytes <= rep.Load.DeviceInUseBytes || tm.HostPeakBytes <= 0 || tm.Size != 64 || tm.Rank != 4 {
			t.Errorf("timing %+v: want positive time and a peak above the weights (%d bytes)", tm, rep.Load.DeviceInUseBytes)
		}
	}
	if on, off := rep.Timings[0].DevicePeakBytes, rep.Timings[1].DevicePeakBytes; on >= off {
		t.Errorf("device peak %d bytes with checkpointing, %d without", on, off)
	}
	if rep.LoRAParams <= 0 || !strings.Contains(out.String(), "s/step") {
		t.Errorf("LoRA %d values; output:\n%s", rep.LoRAParams, out.String())
	}
	if _, err := Train(b, TrainOptions{Size: 60, Config: &cfg}, nil); err == nil {
		t.Error("a size the UNet cannot halve was accepted")
	}
}
