package studio

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// module is the import path of the repository's module (go.mod).
const module = "lorastudio"

// repoRoot is the repository root, two folders above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(b), "module "+module+"\n") {
		t.Fatalf("%s is not the %s module's root: %v", root, module, err)
	}
	return root
}

// imports returns the module packages imported by the non-test Go files of
// the package at import path pkg (every file, whatever its build tags, so a
// platform-only file cannot hide an import).
func imports(t *testing.T, root, pkg string) []string {
	t.Helper()
	dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(pkg, module)))
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("package %s: %v", pkg, err)
	}
	seen := map[string]bool{}
	files := 0
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		files++
		for _, spec := range f.Imports {
			p, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if p == module || strings.HasPrefix(p, module+"/") {
				seen[p] = true
			}
		}
	}
	if files == 0 {
		t.Fatalf("package %s: no Go files in %s", pkg, dir)
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// deps returns pkg and every module package it imports, directly or not,
// each with the chain of imports that reaches it.
func deps(t *testing.T, root, pkg string) map[string]string {
	t.Helper()
	chain := map[string]string{pkg: pkg}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range imports(t, root, p) {
			if _, ok := chain[q]; !ok {
				chain[q] = chain[p] + " → " + q
				queue = append(queue, q)
			}
		}
	}
	return chain
}

// under reports whether import path p is pkg or inside it.
func under(p, pkg string) bool { return p == pkg || strings.HasPrefix(p, pkg+"/") }

// packagesUnder lists the import paths of the Go packages in the folder
// tree of pkg (testdata and hidden folders left out).
func packagesUnder(t *testing.T, root, pkg string) []string {
	t.Helper()
	var out []string
	base := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(pkg, module)))
	err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != base && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			rel, err := filepath.Rel(root, filepath.Dir(p))
			if err != nil {
				return err
			}
			ip := module + "/" + filepath.ToSlash(rel)
			if len(out) == 0 || out[len(out)-1] != ip {
				out = append(out, ip)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLayering keeps the import rules of DESIGN.md: app → ui → app/studio →
// engine, storage. Screens and commands reach the database through studio
// only; the engine knows neither screens nor the database; the database
// knows no engine; and the SDXL pipeline asks its tensor.Backend for limits
// instead of importing a backend.
func TestLayering(t *testing.T) {
	root := repoRoot(t)
	for _, pkg := range []string{module + "/ui", module + "/app"} {
		for _, p := range imports(t, root, pkg) {
			if under(p, module+"/storage") {
				t.Errorf("%s imports %s: it must talk to app/studio, which exposes what it needs", pkg, p)
			}
		}
	}
	for _, p := range imports(t, root, module+"/ui") {
		if under(p, module+"/engine") {
			t.Errorf("%s imports %s: screens talk to app/studio only", module+"/ui", p)
		}
	}
	for _, pkg := range packagesUnder(t, root, module+"/engine") {
		for _, p := range imports(t, root, pkg) {
			for _, banned := range []string{"/ui", "/storage", "/app"} {
				if under(p, module+banned) {
					t.Errorf("%s imports %s: the engine never imports ui, storage or app", pkg, p)
				}
			}
		}
	}
	for _, pkg := range packagesUnder(t, root, module+"/storage") {
		for _, p := range imports(t, root, pkg) {
			if under(p, module+"/engine") {
				t.Errorf("%s imports %s: storage never imports the engine", pkg, p)
			}
		}
	}
	for _, pkg := range []string{module + "/engine/sdxl/pipeline", module + "/engine/sdxl/sdxlbench"} {
		for p, chain := range deps(t, root, pkg) {
			for _, backend := range []string{"/engine/gl", "/engine/cpu", "/engine/metal", "/engine/device"} {
				if under(p, module+backend) {
					t.Errorf("%s depends on the backend package %s (%s): ask tensor.Backend instead", pkg, p, chain)
				}
			}
		}
	}
}
