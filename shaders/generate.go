package shaders

// The Metal kernels in metal/ and the round-tripped GLSL the GL tests run
// (engine/gl/testdata/roundtrip) are generated from gl/ through SPIR-V; see
// internal/gen. CI regenerates them and fails on any difference.
//go:generate go run ./internal/gen -metal metal -roundtrip ../engine/gl/testdata/roundtrip
