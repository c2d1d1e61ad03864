//go:build !unix

package sdxlbench

// maxRSS returns 0 where getrusage does not exist (the report then shows
// only the Go heap peak).
func maxRSS() int64 { return 0 }
