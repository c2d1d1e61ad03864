//go:build darwin

package shaders

import "embed"

// Metal holds the generated Metal kernels: metal/NAME.metal and the
// reflection metal/NAME.json for every variant (NAME is VariantName). Only
// darwin builds embed them.
//
//go:embed metal/*.metal metal/*.json
var Metal embed.FS
