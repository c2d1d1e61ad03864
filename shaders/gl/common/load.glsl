// load.glsl: LOAD(buf, TYPE, i) reads element i of a buffer declared as
// uint[] whose dtype is TYPE (0 f32, 1 f16, 2 bf16; packed halves two to a
// word). Needs common/half.glsl.
#define LOAD(buf, TYPE, i) ((TYPE) == 0 ? uintBitsToFloat(buf[(i)]) : ((TYPE) == 1 ? unpackF16(buf[(i) >> 1], (i)) : unpackBF16(buf[(i) >> 1], (i))))
