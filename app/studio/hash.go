package studio

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"lorastudio/engine/train/dataset"
	"lorastudio/storage"
)

// hash algorithms of the file hash cache.
const (
	algoSHA256 = "sha256" // the whole file
	algoAddnet = "addnet" // a safetensors file's data after its header (A1111's LoRA hash)
)

// HashFile returns the hex SHA-256 of the file at path, remembered in the
// database by (real path, size, modification time) so a large checkpoint is
// read once, not on every generation. A symbolic link is hashed as the file
// it leads to and remembered under that file's path, so the Hugging Face
// cache's blobs, linked from several snapshots, are read once.
func (s *Studio) HashFile(path string) (string, error) { return s.hashFile(path, algoSHA256) }

// hashFile is HashFile for either algorithm.
func (s *Studio) hashFile(path, algo string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		if isLoop(err) {
			return "", fmt.Errorf("hashing %s: %w", abs, ErrLinkLoop)
		}
		if errors.Is(err, os.ErrNotExist) {
			if _, lerr := os.Lstat(abs); lerr == nil {
				return "", fmt.Errorf("hashing %s: a symbolic link to a file that does not exist", abs)
			}
		}
		return "", fmt.Errorf("hashing %s: %w", abs, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("hashing %s: not a regular file", abs)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", abs, err)
	}
	if h, ok, err := s.db.FileHash(real, algo, st.Size(), st.ModTime()); err != nil {
		return "", err
	} else if ok {
		return h, nil
	}
	h, err := computeHash(real, algo)
	if err != nil {
		if real != abs {
			return "", fmt.Errorf("%w (through the link %s)", err, abs)
		}
		return "", err
	}
	// Remember it only if the file did not change while it was read.
	if st2, err := os.Stat(real); err == nil && st2.Size() == st.Size() && st2.ModTime().Equal(st.ModTime()) {
		if err := s.db.PutFileHash(storage.FileHash{Path: real, Algo: algo, Size: st.Size(), MTime: st.ModTime(), Hash: h}); err != nil {
			return "", err
		}
	}
	return h, nil
}

// computeHash reads the file and hashes it with algo.
func computeHash(path, algo string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	if algo == algoAddnet {
		var n [8]byte
		if _, err := io.ReadFull(f, n[:]); err != nil {
			return "", fmt.Errorf("hashing %s: not a safetensors file (no header length): %w", path, err)
		}
		hl := binary.LittleEndian.Uint64(n[:])
		if hl > math.MaxInt64-8 {
			return "", fmt.Errorf("hashing %s: not a safetensors file (header length %d)", path, hl)
		}
		if _, err := f.Seek(int64(8+hl), io.SeekStart); err != nil {
			return "", fmt.Errorf("hashing %s: %w", path, err)
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HashPath returns the content hash of a file, or of a folder (a diffusers
// model, a peft adapter): the SHA-256 of its files' relative paths and
// hashes, sorted, hidden files skipped. Symbolic links are followed (path
// itself, folders and files), so a folder laid out as the Hugging Face hub
// cache keeps it — links to ../../blobs/<sha> — hashes as the same folder
// with the files copied in; a link loop is an error wrapping ErrLinkLoop.
func (s *Studio) HashPath(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		if isLoop(err) {
			return "", fmt.Errorf("hashing %s: %w", path, ErrLinkLoop)
		}
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	if !st.IsDir() {
		return s.HashFile(path)
	}
	var rels []string
	if err := walkFiles(path, walkOptions{skipHidden: true}, func(rel string) error {
		rels = append(rels, rel)
		return nil
	}); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	if len(rels) == 0 {
		return "", fmt.Errorf("hashing %s: the folder holds no files", path)
	}
	sort.Strings(rels) // whole-path order, as the hash always used
	h := sha256.New()
	for _, rel := range rels {
		fh, err := s.HashFile(filepath.Join(path, filepath.FromSlash(rel)))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%s\n", rel, fh)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// loraHash is A1111's short LoRA hash: the first 12 hex digits of the
// "addnet" hash for a .safetensors file, of the content hash otherwise.
func (s *Studio) loraHash(path, content string) string {
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && strings.EqualFold(filepath.Ext(path), ".safetensors") {
		if h, err := s.hashFile(path, algoAddnet); err == nil {
			return h[:12]
		}
	}
	return content[:12]
}

// hashFile returns the hex sha256 of a file's content (an image's identity
// in the database and the thumbnail cache); links are read through. It is
// the trainer's own content hash, so the training caches and the studio
// name an image alike.
func hashFile(path string) (string, error) { return dataset.HashFile(path) }
