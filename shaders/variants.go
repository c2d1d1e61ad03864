package shaders

import "strconv"

// Variant is one kernel compiled with one set of defines: what the GL
// backend hands the driver at run time, and what go generate turns into a
// Metal kernel ahead of time.
type Variant struct {
	Kernel  string
	Defines map[string]string
}

// Name is the variant's file stem (see VariantName).
func (v Variant) Name() string { return VariantName(v.Kernel, v.Defines) }

// MetalSharedBytes is the threadgroup memory every Apple GPU gives a compute
// kernel (MTLDevice.maxThreadgroupMemoryLength, 32 KiB since the A11): the
// attention tiles of the generated variants are sized for it.
const MetalSharedBytes = 32 << 10

// AttentionHeadSizes are the head sizes whose attention kernels are
// generated: SDXL's 64 (UNet and both text encoders), its VAE's single
// 512-wide head, and the spread of smaller and larger heads that the parity
// table and the tiny test models use. A head size outside the list runs on
// GL (which compiles at run time) but has no Metal kernel until it is added
// here and go generate is run.
var AttentionHeadSizes = []int{4, 8, 16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 256, 512}

// AttentionTile is how many rows of a head of size d the attention kernels
// stage per tile with sharedBytes of shared memory: 16, or fewer when two
// tiles of 16 rows would not fit (the VAE's 512-wide head gets 7 on 32 KiB).
// engine/gl and engine/metal both size their TK and TQ defines with it.
func AttentionTile(d, sharedBytes int) int {
	return min(16, (sharedBytes-512)/(2*4*d))
}

// AttentionDefines are the attention kernels' defines for head size d:
// D, and the key and query tiles TK and TQ.
func AttentionDefines(d, sharedBytes int) map[string]string {
	t := strconv.Itoa(AttentionTile(d, sharedBytes))
	return map[string]string{"D": strconv.Itoa(d), "TK": t, "TQ": t}
}

// GemmVariant names the three GEMM configurations of common/gemm.glsl.
type GemmVariant int

const (
	// Gemm64 is 64x64 shared-memory tiles with 4x4 register blocks.
	Gemm64 GemmVariant = iota
	// Gemm128 is 128x128 shared-memory tiles with 8x8 register blocks (big
	// products on GPUs).
	Gemm128
	// GemmReg is the register-only 128x128 variant (CPU rasterizers; the
	// convolutions never use it).
	GemmReg
)

// GemmDefines adds v's defines to defs (allocating it when nil) and returns
// it with the output tile size.
func GemmDefines(defs map[string]string, v GemmVariant) (map[string]string, int) {
	if defs == nil {
		defs = map[string]string{}
	}
	defs["GEMM_REG"], defs["GEMM_TM"], defs["GEMM_BK"] = "0", "4", "16"
	switch v {
	case GemmReg:
		defs["GEMM_REG"], defs["GEMM_TM"] = "1", "8"
		return defs, 128
	case Gemm128:
		defs["GEMM_TM"], defs["GEMM_BK"] = "8", "8"
		return defs, 128
	}
	return defs, 64
}

// The define values below mirror engine/tensor's enums (the kernels read
// them as numbers): dtypes 0 f32, 1 f16, 2 bf16; activations 0 silu,
// 1 gelu, 2 gelu_tanh, 3 quick_gelu; binary ops 0 add, 1 sub, 2 mul.
const (
	numDTypes = 3
	numActs   = 4
	numBinOps = 3
)

// Variants lists every (kernel, defines) pair the GL backend can launch, in
// a fixed order: the set go generate turns into Metal kernels, and the set
// the round-trip test holds the GL backend's launches to.
func Variants() []Variant {
	var vs []Variant
	add := func(k string, d map[string]string) { vs = append(vs, Variant{k, d}) }
	for _, k := range []string{"add", "copy", "groupnorm_backward", "groupnorm_backward_affine", "groupnorm_forward",
		"layernorm_backward", "layernorm_backward_affine", "layernorm_forward", "mse_loss_backward", "reduce", "scale",
		"softmax_backward", "softmax_forward", "timestep_embedding"} {
		add(k, nil)
	}
	for _, k := range []string{"activation_forward", "activation_backward", "geglu_forward", "geglu_backward"} {
		for a := range numActs {
			add(k, map[string]string{"ACT": strconv.Itoa(a)})
		}
	}
	for op := range numBinOps {
		add("binary", map[string]string{"OP": strconv.Itoa(op)})
	}
	for from := range numDTypes {
		for to := range numDTypes {
			add("cast", map[string]string{"FROM": strconv.Itoa(from), "TO": strconv.Itoa(to)})
		}
	}
	for _, g := range []GemmVariant{Gemm64, Gemm128, GemmReg} {
		for a := range numDTypes {
			for b := range numDTypes {
				d, _ := GemmDefines(map[string]string{"ATYPE": strconv.Itoa(a), "BTYPE": strconv.Itoa(b)}, g)
				add("matmul", d)
			}
		}
	}
	for _, g := range []GemmVariant{Gemm64, Gemm128} {
		for w := range numDTypes {
			for _, k := range []string{"conv2d_forward", "conv2d_backward_input"} {
				d, _ := GemmDefines(map[string]string{"WTYPE": strconv.Itoa(w)}, g)
				add(k, d)
			}
		}
		d, _ := GemmDefines(nil, g)
		add("conv2d_backward_weight", d)
	}
	for _, hd := range AttentionHeadSizes {
		for _, k := range []string{"attention_forward", "attention_backward_dq", "attention_backward_dkv"} {
			add(k, AttentionDefines(hd, MetalSharedBytes))
		}
	}
	return vs
}
