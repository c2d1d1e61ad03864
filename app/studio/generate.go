package studio

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"lorastudio/engine/device"
	"lorastudio/engine/sdxl/demo"
	"lorastudio/engine/sdxl/pipeline"
	"lorastudio/engine/tensor"
	"lorastudio/storage"
)

// EngineVersion is part of every generation cache key: bump it when a change
// to the engine changes the images it makes, so old cache entries stop
// answering.
const EngineVersion = "lorastudio-engine/1"

// SettingModel is the settings key of the configured base model (a path),
// used when a generation names no model.
const SettingModel = "generate.model"

// GenerationsDir is the folder under the data directory holding the
// generation cache's PNGs, <key>.png.
const GenerationsDir = "generations"

// Samplers are the sampler names a GenerateRequest accepts.
var Samplers = []string{"dpmpp_2m", "dpmpp_2m_karras", "euler", "euler_a"}

// ErrInvalidRequest is wrapped by errors about a generation request itself
// (size not a multiple of 8, unknown sampler, no output path ...), as opposed
// to failures while running it.
var ErrInvalidRequest = errors.New("invalid generation request")

// LoRASpec is a LoRA file (or peft adapter folder) applied at a weight.
type LoRASpec struct {
	Path   string
	Weight float32
}

// GenerateRequest is one text-to-image generation.
type GenerateRequest struct {
	Model     string // a diffusers folder or a .safetensors checkpoint; "" = the configured model, else the demo model
	ConfigDir string // diffusers folder sizing a single-file checkpoint; "" = the default
	LoRAs     []LoRASpec
	Prompt    string
	Negative  *string // nil = no negative prompt, distinct from ""
	Steps     int
	CFG       float64
	Sampler   string // one of Samplers
	Width     int
	Height    int
	Seed      *uint64 // nil = draw one (recorded in the result and the history)
	Device    string  // "auto", "cpu" or "gl" (see engine/device); "" = auto
	NoCache   bool    // do not read the cache (the result is still stored in it)
	Out       string  // the PNG to write
	// AppVersion is written into the PNG's parameters ("Version: lorastudio <v>").
	AppVersion string
}

// GenerateResult says what a generation produced.
type GenerateResult struct {
	Path         string // the absolute output path
	Seed         uint64
	FromCache    bool
	Duration     time.Duration
	CacheKey     string
	Device       string // the backend that ran it ("cpu", "gl:<renderer>"), "cache" for a cache hit
	Model        string // the model used (absolute path)
	Parameters   string // the A1111 infotext written into the PNG
	GenerationID int64  // the history row
	// CacheErr is set when the generation succeeded but trimming the
	// generation cache to its size cap afterwards failed (the image and its
	// history row are fine); show it as a warning.
	CacheErr error
}

// DefaultGenerateRequest returns the tutorial's defaults: 25 steps of
// DPM-Solver++ 2M at CFG 7, 1024×1024, no negative prompt, a random seed.
func DefaultGenerateRequest() GenerateRequest {
	return GenerateRequest{Steps: 25, CFG: 7, Sampler: "dpmpp_2m", Width: 1024, Height: 1024, Device: "auto"}
}

// invalid wraps a message about the request in ErrInvalidRequest.
func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, a...))
}

// Validate checks the parts of a request that need no files.
func (r GenerateRequest) Validate() error {
	if r.Out == "" {
		return invalid("no output file (--out)")
	}
	if !strings.EqualFold(filepath.Ext(r.Out), ".png") {
		return invalid("output %s: the file must end in .png", r.Out)
	}
	if r.Width <= 0 || r.Height <= 0 || r.Width%8 != 0 || r.Height%8 != 0 {
		return invalid("size %dx%d: width and height must be positive multiples of 8", r.Width, r.Height)
	}
	if r.Steps < 1 || r.Steps > 1000 {
		return invalid("steps %d: want 1 to 1000", r.Steps)
	}
	if math.IsNaN(r.CFG) || math.IsInf(r.CFG, 0) || r.CFG < 0 {
		return invalid("CFG %v: want a finite number ≥ 0", r.CFG)
	}
	if !validSampler(r.Sampler) {
		return invalid("unknown sampler %q (want %s)", r.Sampler, strings.Join(Samplers, ", "))
	}
	if r.Seed != nil && *r.Seed > math.MaxInt64 {
		return invalid("seed %d: want 0 to %d", *r.Seed, int64(math.MaxInt64))
	}
	switch r.Device {
	case "", "auto", "cpu", "gl":
	default:
		return invalid("unknown device %q (want auto, cpu or gl)", r.Device)
	}
	for _, l := range r.LoRAs {
		if l.Path == "" {
			return invalid("a LoRA with no file")
		}
		if math.IsNaN(float64(l.Weight)) || math.IsInf(float64(l.Weight), 0) {
			return invalid("LoRA %s: weight %v is not a finite number", l.Path, l.Weight)
		}
	}
	if !utf8Valid(r.Prompt) || (r.Negative != nil && !utf8Valid(*r.Negative)) {
		return invalid("the prompt is not valid UTF-8 text")
	}
	return nil
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func validSampler(s string) bool {
	for _, x := range Samplers {
		if s == x {
			return true
		}
	}
	return false
}

// ConfiguredModel returns the configured base model path, if one is set.
func (s *Studio) ConfiguredModel() (string, bool, error) {
	v, ok, err := s.db.Setting(SettingModel)
	if err != nil || !ok || v == "" {
		return "", false, err
	}
	return v, true, nil
}

// SetConfiguredModel makes path (made absolute) the model used when a
// generation names none; "" clears it.
func (s *Studio) SetConfiguredModel(path string) error {
	if path == "" {
		return s.db.DeleteSetting(SettingModel)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("model %s: %w", path, err)
	}
	return s.db.SetSetting(SettingModel, abs)
}

// ResolveModel returns the model a request for model would use, absolute:
// model itself when given, else the configured model, else the demo model
// (written under the data directory on first use; isDemo is then true).
func (s *Studio) ResolveModel(model string) (path string, isDemo bool, err error) {
	if model == "" {
		var ok bool
		if model, ok, err = s.ConfiguredModel(); err != nil {
			return "", false, err
		}
		if !ok {
			p, err := demo.Ensure(s.dataDir)
			if err != nil {
				return "", false, fmt.Errorf("demo model: %w", err)
			}
			return p, true, nil
		}
	}
	abs, err := filepath.Abs(model)
	if err != nil {
		return "", false, fmt.Errorf("model %s: %w", model, err)
	}
	if _, err := os.Stat(abs); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, fmt.Errorf("model %s: no such file or folder", abs)
		}
		return "", false, fmt.Errorf("model %s: %w", abs, err)
	}
	return abs, false, nil
}

// keyLoRA is one LoRA in a cache key.
type keyLoRA struct {
	Hash   string `json:"hash"`
	Weight string `json:"weight"` // float32 shortest form: 0.5, 1
}

// cacheKeyDoc is the canonical JSON hashed into a cache key: everything that
// decides the image, and nothing else (not the output path, not the device).
type cacheKeyDoc struct {
	Engine   string    `json:"engine"`
	Model    string    `json:"model"`
	Config   string    `json:"config"`
	LoRAs    []keyLoRA `json:"loras"`
	Prompt   string    `json:"prompt"`
	Negative *string   `json:"negative"`
	Seed     uint64    `json:"seed"`
	Steps    int       `json:"steps"`
	CFG      string    `json:"cfg"`
	Sampler  string    `json:"sampler"`
	Width    int       `json:"width"`
	Height   int       `json:"height"`
}

// generationKey hashes the canonical JSON of doc.
func generationKey(doc cacheKeyDoc) string {
	if doc.LoRAs == nil {
		doc.LoRAs = []keyLoRA{}
	}
	b, _ := json.Marshal(doc) // plain strings and numbers: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// resolved is a request with its files found and hashed.
type resolved struct {
	model, modelHash, configDir, configHash string
	demo                                    bool
	loras                                   []LoRASpec // absolute paths
	loraHashes                              []string   // content hashes
	seed                                    uint64
	key                                     string
}

// resolve finds and hashes the model and LoRAs, draws a seed when none is
// given and computes the cache key.
func (s *Studio) resolve(req GenerateRequest) (resolved, error) {
	var r resolved
	var err error
	if r.model, r.demo, err = s.ResolveModel(req.Model); err != nil {
		return r, err
	}
	if r.modelHash, err = s.HashPath(r.model); err != nil {
		return r, err
	}
	if req.ConfigDir != "" {
		if r.configDir, err = filepath.Abs(req.ConfigDir); err != nil {
			return r, fmt.Errorf("config folder %s: %w", req.ConfigDir, err)
		}
		if r.configHash, err = s.HashPath(r.configDir); err != nil {
			return r, err
		}
	}
	doc := cacheKeyDoc{Engine: EngineVersion, Model: r.modelHash, Config: r.configHash, Prompt: req.Prompt,
		Negative: req.Negative, Steps: req.Steps, CFG: strconv.FormatFloat(req.CFG, 'g', -1, 64),
		Sampler: req.Sampler, Width: req.Width, Height: req.Height}
	for _, l := range req.LoRAs {
		abs, err := filepath.Abs(l.Path)
		if err != nil {
			return r, fmt.Errorf("LoRA %s: %w", l.Path, err)
		}
		if _, err := os.Stat(abs); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return r, fmt.Errorf("LoRA %s: no such file or folder", abs)
			}
			return r, fmt.Errorf("LoRA %s: %w", abs, err)
		}
		h, err := s.HashPath(abs)
		if err != nil {
			return r, err
		}
		r.loras = append(r.loras, LoRASpec{Path: abs, Weight: l.Weight})
		r.loraHashes = append(r.loraHashes, h)
		doc.LoRAs = append(doc.LoRAs, keyLoRA{Hash: h, Weight: strconv.FormatFloat(float64(l.Weight), 'g', -1, 32)})
	}
	if req.Seed != nil {
		r.seed = *req.Seed
	} else {
		var b [4]byte // 32 bits, as A1111 draws: fits every UI's seed field
		if _, err := rand.Read(b[:]); err != nil {
			return r, fmt.Errorf("drawing a seed: %w", err)
		}
		r.seed = uint64(binary.LittleEndian.Uint32(b[:]))
	}
	doc.Seed = r.seed
	r.key = generationKey(doc)
	return r, nil
}

// modelName is the model's display name: the demo's, else the file or
// folder name without .safetensors.
func (r resolved) modelName() string {
	if r.demo {
		return demo.Name
	}
	base := filepath.Base(r.model)
	if strings.EqualFold(filepath.Ext(base), ".safetensors") {
		base = base[:len(base)-len(".safetensors")]
	}
	return base
}

// infotext is the A1111 parameters text of the request.
func (s *Studio) infotext(req GenerateRequest, r resolved) string {
	p := Params{Prompt: req.Prompt, Negative: req.Negative, Steps: req.Steps, SamplerID: req.Sampler, CFG: req.CFG,
		Seed: r.seed, Width: req.Width, Height: req.Height, ModelHash: r.modelHash[:10], Model: r.modelName()}
	for i, l := range r.loras {
		name := filepath.Base(l.Path)
		name = strings.TrimSuffix(name, filepath.Ext(name))
		p.LoraHashes = append(p.LoraHashes, LoraHash{Name: name, Hash: s.loraHash(l.Path, r.loraHashes[i])})
	}
	v := req.AppVersion
	if v == "" {
		v = "dev"
	}
	p.Version = "lorastudio " + v
	return p.String()
}

// lorasJSON is the history's record of the LoRAs.
func lorasJSON(r resolved) string {
	type rec struct {
		Path   string  `json:"path"`
		Weight float32 `json:"weight"`
		Hash   string  `json:"hash"`
	}
	out := []rec{}
	for i, l := range r.loras {
		out = append(out, rec{l.Path, l.Weight, r.loraHashes[i]})
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// Generator runs generations on a studio and keeps the last pipeline it
// loaded (model, config, LoRAs and their weights, on one device) for the
// next request, so a playground pays the load once. It is safe for
// concurrent use; generations run one at a time.
type Generator struct {
	s      *Studio
	mu     sync.Mutex
	kind   string         // the device kind b was opened for
	b      tensor.Backend // nil until the first generation that misses the cache
	dev    string         // b as recorded in the history
	p      *pipeline.Pipeline
	loaded string // what p holds: model, config and LoRA hashes and weights
	loads  int    // pipelines loaded, for tests
}

// NewGenerator returns a Generator on s; Close it to free the device.
func (s *Studio) NewGenerator() *Generator { return &Generator{s: s} }

// Close frees the kept pipeline and the device.
func (g *Generator) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.drop(true)
}

// drop closes the pipeline and, with backend, the device.
func (g *Generator) drop(backend bool) error {
	var err error
	if g.p != nil {
		err = g.p.Close()
		g.p, g.loaded = nil, ""
	}
	if backend && g.b != nil {
		if cerr := g.b.Close(); err == nil {
			err = cerr
		}
		g.b, g.kind, g.dev = nil, "", ""
	}
	return err
}

// pipeline returns a pipeline for r on the device kind, reusing the kept one
// when it matches.
func (g *Generator) pipeline(kind string, r resolved) (*pipeline.Pipeline, error) {
	want := r.modelHash + "|" + r.configHash
	for i, l := range r.loras {
		want += fmt.Sprintf("|%s:%s", r.loraHashes[i], strconv.FormatFloat(float64(l.Weight), 'g', -1, 32))
	}
	if g.b != nil && g.kind != kind {
		g.drop(true)
	}
	if g.p != nil && g.loaded == want {
		return g.p, nil
	}
	g.drop(false)
	if g.b == nil {
		b, err := device.Open(kind)
		if err != nil {
			return nil, err
		}
		g.b, g.kind, g.dev = b, kind, b.Name()
		if g.dev != "cpu" {
			g.dev += ":" + b.Device()
		}
	}
	opts := pipeline.Options{ConfigDir: r.configDir}
	for _, l := range r.loras {
		opts.LoRAs = append(opts.LoRAs, pipeline.LoRASpec{Path: l.Path, Weight: l.Weight})
	}
	p, err := pipeline.Load(g.b, r.model, opts)
	if err != nil {
		return nil, err
	}
	g.p, g.loaded = p, want
	g.loads++
	return p, nil
}

// Generate makes the image req asks for on a one-off Generator (see
// Generator.Generate), freeing the device afterwards.
func (s *Studio) Generate(ctx context.Context, req GenerateRequest, progress func(step, steps int, preview image.Image)) (GenerateResult, error) {
	g := s.NewGenerator()
	defer g.Close()
	return g.Generate(ctx, req, progress)
}

// Generate makes the image req asks for and writes it to req.Out as a PNG
// with an A1111 "parameters" text chunk. An identical earlier request (same
// model and LoRA contents, weights, prompts, seed, steps, CFG, sampler, size
// and engine version) is answered from the cache at once unless NoCache.
// Every generation, cached or not, is recorded in the history. A new cache
// entry may evict the least recently used ones (see TrimGenerationCache);
// a cache hit makes its entry the most recently used. progress, if
// not nil, is called after every step. Cancelling ctx stops at the next step
// and leaves no output. The output is written atomically.
func (g *Generator) Generate(ctx context.Context, req GenerateRequest, progress func(step, steps int, preview image.Image)) (GenerateResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.s
	start := time.Now()
	if req.Device == "" {
		req.Device = "auto"
	}
	if err := req.Validate(); err != nil {
		return GenerateResult{}, err
	}
	out, err := filepath.Abs(req.Out)
	if err != nil {
		return GenerateResult{}, fmt.Errorf("output %s: %w", req.Out, err)
	}
	r, err := s.resolve(req)
	if err != nil {
		return GenerateResult{}, err
	}
	res := GenerateResult{Path: out, Seed: r.seed, CacheKey: r.key, Model: r.model, Parameters: s.infotext(req, r)}
	stored := filepath.Join(s.dataDir, GenerationsDir, r.key+".png")
	if !req.NoCache {
		hit, dev, err := s.fromCache(r.key, out)
		if err != nil {
			return GenerateResult{}, err
		}
		if hit {
			res.FromCache, res.Device = true, dev
			return s.record(req, r, res, start)
		}
	}
	if err := ctx.Err(); err != nil {
		return GenerateResult{}, fmt.Errorf("generation cancelled: %w", err)
	}
	p, err := g.pipeline(req.Device, r)
	if err != nil {
		return GenerateResult{}, err
	}
	res.Device = g.dev
	preq := pipeline.Request{Prompt: req.Prompt, Negative: req.Negative, Steps: req.Steps, Guidance: req.CFG,
		Sampler: req.Sampler, Width: req.Width, Height: req.Height, Seed: r.seed}
	var cb func(pipeline.Progress)
	if progress != nil {
		cb = func(pr pipeline.Progress) { progress(pr.Step, pr.Steps, pr.Preview) }
	}
	img, err := p.Generate(ctx, preq, cb)
	if err != nil {
		if ctx.Err() != nil {
			return GenerateResult{}, fmt.Errorf("generation cancelled: %w", ctx.Err())
		}
		return GenerateResult{}, fmt.Errorf("generating with %s: %w", r.model, err)
	}
	data, err := encodePNG(out, img, res.Parameters)
	if err != nil {
		return GenerateResult{}, err
	}
	if err := os.MkdirAll(filepath.Dir(stored), 0o755); err != nil {
		return GenerateResult{}, fmt.Errorf("generation cache %s: %w", filepath.Dir(stored), err)
	}
	if err := writeFileAtomic(stored, data, 0o644); err != nil {
		return GenerateResult{}, err
	}
	if err := s.db.CachePut(r.key, stored); err != nil {
		return GenerateResult{}, err
	}
	if out != stored {
		if err := writeOutput(out, data); err != nil {
			return GenerateResult{}, err
		}
	}
	res, err = s.record(req, r, res, start)
	if err != nil {
		return res, err
	}
	// A new entry may take the cache over its cap: evict the least recently used.
	if _, err := s.TrimGenerationCache(r.key); err != nil {
		res.CacheErr = err
	}
	return res, nil
}

// fromCache copies the cached image of key to out, if the cache has one whose
// file still exists; dev is the device of the run that made it.
func (s *Studio) fromCache(key, out string) (hit bool, dev string, err error) {
	e, ok, err := s.db.CacheGet(key)
	if err != nil || !ok {
		return false, "", err
	}
	data, err := os.ReadFile(e.OutputPath)
	if err != nil {
		// The file is gone or unreadable: forget the entry and generate again.
		return false, "", s.db.CacheDelete(key)
	}
	if _, err := ParsePNGText(data); err != nil {
		return false, "", s.db.CacheDelete(key) // a damaged cache file is regenerated, never copied
	}
	if out != e.OutputPath {
		if err := writeOutput(out, data); err != nil {
			return false, "", err
		}
	}
	return true, "cache", nil
}

// writeOutput writes data atomically to out, creating its folder.
func writeOutput(out string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	return writeFileAtomic(out, data, 0o644)
}

// encodePNG encodes img as PNG with the parameters text chunk.
func encodePNG(name string, img image.Image, params string) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", name, err)
	}
	return InsertPNGText(name, buf.Bytes(), ParametersKey, params)
}

// record adds the generation to the history and finishes the result.
func (s *Studio) record(req GenerateRequest, r resolved, res GenerateResult, start time.Time) (GenerateResult, error) {
	res.Duration = time.Since(start)
	g, err := s.db.AddGeneration(storage.Generation{Model: r.model, LorasJSON: lorasJSON(r), Prompt: req.Prompt,
		Negative: req.Negative, Sampler: req.Sampler, Steps: req.Steps, CFG: req.CFG, Width: req.Width, Height: req.Height,
		Seed: int64(r.seed), Device: res.Device, OutputPath: res.Path, DurationMS: res.Duration.Milliseconds(),
		CacheKey: r.key, FromCache: res.FromCache})
	if err != nil {
		return GenerateResult{}, err
	}
	res.GenerationID = g.ID
	return res, nil
}

// Generations returns the generation history, newest first (all when limit <= 0).
func (s *Studio) Generations(limit int) ([]storage.Generation, error) { return s.db.Generations(limit) }
