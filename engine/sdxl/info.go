package sdxl

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// Info describes a model for `lorastudio info MODEL [--json]`.
type Info struct {
	Path   string `json:"path"`
	Format string `json:"format"` // "diffusers" or "single-file"
	// Config says where the sizes come from: the folder's config files, or
	// the embedded SDXL base 1.0 configs for a single file.
	Config string `json:"config"`
	// Resolution is the default image side in pixels (the UNet's sample_size
	// × the VAE's downscale).
	Resolution int                      `json:"resolution"`
	FileBytes  int64                    `json:"file_bytes"` // every weight file's size on disk
	Components map[string]ComponentInfo `json:"components"`
	Total      ComponentInfo            `json:"total"`
}

// ComponentInfo describes one component's weights.
type ComponentInfo struct {
	Params  int64 `json:"params"`
	Tensors int   `json:"tensors"`
	// DType is the stored element type ("F16"), or the types joined by "+"
	// when they are mixed.
	DType string `json:"dtype"`
	// Bytes is the size of the stored tensors the component reads.
	Bytes int64 `json:"bytes"`
	// DeviceBytesF16 and DeviceBytesF32 are the memory its weights need on a
	// device as fp16 and as fp32.
	DeviceBytesF16 int64 `json:"device_bytes_fp16"`
	DeviceBytesF32 int64 `json:"device_bytes_fp32"`
}

// paramInfo returns the counts and device sizes of a parameter list.
func paramInfo(ps []Param) ComponentInfo {
	n := CountParams(ps)
	return ComponentInfo{Params: n, Tensors: len(ps), DeviceBytesF16: 2 * n, DeviceBytesF32: 4 * n}
}

// Inspect opens a model (see OpenSource and its options), checks it
// strictly, and describes it. A corrupt file, a missing component, a
// missing or unknown key is an error naming the file and the key.
func Inspect(path string, opts ...Option) (Info, error) {
	s, err := OpenSource(path, opts...)
	if err != nil {
		return Info{}, err
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		return Info{}, err
	}
	return s.Info(), nil
}

// Info describes the open source.
func (s *Source) Info() Info {
	cfg := s.cfg
	info := Info{
		Path:       s.path,
		Format:     s.format,
		Config:     s.configFrom,
		Resolution: cfg.UNet.SampleSize << (len(cfg.VAE.BlockOutChannels) - 1),
		Components: map[string]ComponentInfo{},
	}
	var dtypes []string
	for _, f := range s.files {
		if st, err := os.Stat(f.Path()); err == nil {
			info.FileBytes += st.Size()
		}
	}
	for _, comp := range Components {
		ps := s.params[comp]
		ci := paramInfo(ps)
		seen := map[string]bool{}
		var types []string
		for _, p := range ps {
			loc := s.locs[comp][p.Name]
			if !seen[loc.ref.Key] {
				seen[loc.ref.Key] = true
				ci.Bytes += loc.info.Size
			}
			if t := string(loc.info.DType); !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
		sort.Strings(types)
		ci.DType = strings.Join(types, "+")
		for _, t := range types {
			if !slices.Contains(dtypes, t) {
				dtypes = append(dtypes, t)
			}
		}
		info.Components[comp] = ci
		info.Total.Params += ci.Params
		info.Total.Tensors += ci.Tensors
		info.Total.Bytes += ci.Bytes
		info.Total.DeviceBytesF16 += ci.DeviceBytesF16
		info.Total.DeviceBytesF32 += ci.DeviceBytesF32
	}
	sort.Strings(dtypes)
	info.Total.DType = strings.Join(dtypes, "+")
	return info
}

// Text formats the description as an aligned table for a terminal.
func (i Info) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "model       %s\n", i.Path)
	fmt.Fprintf(&b, "format      %s\n", i.Format)
	fmt.Fprintf(&b, "config      %s\n", i.Config)
	fmt.Fprintf(&b, "resolution  %d×%d\n", i.Resolution, i.Resolution)
	fmt.Fprintf(&b, "on disk     %s\n\n", humanBytes(i.FileBytes))
	fmt.Fprintf(&b, "%-15s %15s %8s %7s %10s %10s %10s\n", "component", "params", "tensors", "dtype", "stored", "fp16 dev", "fp32 dev")
	row := func(name string, c ComponentInfo) {
		fmt.Fprintf(&b, "%-15s %15s %8d %7s %10s %10s %10s\n", name, groupDigits(c.Params), c.Tensors, c.DType,
			humanBytes(c.Bytes), humanBytes(c.DeviceBytesF16), humanBytes(c.DeviceBytesF32))
	}
	for _, comp := range Components {
		if c, ok := i.Components[comp]; ok {
			row(comp, c)
		}
	}
	row("total", i.Total)
	return b.String()
}

// groupDigits writes n with thousands separators: 2,567,463,684.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// humanBytes writes a byte count in binary units: 4.78 GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= unit
		if v < unit || u == "TiB" {
			return fmt.Sprintf("%.2f %s", v, u)
		}
	}
	return fmt.Sprintf("%d B", n)
}
