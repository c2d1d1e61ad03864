//go:build !gldebug

package gl

// debugGL is false unless built with the gldebug tag; then check is a no-op
// and GL errors are caught once per synchronous call instead.
const debugGL = false

// check is a no-op without the gldebug tag.
func check(kernel, call string) error { return nil }
