package clip

import (
	"fmt"
	"os"
	"path/filepath"

	"lorastudio/engine/nn"
	"lorastudio/engine/safetensors"
	"lorastudio/engine/tensor"
)

// IgnoredKeys are stored names no forward reads and loading accepts quietly:
// transformers < 4.31 saved the position ids buffer.
var IgnoredKeys = []string{"text_model.embeddings.position_ids"}

// EncoderLayer is transformers' CLIPEncoderLayer (pre-norm):
// h += self_attn(layer_norm1(h)); h += mlp(layer_norm2(h)).
type EncoderLayer struct {
	LayerNorm1 *nn.LayerNorm
	SelfAttn   *nn.Attention // causal, q/k/v/out_proj with biases
	LayerNorm2 *nn.LayerNorm
	MLP        *nn.MLP // fc1, hidden_act, fc2
}

// TextModel is CLIPTextModel, or CLIPTextModelWithProjection when
// Config.WithProjection() (then TextProjection is set).
type TextModel struct {
	Config            Config
	TokenEmbedding    *nn.Embedding // text_model.embeddings.token_embedding (host)
	PositionEmbedding *nn.Embedding // text_model.embeddings.position_embedding (host)
	Layers            []*EncoderLayer
	FinalLayerNorm    *nn.LayerNorm
	TextProjection    *nn.Linear // text_projection (hidden → projection_dim, no bias) or nil

	b tensor.Backend
}

// Load builds the model described by cfg from src (names as in a
// transformers checkpoint: text_model.…, text_projection.weight) onto b.
// Loading is strict: a missing key, a shape mismatch or a key nothing reads
// (other than IgnoredKeys) is an error naming the key.
func Load(b tensor.Backend, src nn.Source, cfg Config) (*TextModel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clip: %v", err)
	}
	act, err := nn.ParseAct(cfg.HiddenAct)
	if err != nil {
		return nil, fmt.Errorf("clip: %v", err)
	}
	l := nn.NewLoader(b, src)
	m := &TextModel{Config: cfg, b: b}
	fail := func(err error) (*TextModel, error) {
		m.Free()
		return nil, fmt.Errorf("clip: %w", err)
	}
	c, eps := cfg.HiddenSize, float32(cfg.LayerNormEps)
	tm := l.Root().Sub("text_model")
	emb := tm.Sub("embeddings")
	if m.TokenEmbedding, err = nn.LoadEmbedding(emb.Sub("token_embedding"), cfg.VocabSize, c); err != nil {
		return fail(err)
	}
	if m.PositionEmbedding, err = nn.LoadEmbedding(emb.Sub("position_embedding"), cfg.MaxPositionEmbeddings, c); err != nil {
		return fail(err)
	}
	layers := tm.Sub("encoder").Sub("layers")
	for i := range cfg.NumHiddenLayers {
		s := layers.Index(i)
		el := &EncoderLayer{}
		m.Layers = append(m.Layers, el)
		if el.LayerNorm1, err = nn.LoadLayerNorm(s.Sub("layer_norm1"), c, eps); err != nil {
			return fail(err)
		}
		if el.SelfAttn, err = nn.LoadAttention(s.Sub("self_attn"), nn.CLIPAttentionNames, nn.AttentionConfig{
			QueryDim: c, Heads: cfg.NumAttentionHeads, HeadDim: cfg.HeadDim(), QKVBias: true, OutBias: true, Causal: true,
		}); err != nil {
			return fail(err)
		}
		if el.LayerNorm2, err = nn.LoadLayerNorm(s.Sub("layer_norm2"), c, eps); err != nil {
			return fail(err)
		}
		if el.MLP, err = nn.LoadMLP(s.Sub("mlp"), c, cfg.IntermediateSize, act); err != nil {
			return fail(err)
		}
	}
	if m.FinalLayerNorm, err = nn.LoadLayerNorm(tm.Sub("final_layer_norm"), c, eps); err != nil {
		return fail(err)
	}
	if cfg.WithProjection() {
		if m.TextProjection, err = nn.LoadLinear(l.Root().Sub("text_projection"), c, cfg.ProjectionDim, false); err != nil {
			return fail(err)
		}
	}
	if err := l.CheckUnused(IgnoredKeys...); err != nil {
		return fail(err)
	}
	return m, nil
}

// weightFiles are a text encoder folder's weight files in order of preference.
var weightFiles = []string{"model.fp16.safetensors", "model.safetensors"}

// OpenDir loads a diffusers text encoder folder (text_encoder/ or
// text_encoder_2/: config.json and model.safetensors or
// model.fp16.safetensors) onto b. The file is closed before returning: the
// model keeps no reference to it.
func OpenDir(b tensor.Backend, dir string) (*TextModel, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	var path string
	for _, name := range weightFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			path = filepath.Join(dir, name)
			break
		}
	}
	if path == "" {
		return nil, fmt.Errorf("clip: %s: no weights (want %s or %s)", dir, weightFiles[1], weightFiles[0])
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clip: %v", err)
	}
	defer f.Close()
	m, err := Load(b, nn.FileSource(f), cfg)
	if err != nil {
		return nil, fmt.Errorf("%w (loading %s)", err, path)
	}
	return m, nil
}

// Backend returns the backend the model's weights live on.
func (m *TextModel) Backend() tensor.Backend { return m.b }

// Free releases every device tensor of the model (and its host embedding
// tables); the model cannot be used afterwards.
func (m *TextModel) Free() {
	for _, e := range []*nn.Embedding{m.TokenEmbedding, m.PositionEmbedding} {
		if e != nil {
			e.Free()
		}
	}
	for _, l := range m.Layers {
		if l.LayerNorm1 != nil {
			l.LayerNorm1.Free()
		}
		if l.SelfAttn != nil {
			l.SelfAttn.Free()
		}
		if l.LayerNorm2 != nil {
			l.LayerNorm2.Free()
		}
		if l.MLP != nil {
			l.MLP.Free()
		}
	}
	if m.FinalLayerNorm != nil {
		m.FinalLayerNorm.Free()
	}
	if m.TextProjection != nil {
		m.TextProjection.Free()
	}
	m.Layers = nil
	m.TokenEmbedding, m.PositionEmbedding, m.FinalLayerNorm, m.TextProjection = nil, nil, nil, nil
}

// Options select what Forward computes and keeps.
type Options struct {
	// AllHidden keeps every hidden state in Output.Hidden (embeddings, then
	// each layer's output).
	AllHidden bool
	// PenultimateOnly stops after hidden_states[-2]: the last layer, the
	// final layer norm, the pooled output and the projection are skipped
	// (SDXL's first text encoder needs nothing else).
	PenultimateOnly bool
}

// Output is what Forward returns; every tensor is owned by the caller (Free).
type Output struct {
	// Hidden holds hidden_states[0..L] with Options.AllHidden, else nil.
	Hidden []*tensor.Tensor
	// Penultimate is hidden_states[-2] (B, N, C), without the final layer norm.
	Penultimate *tensor.Tensor
	// LastHidden is last_hidden_state (B, N, C), after the final layer norm.
	LastHidden *tensor.Tensor
	// Pooled is pooler_output (B, C): LastHidden at the end-token position.
	Pooled *tensor.Tensor
	// TextEmbeds is text_projection(Pooled) (B, projection_dim) for
	// CLIPTextModelWithProjection, else nil.
	TextEmbeds *tensor.Tensor
}

// Free releases every tensor of the output.
func (o *Output) Free() {
	seen := map[*tensor.Tensor]bool{}
	for _, t := range append(o.Hidden, o.Penultimate, o.LastHidden, o.Pooled, o.TextEmbeds) {
		if t != nil && !seen[t] && !t.Freed() {
			seen[t] = true
			t.Free()
		}
	}
	*o = Output{}
}

// EOSPositions returns, per sequence, the position transformers pools at:
// with eos_token_id 2 (the SDXL configs, written before transformers knew
// the real end token) the first position of the highest id — the end token
// <|endoftext|> 49407 — else the first position holding eos_token_id.
func EOSPositions(c Config, ids [][]int) ([]int, error) {
	out := make([]int, len(ids))
	for b, seq := range ids {
		if len(seq) == 0 {
			return nil, fmt.Errorf("clip: sequence %d is empty", b)
		}
		pos := -1
		if c.EosTokenID == 2 {
			pos = 0
			for i, id := range seq {
				if id > seq[pos] {
					pos = i
				}
			}
		} else {
			for i, id := range seq {
				if id == c.EosTokenID {
					pos = i
					break
				}
			}
			if pos < 0 {
				return nil, fmt.Errorf("clip: sequence %d has no end token %d", b, c.EosTokenID)
			}
		}
		out[b] = pos
	}
	return out, nil
}

// Embeddings returns hidden_states[0] (B, N, C) = token_embedding(ids) +
// position_embedding(0..N-1), computed on the host and uploaded.
func (m *TextModel) Embeddings(ids [][]int) (*tensor.Tensor, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("clip: no sequences")
	}
	n := len(ids[0])
	if n == 0 || n > m.Config.MaxPositionEmbeddings {
		return nil, fmt.Errorf("clip: sequence of %d tokens, want 1..%d", n, m.Config.MaxPositionEmbeddings)
	}
	c := m.Config.HiddenSize
	pos := make([]int, n)
	for i := range pos {
		pos[i] = i
	}
	pe, err := m.PositionEmbedding.Rows(pos)
	if err != nil {
		return nil, fmt.Errorf("clip: %v", err)
	}
	all := make([]float32, 0, len(ids)*n*c)
	for b, seq := range ids {
		if len(seq) != n {
			return nil, fmt.Errorf("clip: sequence %d has %d tokens, sequence 0 has %d", b, len(seq), n)
		}
		te, err := m.TokenEmbedding.Rows(seq)
		if err != nil {
			return nil, fmt.Errorf("clip: sequence %d: %v", b, err)
		}
		for i := range te {
			te[i] += pe[i]
		}
		all = append(all, te...)
	}
	return m.b.Upload(all, tensor.Shape{len(ids), n, c}, tensor.F32)
}

// Forward runs the text model on ids (B sequences of equal length N ≤
// max_position_embeddings) with the causal mask and no padding mask (as
// SDXL calls it).
func (m *TextModel) Forward(ids [][]int, opt Options) (*Output, error) {
	if m.FinalLayerNorm == nil {
		return nil, fmt.Errorf("clip: text model used after Free")
	}
	h, err := m.Embeddings(ids) // h is (B, N, C)
	if err != nil {
		return nil, err
	}
	out := &Output{}
	fail := func(err error) (*Output, error) {
		if h != nil && !h.Freed() {
			h.Free()
		}
		out.Free()
		return nil, err
	}
	if opt.AllHidden {
		out.Hidden = append(out.Hidden, h)
	}
	nl := len(m.Layers)
	last := nl
	if opt.PenultimateOnly {
		last = nl - 1
	}
	for i := range last {
		if i == nl-1 {
			if out.Penultimate, err = keepView(h); err != nil { // hidden_states[-2]
				return fail(err)
			}
		}
		next, err := m.Layers[i].Forward(h) // next is (B, N, C)
		if err != nil {
			return fail(fmt.Errorf("clip: layer %d: %w", i, err))
		}
		if !opt.AllHidden {
			h.Free()
		}
		h = next
		if opt.AllHidden {
			out.Hidden = append(out.Hidden, h)
		}
	}
	if opt.PenultimateOnly {
		out.Penultimate = h
		if opt.AllHidden {
			if out.Penultimate, err = keepView(h); err != nil {
				return fail(err)
			}
		}
		return out, nil
	}
	if out.LastHidden, err = m.FinalLayerNorm.Forward(h); err != nil { // (B, N, C)
		return fail(err)
	}
	if !opt.AllHidden {
		h.Free()
	}
	h = nil
	pos, err := EOSPositions(m.Config, ids)
	if err != nil {
		return fail(err)
	}
	if out.Pooled, err = gatherRows(m.b, out.LastHidden, pos); err != nil { // (B, C)
		return fail(err)
	}
	if m.TextProjection != nil {
		if out.TextEmbeds, err = m.TextProjection.Forward(out.Pooled); err != nil { // (B, P)
			return fail(err)
		}
	}
	return out, nil
}

// keepView returns a view of t that outlives t.Free.
func keepView(t *tensor.Tensor) (*tensor.Tensor, error) { return t.Reshape(t.Shape()...) }

// gatherRows returns x[b, pos[b], :] for x (B, N, C): (B, C).
func gatherRows(b tensor.Backend, x *tensor.Tensor, pos []int) (*tensor.Tensor, error) {
	rows := make([]*tensor.Tensor, 0, len(pos))
	defer func() { tensor.FreeAll(rows...) }()
	for i, p := range pos {
		xb, err := b.Slice(x, 0, i, i+1) // (1, N, C)
		if err != nil {
			return nil, err
		}
		r, err := b.Slice(xb, 1, p, p+1) // (1, 1, C)
		xb.Free()
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	var cat *tensor.Tensor
	var err error
	if len(rows) == 1 {
		cat, err = keepView(rows[0])
	} else {
		cat, err = b.Concat(0, rows...) // (B, 1, C)
	}
	if err != nil {
		return nil, err
	}
	defer cat.Free()
	return cat.Reshape(len(pos), x.Dim(2))
}

// Forward runs the layer on h (B, N, C).
func (l *EncoderLayer) Forward(h *tensor.Tensor) (*tensor.Tensor, error) {
	b := h.Backend()
	x, err := l.LayerNorm1.Forward(h) // (B, N, C)
	if err != nil {
		return nil, err
	}
	a, err := l.SelfAttn.Forward(x, nil) // (B, N, C), causal
	x.Free()
	if err != nil {
		return nil, err
	}
	h1, err := b.Binary(tensor.Add, h, a) // residual
	a.Free()
	if err != nil {
		return nil, err
	}
	x, err = l.LayerNorm2.Forward(h1) // (B, N, C)
	if err != nil {
		h1.Free()
		return nil, err
	}
	f, err := l.MLP.Forward(x) // (B, N, C)
	x.Free()
	if err != nil {
		h1.Free()
		return nil, err
	}
	h2, err := b.Binary(tensor.Add, h1, f) // residual
	tensor.FreeAll(h1, f)
	return h2, err
}
