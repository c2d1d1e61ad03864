package assets

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"testing"
)

// TestIcon checks that the embedded icon is a 512×512 PNG that matches what
// drawIcon draws. With LORASTUDIO_WRITE_ICON=1 it (re)writes icon.png first.
func TestIcon(t *testing.T) {
	want := drawIcon(512)
	if os.Getenv("LORASTUDIO_WRITE_ICON") == "1" {
		var buf bytes.Buffer
		if err := png.Encode(&buf, want); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("icon.png", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("wrote icon.png; rebuild to embed it")
		return
	}
	if Icon == nil || Icon.Name() != "icon.png" {
		t.Fatalf("Icon resource is %v, want a resource named icon.png", Icon)
	}
	img, err := png.Decode(bytes.NewReader(Icon.Content()))
	if err != nil {
		t.Fatalf("embedded icon.png: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 512 || b.Dy() != 512 {
		t.Fatalf("icon.png is %dx%d, want 512x512", b.Dx(), b.Dy())
	}
	// Transparent corners, opaque centre: the rounded square is there.
	if _, _, _, a := img.At(2, 2).RGBA(); a != 0 {
		t.Errorf("icon corner alpha = %d, want 0", a)
	}
	if _, _, _, a := img.At(256, 256).RGBA(); a != 0xffff {
		t.Errorf("icon centre alpha = %d, want opaque", a)
	}
	for _, p := range []image.Point{{2, 2}, {100, 400}, {256, 256}, {400, 100}, {180, 300}} {
		if !sameColor(img.At(p.X, p.Y), want.At(p.X, p.Y)) {
			t.Errorf("icon.png at %v = %v, drawIcon gives %v (regenerate with LORASTUDIO_WRITE_ICON=1)", p, img.At(p.X, p.Y), want.At(p.X, p.Y))
		}
	}
}

func sameColor(a, b color.Color) bool {
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	d := func(x, y uint32) bool { return x+0x200 >= y && y+0x200 >= x }
	return d(r1, r2) && d(g1, g2) && d(b1, b2) && d(a1, a2)
}

// drawIcon draws the LoRA Studio icon at size×size: a rounded square with a
// violet-to-teal diagonal gradient, a bold white "L" and a four-pointed spark.
// Every pixel is supersampled 4×4 for smooth edges.
func drawIcon(size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	s := float64(size) / 512
	top := [3]float64{0x6a, 0x3d, 0xe8}    // violet
	bottom := [3]float64{0x12, 0xb5, 0xb0} // teal
	const ss = 4
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			var bg, fg float64
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					px := (float64(x) + (float64(sx)+0.5)/ss) / s
					py := (float64(y) + (float64(sy)+0.5)/ss) / s
					if roundedRect(px, py, 16, 16, 496, 496, 104) {
						bg++
						if letterL(px, py) || spark(px, py) {
							fg++
						}
					}
				}
			}
			bg /= ss * ss
			fg /= ss * ss
			if bg == 0 {
				continue
			}
			// Diagonal gradient from the top-left to the bottom-right.
			u := (float64(x) + float64(y)) / float64(2*size)
			var c [3]float64
			for i := range c {
				c[i] = top[i]*(1-u) + bottom[i]*u
			}
			// Blend the white foreground over the gradient; fg is a share of bg.
			f := fg / bg
			img.Pix[img.PixOffset(x, y)+0] = uint8(math.Round(c[0]*(1-f) + 255*f))
			img.Pix[img.PixOffset(x, y)+1] = uint8(math.Round(c[1]*(1-f) + 255*f))
			img.Pix[img.PixOffset(x, y)+2] = uint8(math.Round(c[2]*(1-f) + 250*f))
			img.Pix[img.PixOffset(x, y)+3] = uint8(math.Round(255 * bg))
		}
	}
	return img
}

// roundedRect reports whether (x, y) lies in the rectangle [x0,x1]×[y0,y1]
// with corners rounded by radius r.
func roundedRect(x, y, x0, y0, x1, y1, r float64) bool {
	if x < x0 || x > x1 || y < y0 || y > y1 {
		return false
	}
	cx := math.Max(x0+r, math.Min(x, x1-r))
	cy := math.Max(y0+r, math.Min(y, y1-r))
	return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r
}

// letterL is the bold "L": a stem and a foot with softly rounded corners.
func letterL(x, y float64) bool {
	return roundedRect(x, y, 150, 112, 236, 400, 22) || roundedRect(x, y, 150, 314, 372, 400, 22)
}

// spark is a four-pointed star above the foot of the L, to the right of the
// stem: the "generate" half of the studio.
func spark(x, y float64) bool {
	const cx, cy, r = 338, 190, 78
	dx, dy := math.Abs(x-cx), math.Abs(y-cy)
	// An astroid-like star: |dx|^p + |dy|^p <= r^p with p < 1 gives concave sides.
	const p = 0.55
	return math.Pow(dx/r, p)+math.Pow(dy/r, p) <= 1
}
