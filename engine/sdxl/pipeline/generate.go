package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"strings"

	"lorastudio/engine/clip"
	"lorastudio/engine/rng"
	"lorastudio/engine/sched"
	"lorastudio/engine/tensor"
	"lorastudio/engine/vae"
)

// Request is one text-to-image generation.
type Request struct {
	Prompt string
	// Negative is the negative prompt; nil means none (zeros when the model
	// says force_zeros_for_empty_prompt, as diffusers' None), while "" is
	// encoded like any prompt.
	Negative *string
	Steps    int
	// Guidance is the classifier-free guidance scale; at 1 or below the
	// UNet runs on the positive prompt alone (diffusers'
	// do_classifier_free_guidance = guidance > 1).
	Guidance float64
	// Sampler is one of engine/sched's kinds ("dpmpp_2m", "dpmpp_2m_karras",
	// "euler", "euler_a", "ddpm"); "" means "dpmpp_2m".
	Sampler string
	// Width and Height are the image size in pixels, multiples of 8 as in
	// diffusers; a latent size the UNet cannot halve evenly is upsampled back
	// to its skip connection's size, as diffusers does.
	Width, Height int
	// Seed seeds torch.Generator("cpu").manual_seed(Seed): the initial
	// latents and every ancestral step's noise.
	Seed uint64
}

// DefaultRequest returns the tutorial's defaults: 25 steps of DPM-Solver++
// 2M at guidance 7, 1024×1024, no negative prompt, seed 0.
func DefaultRequest() Request {
	return Request{Steps: 25, Guidance: 7, Sampler: "dpmpp_2m", Width: 1024, Height: 1024}
}

// Progress reports one finished step.
type Progress struct {
	Step, Steps int // Step counts from 1 to Steps
	// Preview is a cheap picture of the latents after the step (SDXL's
	// linear latent→RGB approximation at 1/8 of the image size), or nil.
	Preview image.Image
	// Latents are the latents after the step, (1, C, H/8, W/8) row-major;
	// valid during the callback only.
	Latents []float32
}

// Latents is a generation's result before decoding.
type Latents struct {
	Data  []float32    // (1, C, H/8, W/8) row-major
	Shape tensor.Shape // (1, C, H/8, W/8)
}

// cond is the UNet's conditioning for a generation, on the device: the
// batch is [negative, positive] with classifier-free guidance, [positive]
// without.
type cond struct {
	hidden *tensor.Tensor // encoder_hidden_states (B, L, C1+C2)
	pooled *tensor.Tensor // text_embeds (B, P)
	timeID *tensor.Tensor // time_ids (B, 6)
}

func (c *cond) free() { tensor.FreeAll(c.hidden, c.pooled, c.timeID) }

// Generate runs a whole generation and returns the decoded image. progress,
// when not nil, is called after every step; ctx is checked before every
// step (and before encoding and decoding), so a cancelled generation stops
// within one step with its device memory freed.
func (p *Pipeline) Generate(ctx context.Context, req Request, progress func(Progress)) (*image.NRGBA, error) {
	lat, err := p.GenerateLatents(ctx, req, progress)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	img, err := p.DecodeLatents(lat)
	if err != nil {
		return nil, err
	}
	return ToNRGBA(img, req.Width, req.Height)
}

// check validates a request against the model.
func (p *Pipeline) check(req *Request) error {
	if req.Sampler == "" {
		req.Sampler = "dpmpp_2m"
	}
	if req.Steps < 1 {
		return fmt.Errorf("pipeline: %d steps: need at least 1", req.Steps)
	}
	if req.Width <= 0 || req.Height <= 0 || req.Width%8 != 0 || req.Height%8 != 0 {
		return fmt.Errorf("pipeline: size %dx%d: width and height must be positive multiples of 8", req.Width, req.Height)
	}
	if math.IsNaN(req.Guidance) || math.IsInf(req.Guidance, 0) {
		return fmt.Errorf("pipeline: guidance %v is not a number", req.Guidance)
	}
	return nil
}

// scheduler builds the request's sampler from the model's scheduler config.
func (p *Pipeline) scheduler(req Request) (sched.Scheduler, error) {
	cfg := sched.SDXLConfig()
	if raw := p.cfg.Scheduler.Raw; raw != nil {
		data, err := json.Marshal(raw)
		if err != nil {
			return nil, fmt.Errorf("pipeline: scheduler config: %v", err)
		}
		if cfg, err = sched.ParseConfig(data); err != nil {
			return nil, fmt.Errorf("pipeline: %s: scheduler config: %v", p.src.Path(), err)
		}
	}
	s, err := sched.New(req.Sampler, cfg, req.Steps)
	if err != nil {
		return nil, fmt.Errorf("pipeline: sampler %q (want one of %s): %w", req.Sampler, strings.Join(sched.Kinds, ", "), err)
	}
	return s, nil
}

// InitialLatents returns diffusers' prepare_latents: torch.randn(shape,
// generator) × initNoiseSigma, drawn from g (the generator goes on to the
// sampler's noise).
func InitialLatents(g *rng.Generator, shape tensor.Shape, initNoiseSigma float64) []float32 {
	x := g.Randn(shape.Numel())
	s := float32(initNoiseSigma)
	for i := range x {
		x[i] = float32(x[i] * s)
	}
	return x
}

// GenerateLatents runs the prompt encoding and the sampling loop and
// returns the final latents (before division by the VAE scaling factor).
func (p *Pipeline) GenerateLatents(ctx context.Context, req Request, progress func(Progress)) (*Latents, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unet == nil {
		return nil, fmt.Errorf("pipeline: used after Close")
	}
	if err := p.check(&req); err != nil {
		return nil, err
	}
	s, err := p.scheduler(req)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := req.Guidance > 1
	c, err := p.encode(req, cfg)
	if err != nil {
		return nil, err
	}
	defer c.free()

	h, w := req.Height/p.vae.Factor(), req.Width/p.vae.Factor()
	ch := p.unet.Config().InChannels
	shape := tensor.Shape{1, ch, h, w}
	n := shape.Numel()
	g := rng.New(req.Seed)
	x := InitialLatents(g, shape, s.InitNoiseSigma()) // (1, C, h, w)
	batch := 1
	if cfg {
		batch = 2
	}
	gs := float32(req.Guidance)
	ts := s.Timesteps()
	in := make([]float32, batch*n) // (B, C, h, w)
	for i, t := range ts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		copy(in, x)
		s.ScaleModelInput(in[:n], i)
		if cfg {
			copy(in[n:], in[:n]) // cat([latents] * 2), scaled alike
		}
		out, err := p.predict(in, tensor.Shape{batch, ch, h, w}, float32(t), c) // (B, C, h, w)
		if err != nil {
			return nil, fmt.Errorf("pipeline: step %d/%d: %w", i+1, len(ts), err)
		}
		eps := out[:n]
		if cfg { // uncond + guidance · (text − uncond), in float32 as torch
			uncond, text := out[:n], out[n:]
			for j := range eps {
				eps[j] = uncond[j] + float32(gs*float32(text[j]-uncond[j]))
			}
		}
		if x, err = s.Step(eps, x, i, g.Randn); err != nil {
			return nil, fmt.Errorf("pipeline: step %d/%d: %w", i+1, len(ts), err)
		}
		if progress != nil {
			progress(Progress{Step: i + 1, Steps: len(ts), Preview: Preview(x, ch, h, w), Latents: x})
		}
	}
	return &Latents{Data: x, Shape: shape}, nil
}

// predict runs the UNet on host latents (B, C, h, w) at timestep t and
// returns its output on the host.
func (p *Pipeline) predict(in []float32, shape tensor.Shape, t float32, c *cond) ([]float32, error) {
	x, err := p.b.Upload(in, shape, tensor.F32)
	if err != nil {
		return nil, err
	}
	defer x.Free()
	out, err := p.unet.Forward(x, []float32{t}, c.hidden, c.pooled, c.timeID)
	if err != nil {
		return nil, err
	}
	defer out.Free()
	return p.b.Download(out)
}

// encode loads the text encoders, encodes the prompts, frees the encoders
// and uploads the conditioning (the negative half first with guidance).
func (p *Pipeline) encode(req Request, withCFG bool) (*cond, error) {
	e, err := p.openEncoders()
	if err != nil {
		return nil, err
	}
	pos, neg, err := e.Encode(req.Prompt, req.Negative)
	e.Free()
	if err != nil {
		return nil, fmt.Errorf("pipeline: encoding the prompts: %w", err)
	}
	defer pos.Free()
	defer neg.Free()
	halves := []*clip.PromptEmbeds{pos}
	if withCFG {
		halves = []*clip.PromptEmbeds{neg, pos}
	}
	c := &cond{}
	fail := func(err error) (*cond, error) {
		c.free()
		return nil, fmt.Errorf("pipeline: conditioning: %w", err)
	}
	var hidden, pooled []*tensor.Tensor
	for _, h := range halves {
		hidden, pooled = append(hidden, h.Embeds), append(pooled, h.Pooled)
	}
	if c.hidden, err = p.b.Concat(0, hidden...); err != nil { // (B, L, C1+C2)
		return fail(err)
	}
	if c.pooled, err = p.b.Concat(0, pooled...); err != nil { // (B, P)
		return fail(err)
	}
	// add_time_ids: original size, crop top-left, target size (the negative
	// half's defaults to the same)
	hh, ww := float32(req.Height), float32(req.Width)
	var ids []float32
	for range halves {
		ids = append(ids, hh, ww, 0, 0, hh, ww)
	}
	if c.timeID, err = p.b.Upload(ids, tensor.Shape{len(halves), 6}, tensor.F32); err != nil { // (B, 6)
		return fail(err)
	}
	return c, nil
}

// maxTensorBytes is the largest activation the VAE may create in one
// tensor on the pipeline's backend: the backend's own limit (a GL context's
// storage-buffer binding), else 1 GiB (bounding host memory on the CPU).
func (p *Pipeline) maxTensorBytes() int64 {
	if p.tensorLimit > 0 {
		return p.tensorLimit
	}
	if l := p.b.MaxTensorBytes(); l > 0 {
		return l
	}
	return 1 << 30
}

// DecodeLatents divides the latents by the VAE's scaling factor, decodes
// them (in tiles when one pass would exceed the backend's tensor limit) and
// returns the image as diffusers' output_type "np": (H, W, 3) row-major,
// (x/2 + 0.5) clamped to [0, 1].
func (p *Pipeline) DecodeLatents(l *Latents) ([]float32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.vae == nil {
		return nil, fmt.Errorf("pipeline: used after Close")
	}
	if l == nil || len(l.Shape) != 4 || l.Shape[0] != 1 || l.Shape.Numel() != len(l.Data) {
		return nil, fmt.Errorf("pipeline: latents: want one (1, C, h, w) latent with matching data")
	}
	sf := p.vae.ScalingFactor()
	z := make([]float32, len(l.Data))
	for i, v := range l.Data {
		z[i] = v / sf
	}
	zt, err := p.b.Upload(z, l.Shape, tensor.F32) // (1, C, h, w)
	if err != nil {
		return nil, fmt.Errorf("pipeline: decode: %w", err)
	}
	defer zt.Free()
	f := p.vae.Factor()
	H, W := l.Shape[2]*f, l.Shape[3]*f
	limit := p.maxTensorBytes()
	var dec *tensor.Tensor
	if vae.LargestActivation(p.cfg.VAE, max(H, W)) <= limit {
		dec, err = p.vae.Decode(zt)
	} else {
		var t vae.Tiling
		if t, err = vae.TilingWithin(p.cfg.VAE, limit); err == nil {
			dec, err = p.vae.DecodeTiled(zt, t)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: decode: %w", err)
	}
	defer dec.Free()
	v, err := p.b.Download(dec) // (1, 3, H, W)
	if err != nil {
		return nil, fmt.Errorf("pipeline: decode: %w", err)
	}
	if dec.Dim(1) != 3 || dec.Dim(2) != H || dec.Dim(3) != W {
		return nil, fmt.Errorf("pipeline: decode gave %s, want (1, 3, %d, %d)", dec.Shape(), H, W)
	}
	img := make([]float32, H*W*3) // (H, W, 3)
	for c := range 3 {
		for i, x := range v[c*H*W : (c+1)*H*W] {
			img[i*3+c] = min(max(x/2+0.5, 0), 1)
		}
	}
	return img, nil
}

// ToNRGBA converts an (H, W, 3) image in [0, 1] to 8 bits as diffusers'
// numpy_to_pil does: (x·255).round() in float32, halves to even.
func ToNRGBA(img []float32, w, h int) (*image.NRGBA, error) {
	if len(img) != w*h*3 {
		return nil, fmt.Errorf("pipeline: image has %d values, want %d×%d×3", len(img), w, h)
	}
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range w * h {
		o := out.Pix[i*4 : i*4+4]
		for c := range 3 {
			v := math.RoundToEven(float64(float32(img[i*3+c] * 255)))
			o[c] = uint8(min(max(v, 0), 255))
		}
		o[3] = 255
	}
	return out, nil
}

// latentRGB is the common linear approximation of SDXL's VAE: rgb[k] =
// Σ_c latent[c]·latentRGB[c][k] + latentRGBBias[k], in [-1, 1].
var (
	latentRGB = [4][3]float32{
		{0.3651, 0.4232, 0.4341},
		{-0.2533, -0.0042, 0.1068},
		{0.1076, 0.1111, -0.0362},
		{-0.3165, -0.2492, -0.2188},
	}
	latentRGBBias = [3]float32{0.1084, -0.0175, -0.0011}
)

// Preview returns a w×h picture of latents (1, ch, h, w) through SDXL's
// linear latent→RGB approximation, or nil when ch is not 4.
func Preview(latents []float32, ch, h, w int) image.Image {
	if ch != len(latentRGB) || len(latents) < ch*h*w {
		return nil
	}
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	hw := h * w
	for i := range hw {
		var rgb [3]float32
		for k := range 3 {
			v := latentRGBBias[k]
			for c := range ch {
				v += latents[c*hw+i] * latentRGB[c][k]
			}
			rgb[k] = min(max((v+1)/2, 0), 1)
		}
		out.SetNRGBA(i%w, i/w, color.NRGBA{uint8(rgb[0]*255 + 0.5), uint8(rgb[1]*255 + 0.5), uint8(rgb[2]*255 + 0.5), 255})
	}
	return out
}
