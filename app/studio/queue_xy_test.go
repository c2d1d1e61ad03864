package studio

import (
	"errors"
	"image"
	"image/color"
	"testing"
	"time"
)

func TestXYRequests(t *testing.T) {
	base := DefaultGenerateRequest()
	base.Width, base.Height, base.Out = 64, 64, "/o/x.png"
	base.LoRAs = []LoRASpec{{Path: "/l/a.safetensors", Weight: 1}, {Path: "/l/b.safetensors", Weight: 1}}
	x := XYAxis{Param: "CFG", Values: ParseXYValues(" 3, 5.5 ,, 7")}
	y := XYAxis{Param: "LoRA weight", Values: ParseXYValues("0,0.5")}
	reqs, err := XYRequests(base, x, y)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 6 {
		t.Fatalf("%d requests", len(reqs))
	}
	seed := *reqs[0].Seed
	for i, r := range reqs {
		wantCFG := []float64{3, 5.5, 7}[i%3]
		wantW := []float32{0, 0.5}[i/3]
		if r.CFG != wantCFG || r.LoRAs[0].Weight != wantW || r.LoRAs[1].Weight != wantW || *r.Seed != seed {
			t.Errorf("cell %d: CFG %v weights %v seed %d", i, r.CFG, r.LoRAs, *r.Seed)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("cell %d: %v", i, err)
		}
	}
	if base.LoRAs[0].Weight != 1 {
		t.Error("the base request's LoRAs were changed")
	}
	for name, c := range map[string][2]XYAxis{
		"same parameter": {{Param: "CFG", Values: []string{"1"}}, {Param: "CFG", Values: []string{"2"}}},
		"no values":      {{Param: "CFG"}, {Param: "Steps", Values: []string{"2"}}},
		"bad number":     {{Param: "Steps", Values: []string{"many"}}, {Param: "CFG", Values: []string{"2"}}},
		"unknown":        {{Param: "Scheduler", Values: []string{"x"}}, {Param: "CFG", Values: []string{"2"}}},
		"too many":       {{Param: "Seed", Values: make([]string, 9)}, {Param: "CFG", Values: make([]string, 8)}},
	} {
		if _, err := XYRequests(base, c[0], c[1]); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	noLoRA := base
	noLoRA.LoRAs = nil
	if _, err := XYRequests(noLoRA, XYAxis{Param: "LoRA weight", Values: []string{"1"}}, y); err == nil {
		t.Error("a LoRA weight axis without a LoRA was accepted")
	}
}

func TestComposeXYGrid(t *testing.T) {
	x := XYAxis{Param: "Seed", Values: []string{"1", "2"}}
	y := XYAxis{Param: "Steps", Values: []string{"10"}}
	solid := func(c color.NRGBA, w, h int) image.Image {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
		}
		return img
	}
	red, blue := color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 255, 255}
	grid, err := ComposeXYGrid([]image.Image{solid(red, 64, 64), solid(blue, 64, 32)}, x, y)
	if err != nil {
		t.Fatal(err)
	}
	b := grid.Bounds()
	if b.Dx() <= 2*xyCell || b.Dy() <= xyCell {
		t.Fatalf("grid %v is not larger than its cells", b)
	}
	left, top := b.Dx()-2*xyCell, b.Dy()-xyCell
	if c := grid.NRGBAAt(left+xyCell/2, top+xyCell/2); c != red {
		t.Errorf("first cell centre %v", c)
	}
	if c := grid.NRGBAAt(left+xyCell+xyCell/2, top+xyCell/2); c != blue {
		t.Errorf("second cell centre %v", c)
	}
	// Labels are drawn: the label band holds dark pixels.
	dark := 0
	for yy := 0; yy < top; yy++ {
		for xx := 0; xx < b.Dx(); xx++ {
			if grid.NRGBAAt(xx, yy).R < 128 {
				dark++
			}
		}
	}
	if dark == 0 {
		t.Error("no label text above the grid")
	}
	if _, err := ComposeXYGrid([]image.Image{solid(red, 8, 8)}, x, y); err == nil {
		t.Error("a grid with a missing cell was composed")
	}
	s := openStudio(t)
	path, err := s.SaveXYGrid(grid, x, y, time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	text, err := ReadPNGText(path)
	if err != nil || text["Description"] != "X/Y grid: X Seed = 1, 2; Y Steps = 10" {
		t.Errorf("saved grid text %v, %v", text, err)
	}
}
