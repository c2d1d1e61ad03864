package studio

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"lorastudio/engine/safetensors"
)

// Metadata keys of a kohya LoRA file that A1111, ComfyUI and Civitai read
// (sd-scripts' train_network.py and library/sai_model_spec.py write them).
const (
	metaModelHash = "sshs_model_hash" // addnet hash of the LoRA file itself (A1111 shows it, Civitai matches on it)
	metaStarted   = "ss_training_started_at"
	metaFinished  = "ss_training_finished_at"
	metaSteps     = "ss_steps"
	metaEpoch     = "ss_epoch"
)

// DirStats is one dataset folder as kohya's ss_dataset_dirs describes it.
type DirStats struct {
	Repeats int `json:"n_repeats"`
	Images  int `json:"img_count"`
}

// datasetDir is the folder an image belongs to in kohya's metadata: the
// first folder of its path in the dataset (a kohya "10_name" folder, or
// "images" in the tutorial layout), else the dataset folder's own name.
func datasetDir(root, rel string) string {
	if first, _, ok := strings.Cut(rel, "/"); ok {
		return first
	}
	return filepath.Base(root)
}

// captionTags splits a caption into its comma-separated tags as sd-scripts
// counts them for ss_tag_frequency: trimmed, empty ones dropped.
func captionTags(caption string) []string {
	var out []string
	for _, t := range strings.Split(caption, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// unixSeconds formats t as Python's str(time.time()) does for the
// ss_training_*_at keys: seconds with the fraction, no exponent.
func unixSeconds(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', -1, 64)
}

// trainMetadataInput is what the kohya metadata is built from.
type trainMetadataInput struct {
	Title          string  // modelspec.title: the run's name
	ModelName      string  // ss_sd_model_name: the base model's file or folder name
	ModelSHA256    string  // ss_new_sd_model_hash: sha256 of a single-file base model ("" for a folder)
	Rank           int     // ss_network_dim
	Alpha          float32 // ss_network_alpha
	LR             float64 // ss_learning_rate
	Resolution     int     // ss_resolution, modelspec.resolution
	Seed           uint64  // ss_seed
	PredictionType string  // modelspec.prediction_type: the scheduler's epsilon or v_prediction
	TagFrequency   map[string]map[string]int
	Dirs           map[string]DirStats
	TrainImages    int       // ss_num_train_images: images × repeats
	Started        time.Time // ss_training_started_at, modelspec.date
}

// kohyaMetadata returns the safetensors metadata the run's kohya files carry
// beyond what engine/lora's writer adds itself (ss_base_model_version,
// ss_network_dim/alpha): everything A1111's and ComfyUI's LoRA info panels and
// Civitai's upload read. The values are strings, JSON where sd-scripts writes
// JSON. ss_steps, ss_epoch and ss_training_finished_at are known only when a
// file is written; engine/train and finishKohyaFile set them.
func kohyaMetadata(in trainMetadataInput) (map[string]string, error) {
	tags, err := json.Marshal(in.TagFrequency)
	if err != nil {
		return nil, fmt.Errorf("tag frequency: %w", err)
	}
	dirs, err := json.Marshal(in.Dirs)
	if err != nil {
		return nil, fmt.Errorf("dataset folders: %w", err)
	}
	res := strconv.Itoa(in.Resolution)
	pred := "epsilon"
	if in.PredictionType == "v_prediction" {
		pred = "v"
	}
	m := map[string]string{
		"ss_base_model_version":     "sdxl_base_v1-0",
		"ss_network_module":         "networks.lora",
		"ss_network_dim":            strconv.Itoa(in.Rank),
		"ss_network_alpha":          strconv.FormatFloat(float64(in.Alpha), 'g', -1, 32),
		"ss_learning_rate":          strconv.FormatFloat(in.LR, 'g', -1, 64),
		"ss_resolution":             "(" + res + ", " + res + ")",
		"ss_seed":                   strconv.FormatUint(in.Seed, 10),
		"ss_sd_model_name":          in.ModelName,
		"ss_tag_frequency":          string(tags),
		"ss_dataset_dirs":           string(dirs),
		"ss_num_train_images":       strconv.Itoa(in.TrainImages),
		"ss_output_name":            in.Title,
		"ss_v2":                     "False",
		metaStarted:                 unixSeconds(in.Started),
		"modelspec.sai_model_spec":  "1.0.0",
		"modelspec.architecture":    "stable-diffusion-xl-v1-base/lora",
		"modelspec.implementation":  "https://github.com/Stability-AI/generative-models",
		"modelspec.title":           in.Title,
		"modelspec.date":            in.Started.UTC().Format("2006-01-02T15:04:05"),
		"modelspec.resolution":      res + "x" + res,
		"modelspec.prediction_type": pred,
	}
	if in.ModelSHA256 != "" {
		m["ss_new_sd_model_hash"] = in.ModelSHA256
	}
	return m, nil
}

// addnetHash is sd-scripts' addnet_hash_safetensors, the hash A1111 shows for
// a LoRA: the SHA-256 of a safetensors file's bytes after the 8-byte length
// and the JSON header, so it does not change when only the metadata does.
func addnetHash(data []byte) (string, error) {
	if len(data) < 8 {
		return "", fmt.Errorf("not a safetensors file (%d bytes)", len(data))
	}
	n := uint64(data[0]) | uint64(data[1])<<8 | uint64(data[2])<<16 | uint64(data[3])<<24 |
		uint64(data[4])<<32 | uint64(data[5])<<40 | uint64(data[6])<<48 | uint64(data[7])<<56
	if n > uint64(len(data)-8) {
		return "", fmt.Errorf("not a safetensors file (header length %d of %d bytes)", n, len(data))
	}
	sum := sha256.Sum256(data[8+n:])
	return hex.EncodeToString(sum[:]), nil
}

// finishKohyaFile completes the metadata of a kohya LoRA file that a run
// wrote: it adds the keys of extra the file lacks (ss_steps, ss_epoch,
// ss_training_finished_at when engine/train did not write them) and
// sshs_model_hash, the file's own addnet hash. The tensors are rewritten
// byte for byte in their order, so the hash computed before the rewrite is
// the hash of the file after it. The file is replaced atomically.
func finishKohyaFile(p string, extra map[string]string) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("LoRA file %s: %w", p, err)
	}
	hash, err := addnetHash(data)
	if err != nil {
		return fmt.Errorf("LoRA file %s: %w", p, err)
	}
	f, err := safetensors.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	meta := f.Metadata()
	if meta == nil {
		meta = map[string]string{}
	}
	for k, v := range extra {
		if _, ok := meta[k]; !ok {
			meta[k] = v
		}
	}
	meta[metaModelHash] = hash
	infos := make([]safetensors.TensorInfo, 0, len(f.Names()))
	for _, name := range f.Names() {
		ti, _ := f.Tensor(name)
		infos = append(infos, ti)
	}
	// The data section keeps its order: tensors by their offset in the file.
	sort.Slice(infos, func(i, j int) bool { return infos[i].Offset < infos[j].Offset })
	ts := make([]safetensors.Tensor, 0, len(infos))
	for _, ti := range infos {
		b, err := f.Bytes(ti.Name)
		if err != nil {
			return fmt.Errorf("LoRA file %s: %w", p, err)
		}
		ts = append(ts, safetensors.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	buf, err := safetensors.Encode(ts, meta)
	if err != nil {
		return fmt.Errorf("LoRA file %s: %w", p, err)
	}
	if got, err := addnetHash(buf); err != nil || got != hash {
		// Encode packed the tensors differently (gaps in the original file):
		// the hash must be of the file as written.
		if err != nil {
			return fmt.Errorf("LoRA file %s: %w", p, err)
		}
		meta[metaModelHash] = got
		if buf, err = safetensors.Encode(ts, meta); err != nil {
			return fmt.Errorf("LoRA file %s: %w", p, err)
		}
	}
	f.Close() // before the rename replaces the mapped file (Windows)
	return writeFileAtomic(p, buf, 0o644)
}

// folderNames returns the dataset folders of m in order, for printing.
func folderNames(m map[string]DirStats) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
