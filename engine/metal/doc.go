//go:build darwin

// Package metal is the compute backend for Apple Silicon: the same kernels
// as engine/gl, compiled ahead of time from shaders/gl to Metal Shading
// Language (shaders/metal, by go generate through SPIR-V), driven through
// the Objective-C runtime with github.com/ebitengine/purego, so the package
// needs no cgo and vets and compiles from Linux.
//
// Tensors live in shared-storage MTLBuffers (Apple Silicon memory is
// unified: uploads and downloads are copies into and out of the buffers'
// contents). Every op encodes the kernels engine/gl launches, with the same
// parameters: the op files (attention.go, binary.go, conv.go, ...) are
// engine/gl's, copied by go generate (internal/syncops) and held to it by
// a test, so the two backends cannot drift; this package supplies the
// platform layer they call (launch, buffer, Device.run, the buffer pool).
//
// Work is encoded on one OS-locked thread into a command buffer that is
// committed at the end of each op without waiting; Sync, Download and
// Upload wait for it, and an error from a finished command buffer is
// returned at the next wait, naming the kernels it held.
package metal
