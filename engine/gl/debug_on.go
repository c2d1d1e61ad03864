//go:build gldebug

package gl

import (
	"fmt"

	"github.com/go-gl/gl/v4.3-core/gl"
)

// debugGL is true in builds with the gldebug tag: every GL call site checks
// glGetError.
const debugGL = true

// check returns an error naming the kernel and the call when the last GL
// call failed.
func check(kernel, call string) error {
	if e := gl.GetError(); e != gl.NO_ERROR {
		return fmt.Errorf("gl: %s: %s: GL error 0x%x", kernel, call, e)
	}
	return nil
}
