package studio

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// ComfyPromptKey is the PNG text keyword ComfyUI stores its executed graph under (API form:
// node id → class_type and inputs).
const ComfyPromptKey = "prompt"

// ImportedParams are the generation parameters read from an image made elsewhere. Fields
// that the image did not give, or that do not map to what LoRA Studio runs, are left unset
// (nil or zero) and described in Unmapped.
type ImportedParams struct {
	Source   string // "A1111" (also Civitai and LoRA Studio) or "ComfyUI"
	Prompt   *string
	Negative *string
	Steps    int     // 0 = not given
	CFG      float64 // < 0 = not given
	Sampler  string  // one of Samplers; "" = not given or not one we run
	Seed     *uint64
	Width    int // 0 = not given
	Height   int
	// Unmapped lists, one line each, what the image holds that could not be applied: a
	// model or LoRA known only by name or hash, a sampler we do not run, other settings.
	Unmapped []string
}

// ImportPNGParams reads the generation parameters of a PNG file's data: A1111's
// "parameters" text chunk (A1111, Civitai, LoRA Studio) first, else ComfyUI's "prompt" graph.
// name labels errors.
func ImportPNGParams(name string, data []byte) (ImportedParams, error) {
	text, err := ParsePNGText(data)
	if err != nil {
		return ImportedParams{}, fmt.Errorf("%s: %w", name, err)
	}
	if p, ok := text[ParametersKey]; ok {
		ip, err := importA1111(p)
		if err != nil {
			return ImportedParams{}, fmt.Errorf("%s: %w", name, err)
		}
		return ip, nil
	}
	if g, ok := text[ComfyPromptKey]; ok {
		ip, err := importComfy(g)
		if err != nil {
			return ImportedParams{}, fmt.Errorf("%s: %w", name, err)
		}
		return ip, nil
	}
	keys := make([]string, 0, len(text))
	for k := range text {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ImportedParams{}, fmt.Errorf("%s: the PNG holds no generation parameters (no text chunks)", name)
	}
	return ImportedParams{}, fmt.Errorf("%s: the PNG holds no generation parameters (no %q or %q text; it has %s)",
		name, ParametersKey, ComfyPromptKey, strings.Join(keys, ", "))
}

// importA1111 maps A1111 infotext.
func importA1111(text string) (ImportedParams, error) {
	p, err := ParseA1111(text)
	if err != nil {
		return ImportedParams{}, err
	}
	ip := ImportedParams{Source: "A1111", Prompt: &p.Prompt, Negative: p.Negative, Steps: p.Steps, CFG: p.CFG,
		Sampler: p.SamplerID, Width: p.Width, Height: p.Height}
	if p.Seed <= math.MaxInt64 && int64(p.Seed) >= 0 {
		seed := p.Seed
		ip.Seed = &seed
	}
	if p.SamplerID == "" && p.Sampler != "" {
		ip.Unmapped = append(ip.Unmapped, fmt.Sprintf("Sampler: %s (not one LoRA Studio runs; kept the current sampler)", p.Sampler))
	}
	if p.Model != "" || p.ModelHash != "" {
		ip.Unmapped = append(ip.Unmapped, fmt.Sprintf("Model: %s (hash %s): pick the model file yourself", p.Model, p.ModelHash))
	}
	for _, l := range p.LoraHashes {
		ip.Unmapped = append(ip.Unmapped, fmt.Sprintf("LoRA: %s (hash %s): add the LoRA file yourself", l.Name, l.Hash))
	}
	extra := make([]string, 0, len(p.Extra))
	for k, v := range p.Extra {
		extra = append(extra, k+": "+v)
	}
	sort.Strings(extra)
	ip.Unmapped = append(ip.Unmapped, extra...)
	if ip.Width%8 != 0 || ip.Height%8 != 0 {
		ip.Unmapped = append(ip.Unmapped, fmt.Sprintf("Size: %dx%d (not multiples of 8; kept the current size)", ip.Width, ip.Height))
		ip.Width, ip.Height = 0, 0
	}
	return ip, nil
}

// comfyNode is one node of ComfyUI's API-form graph.
type comfyNode struct {
	Class  string                     `json:"class_type"`
	Inputs map[string]json.RawMessage `json:"inputs"`
}

// comfySampler maps ComfyUI's sampler_name and scheduler to our sampler, "" when we do not
// run that pair (Karras sigmas only with DPM++ 2M; "normal" is the plain schedule).
func comfySampler(name, scheduler string) string {
	switch scheduler {
	case "", "normal":
		switch name {
		case "euler":
			return "euler"
		case "euler_ancestral":
			return "euler_a"
		case "dpmpp_2m":
			return "dpmpp_2m"
		}
	case "karras":
		if name == "dpmpp_2m" {
			return "dpmpp_2m_karras"
		}
	}
	return ""
}

// importComfy maps the sampler node of a ComfyUI graph and what it links to.
func importComfy(text string) (ImportedParams, error) {
	var graph map[string]comfyNode
	if err := json.Unmarshal([]byte(text), &graph); err != nil {
		return ImportedParams{}, fmt.Errorf("ComfyUI prompt: not a node graph: %w", err)
	}
	ids := make([]string, 0, len(graph))
	for id := range graph {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { // numeric ids in number order
		a, ea := strconv.Atoi(ids[i])
		b, eb := strconv.Atoi(ids[j])
		if ea == nil && eb == nil {
			return a < b
		}
		return ids[i] < ids[j]
	})
	ip := ImportedParams{Source: "ComfyUI", CFG: -1}
	var sampler *comfyNode
	for _, id := range ids {
		n := graph[id]
		switch n.Class {
		case "KSampler", "KSamplerAdvanced":
			if sampler != nil {
				ip.Unmapped = append(ip.Unmapped, fmt.Sprintf("another sampler node (%s, node %s): only the first is used", n.Class, id))
				continue
			}
			nn := n
			sampler = &nn
		case "CheckpointLoaderSimple", "CheckpointLoader":
			ip.Unmapped = append(ip.Unmapped, fmt.Sprintf("Model: %s: pick the model file yourself", comfyString(n, "ckpt_name")))
		case "LoraLoader", "LoraLoaderModelOnly":
			ip.Unmapped = append(ip.Unmapped, fmt.Sprintf("LoRA: %s at %s: add the LoRA file yourself", comfyString(n, "lora_name"), comfyNumber(n, "strength_model")))
		}
	}
	if sampler == nil {
		return ImportedParams{}, errors.New("ComfyUI prompt: the graph has no KSampler node")
	}
	var iv struct {
		Seed      *uint64  `json:"seed"`
		NoiseSeed *uint64  `json:"noise_seed"`
		Steps     *int     `json:"steps"`
		CFG       *float64 `json:"cfg"`
		Sampler   *string  `json:"sampler_name"`
		Scheduler *string  `json:"scheduler"`
		Denoise   *float64 `json:"denoise"`
	}
	raw, _ := json.Marshal(sampler.Inputs) // re-encoding decoded JSON cannot fail
	json.Unmarshal(raw, &iv)               // a field of another type stays nil and is reported below
	if iv.Seed == nil {
		iv.Seed = iv.NoiseSeed
	}
	if iv.Seed != nil && *iv.Seed <= math.MaxInt64 {
		ip.Seed = iv.Seed
	} else {
		ip.Unmapped = append(ip.Unmapped, "Seed: not a number in the graph (linked from another node?)")
	}
	if iv.Steps != nil {
		ip.Steps = *iv.Steps
	}
	if iv.CFG != nil {
		ip.CFG = *iv.CFG
	}
	if iv.Sampler != nil {
		sched := ""
		if iv.Scheduler != nil {
			sched = *iv.Scheduler
		}
		if ip.Sampler = comfySampler(*iv.Sampler, sched); ip.Sampler == "" {
			ip.Unmapped = append(ip.Unmapped, fmt.Sprintf("Sampler: %s, scheduler %s (not one LoRA Studio runs; kept the current sampler)", *iv.Sampler, sched))
		}
	}
	if iv.Denoise != nil && *iv.Denoise != 1 {
		ip.Unmapped = append(ip.Unmapped, fmt.Sprintf("Denoise: %g (LoRA Studio makes images from noise: denoise 1)", *iv.Denoise))
	}
	ip.Prompt = comfyText(graph, sampler.Inputs["positive"], "Prompt", &ip.Unmapped)
	ip.Negative = comfyText(graph, sampler.Inputs["negative"], "Negative prompt", &ip.Unmapped)
	if latent, ok := comfyLink(graph, sampler.Inputs["latent_image"]); ok && latent.Class == "EmptyLatentImage" {
		var li struct {
			Width  int `json:"width"`
			Height int `json:"height"`
		}
		b, _ := json.Marshal(latent.Inputs)
		if json.Unmarshal(b, &li) == nil && li.Width%8 == 0 && li.Height%8 == 0 && li.Width > 0 && li.Height > 0 {
			ip.Width, ip.Height = li.Width, li.Height
		} else {
			ip.Unmapped = append(ip.Unmapped, "Size: the EmptyLatentImage size is not positive multiples of 8")
		}
	} else {
		ip.Unmapped = append(ip.Unmapped, "Size: the sampler does not start from an EmptyLatentImage (image-to-image?)")
	}
	return ip, nil
}

// comfyLink follows an input that links to another node (["id", output]).
func comfyLink(graph map[string]comfyNode, in json.RawMessage) (comfyNode, bool) {
	var link []json.RawMessage
	if json.Unmarshal(in, &link) != nil || len(link) != 2 {
		return comfyNode{}, false
	}
	var id string
	if json.Unmarshal(link[0], &id) != nil {
		var n int
		if json.Unmarshal(link[0], &n) != nil {
			return comfyNode{}, false
		}
		id = strconv.Itoa(n)
	}
	n, ok := graph[id]
	return n, ok
}

// comfyText reads the text of the encoder node a sampler's conditioning input links to.
func comfyText(graph map[string]comfyNode, in json.RawMessage, what string, unmapped *[]string) *string {
	n, ok := comfyLink(graph, in)
	if !ok {
		*unmapped = append(*unmapped, what+": not linked to a text encoder node")
		return nil
	}
	switch n.Class {
	case "CLIPTextEncode":
		if t, ok := comfyStringOK(n, "text"); ok {
			return &t
		}
	case "CLIPTextEncodeSDXL":
		g, okg := comfyStringOK(n, "text_g")
		l, okl := comfyStringOK(n, "text_l")
		if okg && okl {
			if l != g && l != "" {
				*unmapped = append(*unmapped, fmt.Sprintf("%s: a separate text_l %q (LoRA Studio gives both encoders text_g)", what, l))
			}
			return &g
		}
	}
	*unmapped = append(*unmapped, fmt.Sprintf("%s: comes from a %s node whose text is not plain", what, n.Class))
	return nil
}

// comfyStringOK returns a node's string input.
func comfyStringOK(n comfyNode, key string) (string, bool) {
	var s string
	if json.Unmarshal(n.Inputs[key], &s) != nil {
		return "", false
	}
	return s, true
}

// comfyString returns a node's string input or "?".
func comfyString(n comfyNode, key string) string {
	if s, ok := comfyStringOK(n, key); ok {
		return s
	}
	return "?"
}

// comfyNumber returns a node's number input as written, or "?".
func comfyNumber(n comfyNode, key string) string {
	var f float64
	if json.Unmarshal(n.Inputs[key], &f) != nil {
		return "?"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
