package ui

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"
	xdraw "golang.org/x/image/draw"

	"lorastudio/app/studio"
)

// compareSize is the side of the square each compared image is fitted into.
const compareSize = 640

// fitSquare scales img into a compareSize square, centred on a transparent background, so
// two images of different sizes line up pixel for pixel.
func fitSquare(img image.Image) *image.NRGBA {
	dst := image.NewNRGBA(image.Rect(0, 0, compareSize, compareSize))
	b := img.Bounds()
	w, h := compareSize, compareSize
	if b.Dx() >= b.Dy() {
		h = max(1, b.Dy()*compareSize/b.Dx())
	} else {
		w = max(1, b.Dx()*compareSize/b.Dy())
	}
	r := image.Rect((compareSize-w)/2, (compareSize-h)/2, (compareSize-w)/2+w, (compareSize-h)/2+h)
	xdraw.BiLinear.Scale(dst, r, img, b, xdraw.Src, nil)
	return dst
}

// sliderComposite is the slider view: a left of the split (a fraction of the width), b right
// of it, with a one-pixel white line on the split. a and b are fitSquare images.
func sliderComposite(a, b *image.NRGBA, split float64) *image.NRGBA {
	out := image.NewNRGBA(a.Bounds())
	x := int(split * float64(compareSize))
	draw.Draw(out, image.Rect(0, 0, x, compareSize), a, image.Point{}, draw.Src)
	draw.Draw(out, image.Rect(x, 0, compareSize, compareSize), b, image.Pt(x, 0), draw.Src)
	if x > 0 && x < compareSize {
		for y := 0; y < compareSize; y++ {
			out.Set(x, y, color.White)
		}
	}
	return out
}

// compareView shows two images side by side and one over the other with a slider.
type compareView struct {
	a, b    *image.NRGBA
	slider  *widget.Slider
	overlay *canvas.Image
	content fyne.CanvasObject
}

// newCompareView builds the view for two decoded images and their captions.
func newCompareView(a, b image.Image, la, lb string) *compareView {
	v := &compareView{a: fitSquare(a), b: fitSquare(b)}
	img := func(m image.Image) *canvas.Image {
		c := canvas.NewImageFromImage(m)
		c.FillMode = canvas.ImageFillContain
		c.SetMinSize(fyne.NewSize(compareSize/2, compareSize/2))
		return c
	}
	side := container.NewGridWithColumns(2,
		container.NewBorder(nil, widget.NewLabel(la), nil, nil, img(v.a)),
		container.NewBorder(nil, widget.NewLabel(lb), nil, nil, img(v.b)))
	v.overlay = img(sliderComposite(v.a, v.b, 0.5))
	v.overlay.SetMinSize(fyne.NewSize(compareSize*3/4, compareSize*3/4))
	v.slider = widget.NewSlider(0, 1)
	v.slider.Step = 0.005
	v.slider.Value = 0.5
	v.slider.OnChanged = func(f float64) {
		v.overlay.Image = sliderComposite(v.a, v.b, f)
		v.overlay.Refresh()
	}
	slide := container.NewBorder(nil, container.NewBorder(nil, nil, widget.NewLabel(la), widget.NewLabel(lb), v.slider), nil, nil, v.overlay)
	v.content = container.NewAppTabs(container.NewTabItem("Side by side", side), container.NewTabItem("Slider", slide))
	return v
}

// MarkForCompare remembers the selected image as the first of a comparison.
func (g *GalleryScreen) MarkForCompare() {
	if g.selected == nil {
		return
	}
	it := *g.selected
	g.compareWith = &it
	g.setStatus(fmt.Sprintf("#%d marked: select another image and press Compare.", it.ID))
}

// CompareSelected opens the comparison of the marked image and the selected one; the files
// are decoded off the UI goroutine.
func (g *GalleryScreen) CompareSelected() {
	if g.selected == nil || g.compareWith == nil {
		g.setStatus("Mark an image for comparison first, then select another and press Compare.")
		return
	}
	a, b := *g.compareWith, *g.selected
	go func() {
		ia, err := studio.LoadImage(a.File)
		var ib image.Image
		if err == nil {
			ib, err = studio.LoadImage(b.File)
		}
		fromBackground(func() {
			if err != nil {
				g.setStatus(err.Error())
				return
			}
			g.compare = newCompareView(ia, ib, fmt.Sprintf("#%d seed %d", a.ID, a.Seed), fmt.Sprintf("#%d seed %d", b.ID, b.Seed))
			d := dialog.NewCustom("Compare", "Close", g.compare.content, g.win)
			d.Resize(fyne.NewSize(compareSize+80, compareSize+160))
			d.Show()
		})
	}()
}
