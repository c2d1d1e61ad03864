package studio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// ErrLinkLoop is wrapped by errors about a symbolic link that leads back
// into a folder it is inside of (or to itself), which a walk would follow
// forever.
var ErrLinkLoop = errors.New("symbolic link loop")

// walkOptions says what walkFiles leaves out.
type walkOptions struct {
	skipHidden bool // leave out files and folders whose name starts with "."
}

// walkFiles calls fn with the slash-separated path, relative to root, of
// every file under root, in lexical order. Unlike filepath.WalkDir it
// follows symbolic links — root itself, folders and files — because that is
// how people keep models and datasets: the Hugging Face hub cache
// (snapshots/<rev>/unet/x.safetensors -> ../../../blobs/<sha>), a dataset
// folder linked from elsewhere, kohya repeat folders linked to the images.
// A link that leads to one of the folders it sits in (or to itself) is a
// loop and stops the walk with an error wrapping ErrLinkLoop that names the
// link. A dangling link is reported to fn like a file, so whoever opens it
// gets an error naming it; sockets, devices and pipes are left out.
func walkFiles(root string, opts walkOptions, fn func(rel string) error) error {
	st, err := os.Stat(root)
	if err != nil {
		if isLoop(err) {
			return fmt.Errorf("%s: %w", root, ErrLinkLoop)
		}
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", root)
	}
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return err
	}
	return walkDir(root, "", []string{real}, opts, fn)
}

// walkDir walks the folder dir (rel from the root); ancestors are the real
// (link-free) paths of dir and every folder above it, for loop detection.
func walkDir(dir, rel string, ancestors []string, opts walkOptions, fn func(rel string) error) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, ent := range ents {
		name := ent.Name()
		if opts.skipHidden && strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(dir, name)
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		mode := ent.Type()
		isLink := mode&os.ModeSymlink != 0
		if isLink {
			st, err := os.Stat(p)
			switch {
			case isLoop(err):
				return fmt.Errorf("%s: %w: the link resolves through itself", p, ErrLinkLoop)
			case err != nil:
				// Dangling: hand it on, so opening it names the file.
				if err := fn(childRel); err != nil {
					return err
				}
				continue
			}
			mode = st.Mode().Type()
		}
		switch {
		case mode.IsDir():
			realDir := filepath.Join(ancestors[len(ancestors)-1], name)
			if isLink {
				if realDir, err = filepath.EvalSymlinks(p); err != nil {
					return err
				}
				if realDir, err = filepath.Abs(realDir); err != nil {
					return err
				}
				for _, a := range ancestors {
					if a == realDir {
						return fmt.Errorf("%s: %w: it leads to %s, a folder it is inside of", p, ErrLinkLoop, realDir)
					}
				}
			}
			if err := walkDir(p, childRel, append(ancestors[:len(ancestors):len(ancestors)], realDir), opts, fn); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := fn(childRel); err != nil {
				return err
			}
		}
	}
	return nil
}

// isLoop reports whether err is the system's "too many levels of symbolic
// links".
func isLoop(err error) bool {
	return err != nil && errors.Is(err, syscall.ELOOP)
}

// realPath is path with every symbolic link resolved; for a path that does
// not exist yet, its folder is resolved and the name kept.
func realPath(path string) (string, error) {
	r, err := filepath.EvalSymlinks(path)
	if err == nil {
		return filepath.Abs(r)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if _, lerr := os.Lstat(path); lerr == nil {
		return "", err // a dangling link: its target's folder is missing
	}
	dir, err := realPath(filepath.Dir(path))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(path)), nil
}

// within reports whether path is root or inside it (both clean and absolute).
func within(root, path string) bool {
	if path == root {
		return true
	}
	return strings.HasPrefix(path, strings.TrimSuffix(root, string(filepath.Separator))+string(filepath.Separator))
}
