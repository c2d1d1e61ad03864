package gl

import "testing"

// TestMaxTensorBytes checks that the limit callers size work by, asked
// through tensor.Backend, is the context's shader-storage binding limit.
func TestMaxTensorBytes(t *testing.T) {
	b := newTestBackend(t)
	want := int64(b.Dev().Limits().MaxSSBOSize)
	if got := b.MaxTensorBytes(); got != want || got <= 0 {
		t.Fatalf("MaxTensorBytes %d, want the context's GL_MAX_SHADER_STORAGE_BLOCK_SIZE %d", got, want)
	}
}
