package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"lorastudio/engine/safetensors"
	"lorastudio/engine/sdxl"
	"lorastudio/engine/train/dataset"
)

// A run directory holds:
//
//	checkpoints/state-NNNNNN.safetensors  resumable state after step NNNNNN
//	checkpoints/lora-NNNNNN.safetensors   the LoRA at that step (a folder for peft)
//	samples/step-NNNNNN-P.png             sample images
//
// A state file is written after its LoRA file, each atomically (temporary
// file, fsync, rename), so a state under its final name always has its LoRA
// beside it and is whole. The two newest states are kept: a state that is
// damaged later (a disk error, a user's truncation) still leaves the one
// before it to resume from.

const (
	checkpointDir = "checkpoints"
	samplesDir    = "samples"
	keepStates    = 2
	stateFormat   = "lorastudio-train-state-1"
)

var stateName = regexp.MustCompile(`^state-(\d+)\.safetensors$`)

// statePath returns the state file of step in runDir.
func statePath(runDir string, step int) string {
	return filepath.Join(runDir, checkpointDir, fmt.Sprintf("state-%06d.safetensors", step))
}

// identity says which model and dataset a run trains, to refuse a resume
// on other ones.
type identity struct {
	// Model is the model's content hash when the caller gave one
	// (Config.ModelHash), else its path and UNet config hash.
	Model string `json:"model"`
	// Dataset is a hash over every image's path, size, repeats and caption;
	// Images lists "path (size bytes, ×repeats, caption hash)" for messages.
	Dataset string   `json:"dataset"`
	Images  []string `json:"images"`
}

// newIdentity computes the identity of a run over src and imgs.
func newIdentity(cfg Config, src *sdxl.Source, imgs []dataset.Image) (identity, error) {
	var id identity
	if h := cfg.ModelHash; h != "" {
		id.Model = "hash " + h
	} else {
		b, err := json.Marshal(src.Config().UNet)
		if err != nil {
			return id, fmt.Errorf("train: model config: %w", err)
		}
		s := sha256.Sum256(b)
		p, err := filepath.Abs(src.Path())
		if err != nil {
			p = src.Path()
		}
		id.Model = p + " (unet config " + hex.EncodeToString(s[:6]) + ")"
	}
	h := sha256.New()
	for _, im := range imgs {
		st, err := os.Stat(im.Path)
		if err != nil {
			return id, fmt.Errorf("train: dataset: %w", err)
		}
		c := sha256.Sum256([]byte(im.Caption))
		line := fmt.Sprintf("%s (%d bytes, ×%d, caption %s)", im.Path, st.Size(), max(im.Repeats, 1), hex.EncodeToString(c[:4]))
		id.Images = append(id.Images, line)
		h.Write([]byte(line + "\n"))
	}
	id.Dataset = hex.EncodeToString(h.Sum(nil))
	return id, nil
}

// state is a resumable checkpoint: the LoRA weights in float32, AdamW's
// moments and step count, the position in the data, and what the run was.
type state struct {
	Step      int      `json:"step"`       // optimizer steps done
	Micro     int      `json:"micro"`      // micro-batches consumed (Step·GradAccum)
	Epoch     int      `json:"epoch"`      // epoch of the next micro-batch
	Position  int      `json:"position"`   // its index in that epoch's plan
	Config    Config   `json:"config"`     // the run's settings
	Hash      string   `json:"hash"`       // Config.Hash()
	Identity  identity `json:"identity"`   // model and dataset
	LoRA      string   `json:"lora"`       // the checkpoint's LoRA file, relative to the run directory
	Loss      float64  `json:"loss"`       // last step's loss
	Smooth    float64  `json:"smooth"`     // its moving average
	StartedAt string   `json:"started_at"` // when the run first started (RFC 3339)

	names  []string    // parameter names, in the network's order
	params [][]float32 // (in the order of names)
	optim  []byte      // optim.AdamW.State
}

// write stores s atomically at path: every parameter as an F32 tensor under
// its name, the optimizer state as a U8 tensor, the rest as JSON metadata.
func (s *state) write(path string) error {
	meta, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("train: state: %w", err)
	}
	ts := make([]safetensors.Tensor, 0, len(s.params)+1)
	for i, p := range s.params {
		b := make([]byte, 4*len(p))
		for j, x := range p {
			binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
		}
		ts = append(ts, safetensors.Tensor{Name: "param." + s.names[i], DType: safetensors.F32, Shape: []int{len(p)}, Data: b})
	}
	ts = append(ts, safetensors.Tensor{Name: "optimizer", DType: safetensors.U8, Shape: []int{len(s.optim)}, Data: s.optim})
	if err := safetensors.Write(path, ts, map[string]string{"format": stateFormat, "state": string(meta)}); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// readState loads a state written by write; names are the network's
// parameters, which the state must hold exactly.
func readState(path string, names []string) (*state, error) {
	s, err := readStateMeta(path)
	if err != nil {
		return nil, err
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if len(f.Names()) != len(names)+1 {
		return nil, fmt.Errorf("%s: %d tensors, the network has %d parameters", path, len(f.Names())-1, len(names))
	}
	s.names = slices.Clone(names)
	for _, n := range names {
		v, err := f.Float32("param." + n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s.params = append(s.params, v)
	}
	b, err := f.Bytes("optimizer")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.optim = slices.Clone(b)
	return s, nil
}

// readStateMeta reads a state's metadata (everything but the tensors).
func readStateMeta(path string) (*state, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	meta := f.Metadata()
	if meta["format"] != stateFormat {
		return nil, fmt.Errorf("%s: not a training state (format %q)", path, meta["format"])
	}
	s := &state{}
	if err := json.Unmarshal([]byte(meta["state"]), s); err != nil {
		return nil, fmt.Errorf("%s: state metadata: %w", path, err)
	}
	return s, nil
}

// stateFiles lists runDir's state files, newest (highest step) first.
func stateFiles(runDir string) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(runDir, checkpointDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	var steps []int
	for _, e := range ents {
		if m := stateName.FindStringSubmatch(e.Name()); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil {
				steps = append(steps, n)
			}
		}
	}
	slices.Sort(steps)
	slices.Reverse(steps)
	return steps, nil
}

// latestState reads the newest readable state of runDir. States that
// cannot be read (truncated by a crash of the disk, not by us: we write
// atomically) are skipped and reported through skipped.
func latestState(runDir string, names []string, skipped func(path string, err error)) (*state, string, error) {
	steps, err := stateFiles(runDir)
	if err != nil {
		return nil, "", err
	}
	for _, step := range steps {
		p := statePath(runDir, step)
		s, err := readState(p, names)
		if err != nil {
			skipped(p, err)
			continue
		}
		if s.Step != step {
			skipped(p, fmt.Errorf("records step %d", s.Step))
			continue
		}
		return s, p, nil
	}
	if len(steps) > 0 {
		return nil, "", fmt.Errorf("train: %s: none of the %d states can be read", filepath.Join(runDir, checkpointDir), len(steps))
	}
	return nil, "", fmt.Errorf("train: %s: no checkpoint to resume from", runDir)
}

// pruneStates removes all but the keepStates newest states (their LoRA
// files stay: numbered LoRA files are outputs).
func pruneStates(runDir string) {
	steps, err := stateFiles(runDir)
	if err != nil {
		return
	}
	for _, step := range steps[min(keepStates, len(steps)):] {
		os.Remove(statePath(runDir, step))
	}
}

// mismatch says how a state's run differs from the one asked to resume it,
// or "" when it is the same run: another model, dataset, rank or any
// setting that shapes the trajectory.
func (s *state) mismatch(cfg Config, id identity) string {
	var diffs []string
	if s.Identity.Model != id.Model {
		diffs = append(diffs, fmt.Sprintf("model: the checkpoint trained %s, now %s", s.Identity.Model, id.Model))
	}
	if s.Identity.Dataset != id.Dataset {
		d := fmt.Sprintf("dataset: the checkpoint trained %d images, now %d", len(s.Identity.Images), len(id.Images))
		was := map[string]bool{}
		for _, l := range s.Identity.Images {
			was[l] = true
		}
		var changed []string
		for _, l := range id.Images {
			if !was[l] {
				changed = append(changed, l)
			}
		}
		if len(changed) > 0 {
			d += "; new or changed: " + strings.Join(changed[:min(3, len(changed))], "; ")
			if len(changed) > 3 {
				d += fmt.Sprintf(" and %d more", len(changed)-3)
			}
		}
		diffs = append(diffs, d)
	}
	if s.Hash != cfg.Hash() {
		diffs = append(diffs, "settings: "+configDiff(s.Config, cfg))
	}
	return strings.Join(diffs, "; ")
}

// configDiff names the settings (JSON names) that differ between a and b
// among those Hash covers, with both values.
func configDiff(a, b Config) string {
	ma, mb := hashed(a), hashed(b)
	var out []string
	for k, va := range ma {
		if vb := mb[k]; string(va) != string(vb) {
			out = append(out, fmt.Sprintf("%s was %s, now %s", k, va, vb))
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "(none named)"
	}
	return strings.Join(out, ", ")
}

// hashed returns the settings Hash covers as JSON values by name.
func hashed(c Config) map[string]json.RawMessage {
	b, _ := json.Marshal(c.hashed())
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	return m
}
