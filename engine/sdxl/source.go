package sdxl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"lorastudio/engine/safetensors"
)

// componentFiles lists, per component, the weight files a diffusers folder
// may hold, in order of preference: the fp16 variant first (weights live on
// the device as fp16), then the full-precision file.
var componentFiles = map[string][]string{
	UNet:         {"diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors"},
	VAE:          {"diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors"},
	TextEncoder:  {"model.fp16.safetensors", "model.safetensors"},
	TextEncoder2: {"model.fp16.safetensors", "model.safetensors"},
}

// componentFile returns the weight file of one component of a diffusers folder.
func componentFile(dir, comp string) (string, error) {
	for _, name := range componentFiles[comp] {
		p := filepath.Join(dir, comp, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	for _, name := range componentFiles[comp] {
		if _, err := os.Stat(filepath.Join(dir, comp, name+".index.json")); err == nil {
			return "", fmt.Errorf("sdxl: %s: sharded weights (%s.index.json) are not supported; merge them into one file", filepath.Join(dir, comp), name)
		}
	}
	return "", fmt.Errorf("sdxl: %s: no weights (want %s or %s)", filepath.Join(dir, comp), componentFiles[comp][1], componentFiles[comp][0])
}

// The formats a Source can have.
const (
	FormatDiffusers  = "diffusers"
	FormatSingleFile = "single-file"
)

// Option changes how OpenSource reads a model.
type Option func(*openOptions)

type openOptions struct {
	cfg      *Config
	describe string
}

// WithConfig gives the configs a single file is read with, instead of SDXL
// base 1.0's (a single file does not record its sizes). A diffusers folder
// always uses its own config files.
func WithConfig(cfg Config) Option {
	return func(o *openOptions) {
		o.cfg = &cfg
		o.describe = "the config given"
	}
}

// WithConfigDir is WithConfig with the configs of the diffusers folder dir
// (model_index.json, unet/config.json ...). An unreadable folder makes
// OpenSource fail with its error.
func WithConfigDir(dir string) Option {
	return func(o *openOptions) {
		cfg, err := LoadConfig(dir)
		if err != nil {
			o.cfg = nil
			o.describe = err.Error()
			return
		}
		o.cfg = &cfg
		o.describe = "the config in " + dir
	}
}

// sdxlBaseDescribe names the configs a single file is read with by default.
const sdxlBaseDescribe = "SDXL base 1.0"

// location is where one diffusers parameter's data lies.
type location struct {
	file *safetensors.File
	info safetensors.TensorInfo // the stored key
	ref  SingleFileRef          // Key, rows, transpose (identity in a diffusers folder)
}

// Source is an open SDXL model: a diffusers folder or a single file. Every
// parameter is read on demand from the memory-mapped files. Its methods are
// safe for concurrent use until Close.
type Source struct {
	path    string
	format  string
	cfg     Config
	files   []*safetensors.File
	params  map[string][]Param
	locs    map[string]map[string]location // component → diffusers name → data
	unknown []string                       // "file: key" of keys no parameter reads
	// configFrom says where the configs come from, for Info.
	configFrom string
}

// OpenSource opens a model: a diffusers folder (a directory holding
// model_index.json) or a single .safetensors checkpoint in Stability's layout.
// Every parameter the configs call for must be present with its shape (an
// error names the file and the first bad key); keys no parameter reads are
// reported by Check.
func OpenSource(path string, opts ...Option) (*Source, error) {
	var o openOptions
	for _, opt := range opts {
		opt(&o)
	}
	if filepath.Base(path) == "model_index.json" {
		path = filepath.Dir(path) // the folder's index names the folder
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sdxl: %v", err)
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "model_index.json")); err != nil {
			return nil, fmt.Errorf("sdxl: %s: not a diffusers folder (no model_index.json)", path)
		}
		return openDiffusers(path)
	}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".safetensors":
	case ".ckpt", ".pt", ".pth", ".bin":
		return nil, fmt.Errorf("sdxl: %s: %s is a pickle checkpoint, which is not loaded (it can run code); convert it to .safetensors", path, ext)
	default:
		return nil, fmt.Errorf("sdxl: %s: want a diffusers folder or a .safetensors file", path)
	}
	describe := sdxlBaseDescribe
	var cfg Config
	switch {
	case o.cfg != nil:
		cfg, describe = *o.cfg, o.describe
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("sdxl: %s: %v", path, err)
		}
	case o.describe != "":
		return nil, errors.New(o.describe) // WithConfigDir failed
	default:
		if cfg, err = DefaultConfig(); err != nil {
			return nil, err
		}
	}
	return openSingleFile(path, cfg, describe)
}

func openDiffusers(dir string) (*Source, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	s := &Source{path: dir, format: FormatDiffusers, configFrom: "config files in " + dir, cfg: cfg, params: map[string][]Param{}, locs: map[string]map[string]location{}}
	for _, comp := range Components {
		path, err := componentFile(dir, comp)
		if err != nil {
			s.Close()
			return nil, err
		}
		f, err := safetensors.Open(path)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sdxl: %s: %v", comp, err)
		}
		s.files = append(s.files, f)
		ps, err := ComponentParams(cfg, comp)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.params[comp] = ps
		locs := make(map[string]location, len(ps))
		var missing []string
		for _, p := range ps {
			info, ok := f.Tensor(p.Name)
			if !ok {
				missing = append(missing, p.Name)
				continue
			}
			if !slices.Equal(info.Shape, p.Shape) {
				s.Close()
				return nil, fmt.Errorf("sdxl: %s: tensor %s has shape %v, %s/config.json gives %v", path, p.Name, info.Shape, comp, p.Shape)
			}
			locs[p.Name] = location{file: f, info: info, ref: SingleFileRef{Component: comp, Name: p.Name, Shape: p.Shape, Key: p.Name, KeyShape: p.Shape}}
		}
		if len(missing) > 0 {
			s.Close()
			return nil, fmt.Errorf("sdxl: %s: %s", path, listKeys("missing tensor", missing))
		}
		for _, name := range f.Names() {
			if _, ok := locs[name]; !ok && !ignoredDiffusersKey(comp, name) {
				s.unknown = append(s.unknown, path+": "+name)
			}
		}
		s.locs[comp] = locs
	}
	return s, nil
}

// ignoredDiffusersKey reports whether a diffusers component file's key is a
// known extra: transformers < 4.31 stored the text encoders' position_ids.
func ignoredDiffusersKey(comp, name string) bool {
	return (comp == TextEncoder || comp == TextEncoder2) && name == "text_model.embeddings.position_ids"
}

func openSingleFile(path string, cfg Config, describe string) (*Source, error) {
	layout, err := SingleFileLayout(cfg)
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sdxl: %v", err)
	}
	shapes := map[string][]int{}
	for _, name := range f.Names() {
		info, _ := f.Tensor(name)
		shapes[name] = info.Shape
	}
	_, unknown, err := matchSingleFile(path, describe, layout, shapes)
	if err != nil {
		f.Close()
		if describe == sdxlBaseDescribe {
			err = fmt.Errorf("%v (a single file does not record its sizes; for another architecture give its configs)", err)
		}
		return nil, err
	}
	s := &Source{path: path, format: FormatSingleFile, configFrom: describe, cfg: cfg, files: []*safetensors.File{f}, params: map[string][]Param{}, locs: map[string]map[string]location{}}
	for _, k := range unknown {
		s.unknown = append(s.unknown, path+": "+k)
	}
	for _, ref := range layout {
		info, _ := f.Tensor(ref.Key)
		if s.locs[ref.Component] == nil {
			s.locs[ref.Component] = map[string]location{}
		}
		s.locs[ref.Component][ref.Name] = location{file: f, info: info, ref: ref}
		s.params[ref.Component] = append(s.params[ref.Component], Param{Name: ref.Name, Shape: ref.Shape})
	}
	return s, nil
}

// Path returns the folder or file the source was opened from.
func (s *Source) Path() string { return s.path }

// Format returns FormatDiffusers or FormatSingleFile.
func (s *Source) Format() string { return s.format }

// Config returns every component's config (for a single file, the configs it
// was read with: SDXL base 1.0's unless WithConfig said otherwise).
func (s *Source) Config() Config { return s.cfg }

// Params returns the parameter list of a component, in the model's order.
func (s *Source) Params(component string) []Param { return slices.Clone(s.params[component]) }

// Check verifies the source strictly: every parameter is present with its
// shape (already true of an open source), stored as F16, BF16 or F32, and no
// file holds a key that no parameter reads (known extras aside). The error
// names the file and the keys.
func (s *Source) Check() error {
	for _, comp := range Components {
		for _, p := range s.params[comp] {
			loc := s.locs[comp][p.Name]
			switch loc.info.DType {
			case safetensors.F16, safetensors.BF16, safetensors.F32:
			default:
				return fmt.Errorf("sdxl: %s: key %s is %s; weights must be F16, BF16 or F32", loc.file.Path(), loc.ref.Key, loc.info.DType)
			}
		}
	}
	if len(s.unknown) > 0 {
		return fmt.Errorf("sdxl: %s: %s", s.path, listKeys("unknown key", s.unknown))
	}
	return nil
}

// Close releases every file. TensorRefs and the slices they returned must
// not be used after it.
func (s *Source) Close() error {
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.files = nil
	return first
}

// TensorRef is one parameter of a source in diffusers layout, read on demand
// from the memory-mapped file.
type TensorRef struct {
	Component string
	Name      string
	DType     safetensors.DType // the stored element type
	Shape     []int             // the diffusers shape
	loc       location
}

// Tensor returns the named diffusers parameter of a component.
func (s *Source) Tensor(component, name string) (TensorRef, error) {
	locs, ok := s.locs[component]
	if !ok {
		return TensorRef{}, fmt.Errorf("sdxl: %s: unknown component %q (want unet, vae, text_encoder or text_encoder_2)", s.path, component)
	}
	loc, ok := locs[name]
	if !ok {
		return TensorRef{}, fmt.Errorf("sdxl: %s: %s has no parameter %q", s.path, component, name)
	}
	return TensorRef{Component: component, Name: name, DType: loc.info.DType, Shape: slices.Clone(loc.ref.Shape), loc: loc}, nil
}

// Key returns the stored key the data comes from and, for a single file, how
// it is converted (rows, transpose, reshape).
func (r TensorRef) Key() SingleFileRef { return r.loc.ref }

// NumElements returns the product of the shape.
func (r TensorRef) NumElements() int64 { return Param{Shape: r.Shape}.NumElements() }

// Bytes returns the parameter's little-endian data in diffusers layout: a
// read-only view into the mapping (rows of a fused key included), or a new
// slice when the stored tensor is transposed. Valid until the source closes.
func (r TensorRef) Bytes() ([]byte, error) {
	b, err := r.loc.file.Bytes(r.loc.ref.Key)
	if err != nil {
		return nil, fmt.Errorf("sdxl: %v", err)
	}
	ref := r.loc.ref
	es := r.DType.Size()
	if ref.RowEnd > 0 {
		row := int(Param{Shape: r.loc.info.Shape[1:]}.NumElements()) * es
		b = b[ref.RowStart*row : ref.RowEnd*row : ref.RowEnd*row]
	}
	if ref.Transpose {
		// stored (a, b) → diffusers (b, a): out[i][j] = in[j][i]
		a, bb := ref.KeyShape[0], ref.KeyShape[1]
		out := make([]byte, len(b))
		for i := range bb {
			for j := range a {
				copy(out[(i*a+j)*es:(i*a+j+1)*es], b[(j*bb+i)*es:(j*bb+i+1)*es])
			}
		}
		b = out
	}
	return b, nil
}

// Float16Bits returns the parameter as fp16 bit patterns (a new slice; BF16
// and F32 are rounded to nearest even).
func (r TensorRef) Float16Bits() ([]uint16, error) {
	b, err := r.Bytes()
	if err != nil {
		return nil, err
	}
	out, err := safetensors.ToFloat16Bits(r.DType, b)
	if err != nil {
		return nil, fmt.Errorf("sdxl: %s: key %s: %v", r.loc.file.Path(), r.loc.ref.Key, err)
	}
	return out, nil
}

// Float32 returns the parameter converted to float32 (a new slice).
func (r TensorRef) Float32() ([]float32, error) {
	b, err := r.Bytes()
	if err != nil {
		return nil, err
	}
	out, err := safetensors.ToFloat32(r.DType, b)
	if err != nil {
		return nil, fmt.Errorf("sdxl: %s: key %s: %v", r.loc.file.Path(), r.loc.ref.Key, err)
	}
	return out, nil
}
