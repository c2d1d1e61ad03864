package studio

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFileAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	writeText(t, p, "old")
	if err := writeCaptionFile(p, "new, caption"); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, p); got != "new, caption" {
		t.Fatalf("got %q", got)
	}
	assertNoTempFiles(t, dir)
}

func TestWriteCaptionRefusesInvalidUTF8(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	writeText(t, p, "old")
	err := writeCaptionFile(p, "bad \xff")
	if !errors.Is(err, ErrNotUTF8) || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v", err)
	}
	if got := readText(t, p); got != "old" {
		t.Fatalf("old caption changed: %q", got)
	}
}

// failingWriter writes part of the data and then fails like a full disk.
type failingWriter struct{ w io.Writer }

func (f failingWriter) Write(b []byte) (int, error) {
	n, _ := f.w.Write(b[:len(b)/2])
	return n, syscall.ENOSPC
}

func TestWriteFileAtomicDiskFullHook(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	writeText(t, p, "old caption")
	writeHook = func(path string, w io.Writer) io.Writer { return failingWriter{w} }
	defer func() { writeHook = nil }()
	err := writeCaptionFile(p, "a much longer new caption")
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v", err)
	}
	if got := readText(t, p); got != "old caption" {
		t.Fatalf("old caption changed: %q", got)
	}
	assertNoTempFiles(t, dir)
}

func TestWriteFileAtomicVanishedFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	err := writeCaptionFile(filepath.Join(dir, "a.txt"), "x")
	if err == nil || !strings.Contains(err.Error(), "no longer exists") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("the vanished folder was recreated")
	}
}
