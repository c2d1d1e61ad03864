package studio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // registers JPEG for image.Decode
	_ "image/png"  // registers PNG for image.Decode
	"io"
	"os"
	"path/filepath"
	"strings"

	_ "golang.org/x/image/webp" // registers WebP for image.Decode
)

// DefaultResolution is the SDXL training resolution: images whose shorter
// side is below it get a warning when a dataset is scanned.
const DefaultResolution = 1024

// imageExts are the file extensions treated as dataset images.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".webp": true}

// isImageName reports whether name has one of the supported image extensions.
func isImageName(name string) bool {
	return imageExts[strings.ToLower(filepath.Ext(name))]
}

// LoadImage decodes a PNG, JPEG or WebP file; errors name the file.
func LoadImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", path, err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("image %s: cannot decode (%v)", path, describeDecodeErr(err))
	}
	return img, nil
}

// describeDecodeErr turns the decoders' terse errors into something a user reads.
func describeDecodeErr(err error) string {
	switch {
	case err == image.ErrFormat:
		return "not a PNG, JPEG or WebP image"
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return "file is truncated"
	}
	return err.Error()
}

// imageHeader is what a scan learns about one image without decoding pixels.
type imageHeader struct {
	width, height int
	format        string
	warnings      []Warning
}

// readImageHeader reads an image's header (image.DecodeConfig) plus a cheap
// check of the file's tail for truncation. The error names the file.
func readImageHeader(path string) (imageHeader, error) {
	var h imageHeader
	f, err := os.Open(path)
	if err != nil {
		return h, fmt.Errorf("image %s: %w", path, err)
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return h, fmt.Errorf("image %s: cannot read header (%s)", path, describeDecodeErr(err))
	}
	h.width, h.height, h.format = cfg.Width, cfg.Height, format
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return h, fmt.Errorf("image %s: invalid size %dx%d", path, cfg.Width, cfg.Height)
	}
	switch cfg.ColorModel {
	case color.CMYKModel:
		h.warnings = append(h.warnings, Warning{WarnColour, "CMYK colour: converted to RGB for training, colours may shift"})
	case color.RGBA64Model, color.NRGBA64Model, color.Gray16Model, color.Alpha16Model:
		h.warnings = append(h.warnings, Warning{WarnColour, "16-bit per channel: reduced to 8-bit for training"})
	}
	if min(cfg.Width, cfg.Height) < DefaultResolution {
		h.warnings = append(h.warnings, Warning{WarnSmall, fmt.Sprintf("smaller than the %d px training resolution (%dx%d): will be upscaled", DefaultResolution, cfg.Width, cfg.Height)})
	}
	if cfg.Width%8 != 0 || cfg.Height%8 != 0 {
		h.warnings = append(h.warnings, Warning{WarnSize, fmt.Sprintf("size %dx%d is not divisible by 8: will be cropped", cfg.Width, cfg.Height)})
	}
	st, err := f.Stat()
	if err != nil {
		return h, fmt.Errorf("image %s: %w", path, err)
	}
	if msg, fatal := checkTail(f, st.Size(), format); msg != "" {
		if fatal {
			return h, fmt.Errorf("image %s: %s", path, msg)
		}
		h.warnings = append(h.warnings, Warning{WarnTruncated, msg})
	}
	return h, nil
}

// tailWindow is how much of a file's end is searched for an end marker.
const tailWindow = 8 << 10

// checkTail looks for the format's end marker near the end of the file, so a
// truncated download is caught without decoding every pixel. fatal means the
// image cannot be decoded at all.
func checkTail(r io.ReaderAt, size int64, format string) (msg string, fatal bool) {
	switch format {
	case "webp":
		var hdr [8]byte
		if _, err := r.ReadAt(hdr[:], 0); err != nil {
			return "file is truncated", true
		}
		want := int64(binary.LittleEndian.Uint32(hdr[4:])) + 8
		if size < want {
			return fmt.Sprintf("file is truncated (%d of %d bytes)", size, want), true
		}
		return "", false
	case "png", "jpeg":
	default:
		return "", false
	}
	n := min(size, tailWindow)
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return "cannot read the end of the file: " + err.Error(), true
	}
	if format == "png" {
		if !bytes.Contains(buf, []byte("IEND")) {
			return "file is truncated (no PNG end chunk)", true
		}
		return "", false
	}
	if !bytes.Contains(buf, []byte{0xFF, 0xD9}) {
		// JPEG files sometimes carry trailing data; only warn.
		return "JPEG has no end-of-image marker: the file may be truncated", false
	}
	return "", false
}
