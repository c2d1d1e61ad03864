package sdxl

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"lorastudio/engine/safetensors"
)

// This file writes whole models: a Stability-layout single file (through the
// one conversion table, SingleFileLayout) or a diffusers folder, fp16,
// streaming one tensor at a time so a full SDXL (≈7 GB) never sits in memory
// twice.

// Float16Func returns one parameter of a component, in diffusers layout and
// shape, as fp16 bit patterns.
type Float16Func func(component, name string) ([]uint16, error)

// WriteSingleFile writes the model cfg describes as a single .safetensors
// file in Stability's layout (model.diffusion_model.…, first_stage_model.…,
// conditioner.embedders.…), every tensor F16, with metadata. Each diffusers
// parameter comes from read; fused keys (OpenCLIP's in_proj) are assembled
// from their q, k, v parameters, transposed keys transposed back. The file is
// written atomically (temporary file, fsync, rename).
func WriteSingleFile(path string, cfg Config, read Float16Func, metadata map[string]string) error {
	layout, err := SingleFileLayout(cfg)
	if err != nil {
		return err
	}
	byKey := map[string][]SingleFileRef{}
	var keys []string
	for _, ref := range layout {
		if _, seen := byKey[ref.Key]; !seen {
			keys = append(keys, ref.Key)
		}
		byKey[ref.Key] = append(byKey[ref.Key], ref)
	}
	ts := make([]streamTensor, 0, len(keys))
	for _, key := range keys {
		refs := byKey[key]
		shape := refs[0].KeyShape
		ts = append(ts, streamTensor{name: key, shape: shape, data: func() ([]uint16, error) {
			out := make([]uint16, Param{Shape: shape}.NumElements())
			filled := 0
			for _, ref := range refs {
				v, err := read(ref.Component, ref.Name)
				if err != nil {
					return nil, err
				}
				if int64(len(v)) != (Param{Shape: ref.Shape}).NumElements() {
					return nil, fmt.Errorf("%s %s: %d values for shape %v", ref.Component, ref.Name, len(v), ref.Shape)
				}
				switch {
				case ref.RowEnd > 0:
					row := len(out) / shape[0]
					copy(out[ref.RowStart*row:ref.RowEnd*row], v)
				case ref.Transpose:
					// diffusers (b, a) → stored (a, b): out[j][i] = v[i][j]
					a, b := shape[0], shape[1]
					for i := range b {
						for j := range a {
							out[j*b+i] = v[i*a+j]
						}
					}
				default:
					copy(out, v)
				}
				filled += len(v)
			}
			if filled != len(out) {
				return nil, fmt.Errorf("key %s: its parameters fill %d of %d values", key, filled, len(out))
			}
			return out, nil
		}})
	}
	if err := writeStream(path, ts, metadata); err != nil {
		return fmt.Errorf("sdxl: %s: %w", path, err)
	}
	return nil
}

// weightFileExts are the files of a component folder that hold weights (not
// copied into a new folder: the new weights replace them).
var weightFileExts = []string{".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".onnx", ".h5", ".pb"}

// WriteDiffusersFolder writes the model cfg describes as a diffusers folder
// at dir: every file of the diffusers folder from (model_index.json, the
// configs, tokenizer/, tokenizer_2/, scheduler/ …) copied but the component
// weights, which are written from read as F16
// <component>/diffusion_pytorch_model.safetensors or model.safetensors. The
// folder is built under a temporary name beside dir and renamed into place
// at the end, so dir is either complete or absent; it must not exist yet.
func WriteDiffusersFolder(dir, from string, cfg Config, read Float16Func) (err error) {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("sdxl: %s already exists; choose a new folder name", dir)
	}
	if _, err := os.Stat(filepath.Join(from, "model_index.json")); err != nil {
		return fmt.Errorf("sdxl: %s: not a diffusers folder (no model_index.json) to take the configs and tokenizers from", from)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp*")
	if err != nil {
		return fmt.Errorf("sdxl: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := copyNonWeights(from, tmp); err != nil {
		return fmt.Errorf("sdxl: copying %s: %w", from, err)
	}
	for _, comp := range Components {
		ps, err := ComponentParams(cfg, comp)
		if err != nil {
			return err
		}
		ts := make([]streamTensor, len(ps))
		for i, p := range ps {
			ts[i] = streamTensor{name: p.Name, shape: p.Shape, data: func() ([]uint16, error) { return read(comp, p.Name) }}
		}
		if err := os.MkdirAll(filepath.Join(tmp, comp), 0o755); err != nil {
			return fmt.Errorf("sdxl: %w", err)
		}
		name := componentFiles[comp][len(componentFiles[comp])-1] // the plain (not .fp16 variant) name
		if err := writeStream(filepath.Join(tmp, comp, name), ts, map[string]string{"format": "pt"}); err != nil {
			return fmt.Errorf("sdxl: %s: %s: %w", dir, comp, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("sdxl: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("sdxl: %w", err)
	}
	syncDir(parent)
	return nil
}

// copyNonWeights copies the tree at from into to, following symbolic links
// (a Hugging Face cache snapshot links to its blobs), leaving out hidden
// entries and the weight files of the component folders.
func copyNonWeights(from, to string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		src := filepath.Join(from, e.Name())
		st, err := os.Stat(src)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, e.Name())
		if st.IsDir() {
			if slices.Contains(Components, e.Name()) {
				if err := copyComponentConfigs(src, dst); err != nil {
					return err
				}
				continue
			}
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			if err := copyNonWeights(src, dst); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(src, dst); err != nil {
			return err
		}
	}
	return nil
}

// copyComponentConfigs copies a component folder's files that hold no
// weights (config.json and the like).
func copyComponentConfigs(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".index.json") {
			continue
		}
		if slices.ContainsFunc(weightFileExts, func(ext string) bool { return strings.HasSuffix(name, ext) }) {
			continue
		}
		src := filepath.Join(from, name)
		if st, err := os.Stat(src); err != nil {
			return err
		} else if st.IsDir() {
			continue
		}
		if err := copyFile(src, filepath.Join(to, name)); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src to dst and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", dst, err)
	}
	return out.Close()
}

// streamTensor is one F16 tensor of a file writeStream writes; data is
// called once, when its turn comes.
type streamTensor struct {
	name  string
	shape []int
	data  func() ([]uint16, error)
}

// writeStream writes a safetensors file of F16 tensors, in the order given,
// producing each tensor's data only when it is written: the header first
// (offsets follow from the shapes), then the data. It writes a temporary
// file beside path, syncs it and renames it into place.
func writeStream(path string, ts []streamTensor, metadata map[string]string) (err error) {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata) // keys sorted
		if err != nil {
			return err
		}
		hdr.WriteString(`"__metadata__":`)
		hdr.Write(m)
	}
	var offset int64
	sizes := make([]int64, len(ts))
	for i, t := range ts {
		if hdr.Len() > 1 {
			hdr.WriteByte(',')
		}
		name, err := json.Marshal(t.name)
		if err != nil {
			return err
		}
		n := Param{Shape: t.shape}.NumElements()
		sizes[i] = n
		hdr.Write(name)
		hdr.WriteString(`:{"dtype":"F16","shape":[`)
		for j, d := range t.shape {
			if j > 0 {
				hdr.WriteByte(',')
			}
			hdr.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&hdr, `],"data_offsets":[%d,%d]}`, offset, offset+2*n)
		offset += 2 * n
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	if hdr.Len() > safetensors.MaxHeaderSize {
		return fmt.Errorf("header of %d bytes exceeds the %d-byte limit", hdr.Len(), safetensors.MaxHeaderSize)
	}

	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(hdr.Len()))
	w.Write(lenBuf[:])
	w.Write(hdr.Bytes())
	var buf []byte
	for i, t := range ts {
		v, err := t.data()
		if err != nil {
			return err
		}
		if int64(len(v)) != sizes[i] {
			return fmt.Errorf("tensor %s: %d values for shape %v", t.name, len(v), t.shape)
		}
		buf = slices.Grow(buf[:0], 2*len(v))[:2*len(v)]
		for j, h := range v {
			binary.LittleEndian.PutUint16(buf[2*j:], h)
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("writing %s: %w", t.name, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a rename in dir durable (best effort: not every file system
// syncs directories).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
