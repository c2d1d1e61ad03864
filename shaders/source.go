package shaders

import (
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

var includeRE = regexp.MustCompile(`(?m)^#include "([^"]+)"\s*$`)

// GLSource returns the complete GLSL 4.30 text of kernel name compiled with
// defines, as the GL backend hands it to the driver and as the Metal
// generator hands it to glslang: "#version 430", the defines in sorted
// order, common/header.glsl, then gl/NAME.comp (whose body is read by
// body) with its #include lines replaced by the files under gl/.
func GLSource(name string, defines map[string]string, body func(name string) (string, error)) (string, error) {
	b, err := body(name)
	if err != nil {
		return "", err
	}
	b = includeRE.ReplaceAllStringFunc(b, func(m string) string {
		inc := includeRE.FindStringSubmatch(m)[1]
		txt, ierr := fs.ReadFile(GL, "gl/"+inc)
		if ierr != nil && err == nil {
			err = fmt.Errorf("kernel %s: include %q not found", name, inc)
		}
		return string(txt)
	})
	if err != nil {
		return "", err
	}
	var src strings.Builder
	src.WriteString("#version 430\n")
	for _, k := range sortedKeys(defines) {
		fmt.Fprintf(&src, "#define %s %s\n", k, defines[k])
	}
	hdr, err := fs.ReadFile(GL, "gl/common/header.glsl")
	if err != nil {
		return "", fmt.Errorf("kernel %s: %w", name, err)
	}
	src.Write(hdr)
	src.WriteString("\n#line 1\n")
	src.WriteString(b)
	return src.String(), nil
}

// KernelBody reads gl/NAME.comp from the embedded kernels.
func KernelBody(name string) (string, error) {
	b, err := fs.ReadFile(GL, "gl/"+name+".comp")
	if err != nil {
		return "", fmt.Errorf("kernel %s: no shaders/gl/%s.comp", name, name)
	}
	return string(b), nil
}

// VariantName is the file stem of kernel compiled with defines:
// "NAME" without defines, else "NAME__K1=V1,K2=V2" with the keys sorted.
// The generated Metal kernels and the round-tripped GLSL use it, and the
// Metal backend finds its kernels by it.
func VariantName(kernel string, defines map[string]string) string {
	if len(defines) == 0 {
		return kernel
	}
	ks := sortedKeys(defines)
	for i, k := range ks {
		ks[i] = k + "=" + defines[k]
	}
	return kernel + "__" + strings.Join(ks, ",")
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
