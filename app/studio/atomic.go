package studio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// ErrNotUTF8 is returned (wrapped with the file name) for caption text that is
// not valid UTF-8.
var ErrNotUTF8 = errors.New("not valid UTF-8 text")

// writeHook, when set by a test, wraps the writer of every atomic write so a
// failure (a full disk) can be simulated deterministically.
var writeHook func(path string, w io.Writer) io.Writer

// writeFileAtomic writes data to path so that path holds either its old or
// its new content, never a mix: temp file in the same directory, write,
// fsync, close, rename, fsync the directory. The temp file is removed on any
// failure. Errors name the file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if st, serr := os.Stat(dir); serr != nil {
		if errors.Is(serr, os.ErrNotExist) {
			return fmt.Errorf("write %s: folder %s no longer exists", path, dir)
		}
		return fmt.Errorf("write %s: %w", path, serr)
	} else if !st.IsDir() {
		return fmt.Errorf("write %s: %s is not a folder", path, dir)
	}
	if st, serr := os.Stat(path); serr == nil {
		perm = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: cannot create a temporary file: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	var w io.Writer = tmp
	if writeHook != nil {
		w = writeHook(path, tmp)
	}
	if _, err = w.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write %s: rename: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir fsyncs a directory so a rename in it survives a crash; some
// platforms cannot open directories for sync, which is not an error there.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// removeFileDurable removes path (a missing file is fine) and syncs its folder.
func removeFileDurable(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeCaptionFile writes caption text atomically after checking it is UTF-8.
func writeCaptionFile(path, text string) error {
	if !utf8.ValidString(text) {
		return fmt.Errorf("caption for %s: %w", path, ErrNotUTF8)
	}
	return writeFileAtomic(path, []byte(text), 0o644)
}
