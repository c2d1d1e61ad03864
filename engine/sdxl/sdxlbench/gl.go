package sdxlbench

import (
	"lorastudio/engine/gl"
	"lorastudio/engine/tensor"
)

// glLimit returns the bytes one shader-storage binding may address on a GL
// backend, 0 on any other.
func glLimit(b tensor.Backend) int64 {
	if d, ok := b.(interface{ Dev() *gl.Device }); ok {
		return int64(d.Dev().Limits().MaxSSBOSize)
	}
	return 0
}
