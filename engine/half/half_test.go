package half

import (
	"math"
	"math/rand"
	"testing"
)

// refHalf computes the value of an fp16 bit pattern from its definition, in float64.
func refHalf(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch {
	case exp == 0x1f && mant == 0:
		return math.Inf(int(sign))
	case exp == 0x1f:
		return math.NaN()
	case exp == 0:
		return sign * math.Ldexp(mant, -24)
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

// refToHalf rounds x to the nearest fp16 by searching the ordered positive
// patterns: the reference for Float32ToFloat16, written from the definition.
func refToHalf(x float32) uint16 {
	if x != x {
		return 0x7e00
	}
	var sign uint16
	v := float64(x)
	if math.Signbit(v) {
		sign = 0x8000
		v = -v
	}
	// Positive patterns 0..0x7c00 are ordered by value; find the neighbours.
	lo, hi := 0, 0x7c00
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if refHalf(uint16(mid)) <= v {
			lo = mid
		} else {
			hi = mid
		}
	}
	if refHalf(uint16(lo)) == v {
		return sign | uint16(lo)
	}
	// Between lo and hi; the value past 65504 rounds as if the next step existed.
	loV := refHalf(uint16(lo))
	var hiV float64
	if hi == 0x7c00 {
		hiV = 65536 // 65504 + one ulp (32): the overflow threshold is its midpoint
	} else {
		hiV = refHalf(uint16(hi))
	}
	if v >= hiV {
		return sign | uint16(hi)
	}
	d1, d2 := v-loV, hiV-v
	switch {
	case d1 < d2:
		return sign | uint16(lo)
	case d2 < d1:
		return sign | uint16(hi)
	case lo&1 == 0:
		return sign | uint16(lo)
	}
	return sign | uint16(hi)
}

func TestFloat16ToFloat32AllPatterns(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := Float16ToFloat32(h)
		want := refHalf(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("Float16ToFloat32(%#04x) = %v, want NaN", h, got)
			}
			if back := Float32ToFloat16(got); back != h&0x8000|0x7e00 {
				t.Fatalf("NaN %#04x -> %#04x, want canonical quiet NaN", h, back)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("Float16ToFloat32(%#04x) = %v, want %v", h, got, want)
		}
		if back := Float32ToFloat16(got); back != h {
			t.Fatalf("round trip %#04x -> %v -> %#04x", h, got, back)
		}
	}
}

func TestFloat32ToFloat16Midpoints(t *testing.T) {
	// For every pair of adjacent finite fp16 values: the exact midpoint goes to
	// the even one, one float32 ulp either side goes to the nearer one.
	for i := 0; i < 0x7c00; i++ {
		for _, sign := range []uint16{0, 0x8000} {
			lo, hi := uint16(i)|sign, uint16(i+1)|sign
			loV, hiV := refHalf(uint16(i)), 65536.0
			if i+1 < 0x7c00 {
				hiV = refHalf(uint16(i + 1))
			}
			mid := float32((loV + hiV) / 2) // exact: needs 12 significant bits
			if sign != 0 {
				mid = -mid
			}
			want := lo
			if i&1 == 1 {
				want = hi
			}
			if got := Float32ToFloat16(mid); got != want {
				t.Fatalf("midpoint %v of %#04x/%#04x -> %#04x, want %#04x", mid, lo, hi, got, want)
			}
			below := math.Nextafter32(mid, 0)
			above := math.Nextafter32(mid, float32(math.Copysign(math.Inf(1), float64(mid))))
			if got := Float32ToFloat16(below); got != lo && i != 0 {
				t.Fatalf("just below midpoint %v -> %#04x, want %#04x", below, got, lo)
			}
			if got := Float32ToFloat16(above); got != hi {
				t.Fatalf("just above midpoint %v -> %#04x, want %#04x", above, got, hi)
			}
		}
	}
}

func TestFloat32ToFloat16Special(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{0, 0}, {float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff},
		{65519.996, 0x7bff}, {65520, 0x7c00}, {1e10, 0x7c00}, {-1e10, 0xfc00},
		{float32(math.Inf(1)), 0x7c00}, {float32(math.Inf(-1)), 0xfc00},
		{float32(math.Ldexp(1, -24)), 0x0001}, {float32(math.Ldexp(1, -25)), 0},
		{float32(math.Ldexp(1.0000001, -25)), 0x0001}, {float32(math.Ldexp(3, -26)), 0x0001},
		{float32(math.Ldexp(1, -14)), 0x0400}, {math.SmallestNonzeroFloat32, 0},
		{float32(math.NaN()), 0x7e00},
	}
	for _, c := range cases {
		if got := Float32ToFloat16(c.in); got != c.want {
			t.Errorf("Float32ToFloat16(%v) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
}

func TestFloat32ToFloat16Random(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for n := 0; n < 2_000_000; n++ {
		var x float32
		if n%2 == 0 {
			// Concentrate on the fp16 range, including subnormals.
			x = float32(math.Ldexp(r.Float64()*2-1, r.Intn(44)-28))
		} else {
			x = math.Float32frombits(r.Uint32())
		}
		got, want := Float32ToFloat16(x), refToHalf(x)
		if x != x {
			if got&0x7fff != 0x7e00 {
				t.Fatalf("NaN %#08x -> %#04x", math.Float32bits(x), got)
			}
			continue
		}
		if got != want {
			t.Fatalf("Float32ToFloat16(%v = %#08x) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
}

func TestBFloat16AllPatterns(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		b := uint16(i)
		want := math.Float32frombits(uint32(b) << 16)
		got := BFloat16ToFloat32(b)
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("BFloat16ToFloat32(%#04x) = %#08x, want %#08x", b, math.Float32bits(got), math.Float32bits(want))
		}
		if got != got {
			if back := Float32ToBFloat16(got); back != 0x7fc0 {
				t.Fatalf("NaN %#04x -> %#04x, want 0x7fc0", b, back)
			}
			continue
		}
		if back := Float32ToBFloat16(got); back != b {
			t.Fatalf("round trip %#04x -> %#04x", b, back)
		}
		// Midpoint to the next pattern (same sign): ties to even; either side to the nearer.
		if b&0x7fff >= 0x7f80 {
			continue
		}
		mid := uint32(b)<<16 | 0x8000
		want16 := b
		if b&1 == 1 {
			want16 = b + 1
		}
		if got := Float32ToBFloat16(math.Float32frombits(mid)); got != want16 {
			t.Fatalf("midpoint after %#04x -> %#04x, want %#04x", b, got, want16)
		}
		if got := Float32ToBFloat16(math.Float32frombits(mid - 1)); got != b {
			t.Fatalf("below midpoint after %#04x -> %#04x", b, got)
		}
		if got := Float32ToBFloat16(math.Float32frombits(mid + 1)); got != b+1 {
			t.Fatalf("above midpoint after %#04x -> %#04x", b, got)
		}
	}
	if got := Float32ToBFloat16(math.MaxFloat32); got != 0x7f80 {
		t.Errorf("MaxFloat32 -> %#04x, want +Inf 0x7f80", got)
	}
}
