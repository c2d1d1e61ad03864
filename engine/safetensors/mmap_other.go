//go:build !unix

package safetensors

// mapFile reads the whole file: this OS has no syscall.Mmap.
func mapFile(path string) ([]byte, func() error, error) {
	return readWhole(path)
}
