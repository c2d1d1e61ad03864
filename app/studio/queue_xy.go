package studio

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// XYParams are the parameters an X/Y grid can vary.
var XYParams = []string{"Seed", "LoRA weight", "CFG", "Steps", "Sampler"}

// MaxXYCells bounds a grid: every cell is a full generation.
const MaxXYCells = 64

// XYAxis is one axis of an X/Y grid: a parameter (one of XYParams) and its values as typed.
type XYAxis struct {
	Param  string
	Values []string
}

// ParseXYValues splits a comma-separated list of values ("1, 2,3"), dropping empty ones.
func ParseXYValues(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// set applies value v of axis a to r; the LoRA weight goes to every LoRA of the request.
func (a XYAxis) set(r *GenerateRequest, v string) error {
	switch a.Param {
	case "Seed":
		s, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return invalid("X/Y seed %q: want a whole number", v)
		}
		r.Seed = &s
	case "LoRA weight":
		w, err := strconv.ParseFloat(v, 32)
		if err != nil || math.IsNaN(w) || math.IsInf(w, 0) {
			return invalid("X/Y LoRA weight %q: want a number", v)
		}
		if len(r.LoRAs) == 0 {
			return invalid("X/Y LoRA weight: the request has no LoRA to weigh")
		}
		loras := make([]LoRASpec, len(r.LoRAs))
		for i, l := range r.LoRAs {
			loras[i] = LoRASpec{Path: l.Path, Weight: float32(w)}
		}
		r.LoRAs = loras
	case "CFG":
		c, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return invalid("X/Y CFG %q: want a number", v)
		}
		r.CFG = c
	case "Steps":
		n, err := strconv.Atoi(v)
		if err != nil {
			return invalid("X/Y steps %q: want a whole number", v)
		}
		r.Steps = n
	case "Sampler":
		r.Sampler = v
	default:
		return invalid("X/Y parameter %q: want one of %s", a.Param, strings.Join(XYParams, ", "))
	}
	return nil
}

// XYRequests returns the requests of an X/Y grid over base, row by row (y outer, x inner),
// each checked. Both axes need values and must vary different parameters; the grid holds at
// most MaxXYCells cells. A base with no seed gets one random seed for every cell, so the
// axes are the only difference.
func XYRequests(base GenerateRequest, x, y XYAxis) ([]GenerateRequest, error) {
	if len(x.Values) == 0 || len(y.Values) == 0 {
		return nil, invalid("an X/Y grid needs values on both axes")
	}
	if x.Param == y.Param {
		return nil, invalid("the X and Y axes both vary %s: pick two parameters", x.Param)
	}
	if n := len(x.Values) * len(y.Values); n > MaxXYCells {
		return nil, invalid("an X/Y grid of %d×%d = %d images: at most %d", len(x.Values), len(y.Values), n, MaxXYCells)
	}
	if base.Seed == nil {
		s := RandomSeed()
		base.Seed = &s
	}
	var out []GenerateRequest
	for _, yv := range y.Values {
		for _, xv := range x.Values {
			r := base
			r.LoRAs = append([]LoRASpec(nil), base.LoRAs...)
			if err := y.set(&r, yv); err != nil {
				return nil, err
			}
			if err := x.set(&r, xv); err != nil {
				return nil, err
			}
			seed := *r.Seed
			r.Seed = &seed
			out = append(out, r)
		}
	}
	return out, nil
}

// xyCell is the side of a grid cell in pixels; images are fitted into it.
const xyCell = 256

// ComposeXYGrid draws the labelled grid: cells (row by row, len(x.Values)*len(y.Values)
// images, any sizes) fitted into squares, the x values above the columns and the y values
// left of the rows, each axis named.
func ComposeXYGrid(cells []image.Image, x, y XYAxis) (*image.NRGBA, error) {
	cols, rows := len(x.Values), len(y.Values)
	if len(cells) != cols*rows || cols == 0 {
		return nil, fmt.Errorf("X/Y grid: %d images for %d×%d cells", len(cells), cols, rows)
	}
	face := basicfont.Face7x13
	lineH := face.Metrics().Height.Ceil() + 6
	left := 0
	for _, v := range y.Values {
		left = max(left, font.MeasureString(face, y.Param+": "+v).Ceil())
	}
	left += 12
	top := 2 * lineH
	out := image.NewNRGBA(image.Rect(0, 0, left+cols*xyCell, top+rows*xyCell))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	text := func(s string, px, py int) {
		d := font.Drawer{Dst: out, Src: image.NewUniform(color.Black), Face: face, Dot: fixed.P(px, py)}
		d.DrawString(s)
	}
	text("X: "+x.Param+"   Y: "+y.Param, 6, lineH-4)
	for c, v := range x.Values {
		w := font.MeasureString(face, v).Ceil()
		text(v, left+c*xyCell+(xyCell-w)/2, 2*lineH-4)
	}
	for r, v := range y.Values {
		text(y.Param+": "+v, 6, top+r*xyCell+xyCell/2)
	}
	for i, img := range cells {
		if img == nil {
			continue // a failed cell stays white
		}
		c, r := i%cols, i/cols
		cell := image.Rect(left+c*xyCell, top+r*xyCell, left+(c+1)*xyCell, top+(r+1)*xyCell)
		b := img.Bounds()
		w, h := xyCell, xyCell
		if b.Dx() >= b.Dy() {
			h = max(1, b.Dy()*xyCell/b.Dx())
		} else {
			w = max(1, b.Dx()*xyCell/b.Dy())
		}
		dst := image.Rect(cell.Min.X+(xyCell-w)/2, cell.Min.Y+(xyCell-h)/2, cell.Min.X+(xyCell-w)/2+w, cell.Min.Y+(xyCell-h)/2+h)
		xdraw.BiLinear.Scale(out, dst, img, b, xdraw.Src, nil)
	}
	return out, nil
}

// SaveXYGrid writes a composed grid atomically as <data>/outputs/<date>/<time>-grid.png,
// with the axes in its parameters text, and returns the path.
func (s *Studio) SaveXYGrid(grid image.Image, x, y XYAxis, t time.Time) (string, error) {
	path := filepath.Join(s.dataDir, OutputsDir, t.Format("2006-01-02"), t.Format("150405.000000000")+"-grid.png")
	var buf bytes.Buffer
	if err := png.Encode(&buf, grid); err != nil {
		return "", fmt.Errorf("X/Y grid %s: %w", path, err)
	}
	desc := fmt.Sprintf("X/Y grid: X %s = %s; Y %s = %s", x.Param, strings.Join(x.Values, ", "), y.Param, strings.Join(y.Values, ", "))
	data, err := InsertPNGText(path, buf.Bytes(), "Description", desc)
	if err != nil {
		return "", err
	}
	if err := writeOutput(path, data); err != nil {
		return "", err
	}
	return path, nil
}
