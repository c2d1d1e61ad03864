//go:build unix

package safetensors

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// mapFile maps the whole file read-only. Empty files are read (nothing to map).
func mapFile(path string) ([]byte, func() error, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %v", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %v", err)
	}
	if st.IsDir() {
		return nil, nil, fmt.Errorf("safetensors: %s: is a directory", filepath.Base(path))
	}
	size := st.Size()
	if size == 0 {
		return []byte{}, nil, nil
	}
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("safetensors: %s: %d bytes is too large to map", filepath.Base(path), size)
	}
	data, err := syscall.Mmap(int(fh.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		// Some filesystems refuse mappings; fall back to reading.
		return readWhole(path)
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
