package metal

// The op files (attention.go, binary.go, ...) are engine/gl's, copied for
// darwin; this file has no build constraint so go generate finds it on
// every OS.
//go:generate go run ./internal/syncops
