package nn

import (
	"fmt"

	"lorastudio/engine/half"
	"lorastudio/engine/tensor"
)

// Embedding is torch.nn.Embedding. The Ops have no gather, so the table
// stays in host memory (as fp16 bits when stored F16, else float32) and
// Forward gathers the rows on the host and uploads them: for SDXL's
// 49408-token vocabularies this is 77 rows per prompt instead of a
// 49408×1280 table on the device.
type Embedding struct {
	Num int // number of rows (vocabulary size)
	Dim int // row width

	f16 []uint16  // (Num, Dim) fp16 bits, or nil
	f32 []float32 // (Num, Dim), or nil
}

// LoadEmbedding reads weight (num, dim) from scope s into host memory.
func LoadEmbedding(s Scope, num, dim int) (*Embedding, error) {
	name, dt, err := s.lookup("weight", tensor.Shape{num, dim})
	if err != nil {
		return nil, err
	}
	e := &Embedding{Num: num, Dim: dim}
	if h, ok := s.l.src.(Float16Source); ok && dt == tensor.F16 {
		if e.f16, err = h.Float16Bits(name); err != nil {
			return nil, fmt.Errorf("nn: parameter %s: %w", name, err)
		}
		if len(e.f16) != num*dim {
			return nil, fmt.Errorf("nn: parameter %s: source gave %d values for shape (%d, %d)", name, len(e.f16), num, dim)
		}
		return e, nil
	}
	v, err := s.l.src.Float32(name)
	if err != nil {
		return nil, fmt.Errorf("nn: parameter %s: %w", name, err)
	}
	if len(v) != num*dim {
		return nil, fmt.Errorf("nn: parameter %s: source gave %d values for shape (%d, %d)", name, len(v), num, dim)
	}
	if dt == tensor.F16 {
		e.f16 = make([]uint16, len(v))
		for i, x := range v {
			e.f16[i] = half.Float32ToFloat16(x) // exact: the values came from fp16
		}
	} else {
		e.f32 = v
	}
	return e, nil
}

// Rows returns the rows for ids, (len(ids), Dim) row-major, in host memory;
// an id outside [0, Num) is an error.
func (e *Embedding) Rows(ids []int) ([]float32, error) {
	out := make([]float32, len(ids)*e.Dim)
	for i, id := range ids {
		if id < 0 || id >= e.Num {
			return nil, fmt.Errorf("nn: embedding: id %d at position %d is outside [0, %d)", id, i, e.Num)
		}
		row := out[i*e.Dim : (i+1)*e.Dim]
		if e.f16 != nil {
			for j, h := range e.f16[id*e.Dim : (id+1)*e.Dim] {
				row[j] = half.Float16ToFloat32(h)
			}
		} else {
			copy(row, e.f32[id*e.Dim:(id+1)*e.Dim])
		}
	}
	return out, nil
}

// Forward uploads the rows for ids to b as an F32 tensor (len(ids), Dim).
func (e *Embedding) Forward(b tensor.Backend, ids []int) (*tensor.Tensor, error) {
	v, err := e.Rows(ids)
	if err != nil {
		return nil, err
	}
	return b.Upload(v, tensor.Shape{len(ids), e.Dim}, tensor.F32)
}

// Free drops the host table.
func (e *Embedding) Free() { e.f16, e.f32 = nil, nil }
