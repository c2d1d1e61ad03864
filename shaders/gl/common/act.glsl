// act.glsl: the pointwise activations, chosen by the ACT define:
// 0 SiLU, 1 GELU (erf), 2 GELU (tanh), 3 quick GELU. actF is f(x), actD f'(x).

// erf_ is Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7); GLSL has no erf.
float erf_(float x) {
	float s = sign(x);
	float a = abs(x);
	float t = 1.0 / (1.0 + 0.3275911 * a);
	float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
	return s * y;
}

// tanh_ never overflows (the built-in may for large |x|).
float tanh_(float x) {
	float e = exp(-2.0 * abs(x));
	return sign(x) * (1.0 - e) / (1.0 + e);
}

float sigmoid_(float x) { return 1.0 / (1.0 + exp(-x)); }

const float SQRT_2_OVER_PI = 0.7978845608028654;
const float INV_SQRT_2 = 0.7071067811865476;
const float INV_SQRT_2PI = 0.3989422804014327;

float actF(float x) {
#if ACT == 0
	return x * sigmoid_(x);
#elif ACT == 1
	return 0.5 * x * (1.0 + erf_(x * INV_SQRT_2));
#elif ACT == 2
	return 0.5 * x * (1.0 + tanh_(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
#else
	return x * sigmoid_(1.702 * x);
#endif
}

float actD(float x) {
#if ACT == 0
	float s = sigmoid_(x);
	return s * (1.0 + x * (1.0 - s));
#elif ACT == 1
	return 0.5 * (1.0 + erf_(x * INV_SQRT_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
#elif ACT == 2
	float t = tanh_(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
	return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x);
#else
	float s = sigmoid_(1.702 * x);
	return s + 1.702 * x * s * (1.0 - s);
#endif
}
