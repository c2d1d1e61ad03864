// Command gen turns every GL kernel variant (shaders.Variants) into a Metal
// kernel and a round-tripped GLSL kernel through SPIR-V:
//
//	GLSL 4.30 --glslangValidator -G--> SPIR-V --spirv-val-->
//	    --spirv-cross --msl--> shaders/metal/NAME.metal (+ NAME.json)
//	    --spirv-cross --version 430--> engine/gl/testdata/roundtrip/NAME.comp
//
// spirv-cross's MSL gets two fixes in its entry point only: buffer indices
// renumbered into Metal's 31 slots (P 0, F 1, GL binding b at 2+b), and the
// uniform arrays copied out of the constant address space before helper
// functions get them. It needs Debian's glslang-tools, spirv-tools and
// spirv-cross (bookworm's versions made the committed files). The output
// is deterministic (variants in a fixed order, no timestamps), so CI can
// regenerate into a temporary folder and compare (gen_test.go). Run it with
// go generate ./shaders/ (shaders/generate.go).
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	metalDir := flag.String("metal", "metal", "folder for the Metal kernels and their reflection")
	rtDir := flag.String("roundtrip", "../engine/gl/testdata/roundtrip", "folder for the round-tripped GLSL kernels")
	flag.Parse()
	if err := Generate(*metalDir, *rtDir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
