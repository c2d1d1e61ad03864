package dataset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers JPEG for image.Decode
	_ "image/png"  // registers PNG for image.Decode
	"io"
	"os"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // registers WebP for image.Decode
)

// ProbeSize returns an image file's size from its header (image.DecodeConfig,
// no pixels decoded), after a cheap look at the file's end that catches a
// truncated PNG or WebP. The error names the file and the problem.
func ProbeSize(path string) (Size, error) {
	f, err := os.Open(path)
	if err != nil {
		return Size{}, fmt.Errorf("image %s: %w", path, err)
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return Size{}, fmt.Errorf("image %s: cannot read header (%s)", path, describeDecodeErr(err))
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Size{}, fmt.Errorf("image %s: invalid size %dx%d", path, cfg.Width, cfg.Height)
	}
	st, err := f.Stat()
	if err != nil {
		return Size{}, fmt.Errorf("image %s: %w", path, err)
	}
	if msg := truncated(f, st.Size(), format); msg != "" {
		return Size{}, fmt.Errorf("image %s: %s", path, msg)
	}
	return Size{cfg.Width, cfg.Height}, nil
}

// tailWindow is how much of a PNG's end is searched for its IEND chunk.
const tailWindow = 8 << 10

// truncated says how a PNG or WebP file is visibly cut short ("" when it is
// not): a PNG without its IEND chunk near the end, a WebP shorter than its
// RIFF header says. JPEGs may legitimately carry trailing data after their
// end marker, so they are left to the decoder.
func truncated(r io.ReaderAt, size int64, format string) string {
	switch format {
	case "webp":
		var hdr [8]byte
		if _, err := r.ReadAt(hdr[:], 0); err != nil {
			return "file is truncated"
		}
		if want := int64(binary.LittleEndian.Uint32(hdr[4:])) + 8; size < want {
			return fmt.Sprintf("file is truncated (%d of %d bytes)", size, want)
		}
	case "png":
		n := min(size, tailWindow)
		buf := make([]byte, n)
		if _, err := r.ReadAt(buf, size-n); err != nil && err != io.EOF {
			return "cannot read the end of the file: " + err.Error()
		}
		if !bytes.Contains(buf, []byte("IEND")) {
			return "file is truncated (no PNG end chunk)"
		}
	}
	return ""
}

// describeDecodeErr turns the decoders' terse errors into words.
func describeDecodeErr(err error) string {
	switch {
	case errors.Is(err, image.ErrFormat):
		return "not a PNG, JPEG or WebP image"
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "file is truncated"
	}
	return err.Error()
}

// LoadPixels decodes the image at path (PNG, JPEG or WebP) and returns the
// sample e cut into bucket as (3, H, W) float32 in [-1, 1] (bucket.H rows of
// bucket.W, RGB planes; v/255·2 − 1 as torchvision's ToTensor and
// Normalize([0.5], [0.5]) give): the image resized to (e.ResizedW,
// e.ResizedH), cropped at (e.CropLeft, e.CropTop), mirrored when e.Flip.
//
// The resize is Catmull-Rom (golang.org/x/image/draw), whose kernel widens
// with the reduction so downscaling is antialiased; diffusers' scripts resize
// with PIL's bilinear (antialiased) or lanczos and kohya with OpenCV's
// INTER_AREA, so pixels agree with them to resampling differences, not bit
// for bit. An alpha channel is dropped, keeping the straight colours, as
// PIL's convert("RGB") does. EXIF orientation is not applied (neither do the
// reference scripts by default); the file's stored size is the original size.
func LoadPixels(path string, e Entry, bucket Size) ([]float32, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	return decodePixels(data, path, e, bucket)
}

// decodePixels is LoadPixels on the file's bytes.
func decodePixels(data []byte, path string, e Entry, bucket Size) ([]float32, error) {
	if bucket.W <= 0 || bucket.H <= 0 || e.ResizedW < bucket.W || e.ResizedH < bucket.H ||
		e.CropLeft < 0 || e.CropTop < 0 || e.CropLeft+bucket.W > e.ResizedW || e.CropTop+bucket.H > e.ResizedH {
		return nil, fmt.Errorf("image %s: crop %dx%d at (%d, %d) does not fit the resized %dx%d", path, bucket.W, bucket.H, e.CropLeft, e.CropTop, e.ResizedW, e.ResizedH)
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image %s: cannot decode (%s)", path, describeDecodeErr(err))
	}
	if b := src.Bounds(); b.Dx() != e.OrigW || b.Dy() != e.OrigH {
		return nil, fmt.Errorf("image %s: is %dx%d, planned as %dx%d (the file changed since the epoch was planned)", path, b.Dx(), b.Dy(), e.OrigW, e.OrigH)
	}
	src = opaque(src)
	// An 8-bit destination takes x/image/draw's fast paths (RGBA, NRGBA,
	// YCbCr and Gray sources) and quantises as PIL does: its resize of an
	// RGB image gives 8-bit values that ToTensor then divides by 255.
	dst := image.NewRGBA(image.Rect(0, 0, bucket.W, bucket.H))
	// Scaling onto a rectangle shifted by the crop offset renders only the
	// pixels inside dst: the same values as resizing whole and cropping.
	dr := image.Rect(-e.CropLeft, -e.CropTop, e.ResizedW-e.CropLeft, e.ResizedH-e.CropTop)
	draw.CatmullRom.Scale(dst, dr, src, src.Bounds(), draw.Src, nil)
	W, H := bucket.W, bucket.H
	out := make([]float32, 3*H*W) // (3, H, W)
	for y := range H {
		row := dst.Pix[y*dst.Stride:]
		for x := range W {
			sx := x
			if e.Flip {
				sx = W - 1 - x
			}
			p := row[4*sx:]
			for c := range 3 {
				out[(c*H+y)*W+x] = float32(p[c])/255*2 - 1
			}
		}
	}
	return out, nil
}

// opaque returns img with any alpha channel dropped, straight colours kept
// (PIL's convert("RGB")), so transparent regions do not turn black through
// premultiplication.
func opaque(img image.Image) image.Image {
	type opaquer interface{ Opaque() bool }
	if o, ok := img.(opaquer); ok && o.Opaque() {
		return img
	}
	b := img.Bounds()
	if n, ok := img.(*image.NRGBA); ok {
		out := image.NewNRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			copy(out.Pix[(y-b.Min.Y)*out.Stride:(y-b.Min.Y)*out.Stride+4*b.Dx()], n.Pix[n.PixOffset(b.Min.X, y):])
		}
		for i := 3; i < len(out.Pix); i += 4 {
			out.Pix[i] = 0xff
		}
		return out
	}
	out := image.NewNRGBA64(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
			c.A = 0xffff
			out.SetNRGBA64(x, y, c)
		}
	}
	return out
}
