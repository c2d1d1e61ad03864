// Package rng reproduces PyTorch's CPU random generator bit for bit, so that a
// seed gives the same initial latents (and the same ancestral-sampling noise)
// here as in diffusers and ComfyUI.
//
// The generator is the standard 32-bit Mersenne Twister (mt19937) seeded with
// the low 32 bits of the seed, as torch.Generator("cpu").manual_seed(seed)
// does. The draws mirror torch 1.13's CPU kernels:
//
//   - Uint32: one engine draw (CPUGeneratorImpl::random).
//   - Uint64: two draws, the first in the high half (CPUGeneratorImpl::random64).
//   - Float32 / Rand: uniform_real_distribution<float> on [0, 1): the low 24
//     bits of a 32-bit draw times 2⁻²⁴ (torch.rand(n, generator=g)).
//   - Float64: uniform_real_distribution<double>: the low 53 bits of a 64-bit
//     draw times 2⁻⁵³ (torch.rand(n, dtype=torch.float64, generator=g)).
//   - Randn: torch.randn(n, generator=g) for float32 (see Randn for its two
//     paths).
//   - RandInt: torch.randint(low, high, (n,), generator=g) for int64.
package rng

import "math"

// mt19937 parameters (Matsumoto & Nishimura 1998).
const (
	mtN         = 624
	mtM         = 397
	mtMatrixA   = 0x9908b0df
	mtUpperMask = 0x80000000
	mtLowerMask = 0x7fffffff
)

// Generator is torch's CPU generator: an mt19937 engine plus the cached second
// value of the float64 Box–Muller pair. It is not safe for concurrent use.
type Generator struct {
	seed  uint64
	state [mtN]uint32
	pos   int // index of the next state word to temper; mtN means "regenerate"

	// nextNormal holds r·sin θ from the last scalar Box–Muller draw, returned
	// by the next scalar draw (torch's next_double_normal_sample).
	nextNormal    float64
	hasNextNormal bool
}

// New returns a generator seeded like torch.Generator("cpu").manual_seed(seed).
// Only the low 32 bits of the seed reach the engine (seed 2³²+5 behaves as 5).
func New(seed uint64) *Generator {
	g := &Generator{}
	g.ManualSeed(seed)
	return g
}

// ManualSeed re-seeds the generator in place (torch's Generator.manual_seed):
// the engine restarts and the cached normal value is dropped.
func (g *Generator) ManualSeed(seed uint64) {
	g.seed = seed
	g.state[0] = uint32(seed)
	for i := 1; i < mtN; i++ {
		prev := g.state[i-1]
		g.state[i] = 1812433253*(prev^(prev>>30)) + uint32(i)
	}
	g.pos = mtN
	g.hasNextNormal = false
	g.nextNormal = 0
}

// Seed returns the seed last given to New or ManualSeed (torch's initial_seed).
func (g *Generator) Seed() uint64 { return g.seed }

// twist regenerates the whole state block.
func (g *Generator) twist() {
	for i := 0; i < mtN; i++ {
		y := (g.state[i] & mtUpperMask) | (g.state[(i+1)%mtN] & mtLowerMask)
		v := g.state[(i+mtM)%mtN] ^ (y >> 1)
		if y&1 != 0 {
			v ^= mtMatrixA
		}
		g.state[i] = v
	}
	g.pos = 0
}

// Uint32 returns the engine's next 32-bit output (torch's random()).
func (g *Generator) Uint32() uint32 {
	if g.pos >= mtN {
		g.twist()
	}
	y := g.state[g.pos]
	g.pos++
	// tempering
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// Uint64 returns two engine outputs joined, the first in the high 32 bits
// (torch's random64()).
func (g *Generator) Uint64() uint64 {
	hi := g.Uint32()
	lo := g.Uint32()
	return uint64(hi)<<32 | uint64(lo)
}

// Float32 returns one float32 uniform on [0, 1) from one 32-bit draw
// (at::uniform_real_distribution<float>(0, 1)).
func (g *Generator) Float32() float32 {
	return float32(g.Uint32()&(1<<24-1)) * (1.0 / (1 << 24))
}

// Float64 returns one float64 uniform on [0, 1) from one 64-bit draw
// (at::uniform_real_distribution<double>(0, 1)).
func (g *Generator) Float64() float64 {
	return float64(g.Uint64()&(1<<53-1)) * (1.0 / (1 << 53))
}

// Rand returns n float32 uniforms on [0, 1): torch.rand(n, generator=g).
func (g *Generator) Rand(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = g.Float32()
	}
	return out
}

// RandInt returns n integers uniform on [low, high): torch.randint(low, high,
// (n,), generator=g) with dtype int64 (uniform_int_from_to_distribution): each
// is low + draw mod (high − low), the draw being one 32-bit output, or a
// 64-bit one when the range is 2³² or more. It returns nil when high <= low.
func (g *Generator) RandInt(low, high int64, n int) []int64 {
	if high <= low {
		return nil
	}
	span := uint64(high - low)
	out := make([]int64, n)
	for i := range out {
		var v uint64
		if span >= 1<<32 {
			v = g.Uint64()
		} else {
			v = uint64(g.Uint32())
		}
		out[i] = int64(v%span) + low
	}
	return out
}

// NormalFloat64 returns one standard normal value by float64 Box–Muller, the
// scalar path of torch (at::normal_distribution<double>): a fresh pair draws
// two float64 uniforms u1, u2 and returns r·cos θ with r = sqrt(−2 ln(1−u2)),
// θ = 2π·u1, keeping r·sin θ for the next call.
func (g *Generator) NormalFloat64() float64 {
	if g.hasNextNormal {
		g.hasNextNormal = false
		return g.nextNormal
	}
	u1 := g.Float64()
	u2 := g.Float64()
	r := math.Sqrt(-2 * math.Log(1-u2))
	theta := 2 * math.Pi * u1
	g.nextNormal = r * math.Sin(theta)
	g.hasNextNormal = true
	return r * math.Cos(theta)
}

// Randn returns n standard normal float32 values exactly as one call of
// torch.randn(n, generator=g) (any shape with n elements, row-major) does on
// the CPU, continuing the generator's stream.
//
// With n ≥ 16 torch fills all n elements with float32 uniforms, then turns
// each whole block of 16 into normals by pairing element j with j+8
// (fill16); a ragged tail is handled by drawing 16 fresh uniforms into the
// last 16 elements and transforming them again. With n < 16 every element
// comes from NormalFloat64, rounded to float32.
//
// The result is bit-identical to torch on x86-64 with AVX2 (the kernel the
// goldens come from and what diffusers users run); torch's scalar fallback
// on other CPUs uses libm's log/sin/cos and can differ in the last bit.
func (g *Generator) Randn(n int) []float32 {
	out := make([]float32, n)
	if n < 16 {
		for i := range out {
			out[i] = float32(g.NormalFloat64())
		}
		return out
	}
	for i := range out {
		out[i] = g.Float32()
	}
	for i := 0; i+16 <= n; i += 16 {
		fill16(out[i : i+16])
	}
	if n%16 != 0 {
		tail := out[n-16:]
		for i := range tail {
			tail[i] = g.Float32()
		}
		fill16(tail)
	}
	return out
}

// twoPi32 is 2π rounded to float32, the constant torch's vectorised kernel
// multiplies by.
const twoPi32 = float32(2 * math.Pi)

// fill16 turns 16 uniforms into 16 normals in place, the float32 Box–Muller of
// torch's normal_fill_16_AVX2: for j in 0..7, u1 = 1 − d[j], u2 = d[j+8],
// r = sqrt(−2 ln u1), θ = 2π u2, d[j] = r cos θ, d[j+8] = r sin θ, every
// operation in float32 with torch's own log/sin/cos approximations
// (boxmuller.go).
func fill16(d []float32) {
	for j := 0; j < 8; j++ {
		u1 := 1 - d[j]
		u2 := d[j+8]
		r := float32(math.Sqrt(float64(mul32(-2, cephesLog(u1)))))
		theta := mul32(twoPi32, u2)
		sin, cos := cephesSinCos(theta)
		d[j] = mul32(r, cos)
		d[j+8] = mul32(r, sin)
	}
}
