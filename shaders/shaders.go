// Package shaders embeds the engine's GPU kernels: GLSL compute shaders in
// gl/ (one kernel a file, forward beside backward) and their shared headers
// in gl/common/.
package shaders

import "embed"

// GL holds the OpenGL compute kernels: gl/NAME.comp and gl/common/*.glsl.
//
//go:embed gl/*.comp gl/common/*
var GL embed.FS
