package dataset

// Every random choice of this package is a hash of the run's seed and of
// where it is made (epoch or step, image, repeat, purpose), never a draw
// from a generator that carries state across calls, so that any epoch or
// step can be recomputed alone — by a resumed run or by Prepare ahead of
// training — and equal what the uninterrupted run drew.

// Purposes keep the streams of different decisions independent.
const (
	purposeOrder uint64 = iota + 1
	purposeFlip
	purposeCropX
	purposeCropY
	purposeDropout
	purposeShuffle
)

// splitmix64 is Steele, Lea and Flood's finaliser (SplitMix64): a bijective
// mix whose output bits each depend on every input bit.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// hashOf folds vals into one well-mixed 64-bit value.
func hashOf(vals ...uint64) uint64 {
	h := uint64(0x6a09e667f3bcc908)
	for _, v := range vals {
		h = splitmix64(h ^ splitmix64(v))
	}
	return h
}

// stream is a SplitMix64 sequence started at a hash; it lives only inside
// one call (a shuffle), so it is no hidden state.
type stream struct{ s uint64 }

func newStream(vals ...uint64) *stream { return &stream{s: hashOf(vals...)} }

func (r *stream) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a uniform integer in [0, n) for n > 0 (rejection sampling,
// so no value is favoured).
func (r *stream) intn(n int) int {
	un := uint64(n)
	limit := ^uint64(0) - (^uint64(0)%un+1)%un
	for {
		if v := r.next(); v <= limit {
			return int(v % un)
		}
	}
}

// shuffle permutes n items with Fisher–Yates.
func (r *stream) shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.intn(i+1))
	}
}

// unit maps a hash to a uniform float64 in [0, 1) (its top 53 bits).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// intIn maps a hash to an integer in [0, n] (n ≥ 0) without bias worth
// measuring (n is a pixel count, far below 2⁶⁴).
func intIn(h uint64, n int) int {
	return int(h % uint64(n+1))
}
