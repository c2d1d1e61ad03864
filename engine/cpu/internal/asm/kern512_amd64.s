//go:build amd64 && !purego

#include "textflag.h"

// FMA2 broadcasts float r of the A step at ao(SI) into t and adds t times
// the 32 B floats in Z0, Z1 into the row's accumulators x, y.
#define FMA2(ao, t, x, y) \
	VBROADCASTSS (ao)(SI), t; \
	VFMADD231PS  Z0, t, x;    \
	VFMADD231PS  Z1, t, y

// STEP is one k step: 32 floats of B at bo(DI), 12 floats of A at ao(SI).
// Row r accumulates in Z(8+2r), Z(9+2r). The broadcast temporaries rotate
// over Z2..Z5 so consecutive rows do not wait on one register.
#define STEP(ao, bo) \
	VMOVUPS (bo)(DI), Z0;              \
	VMOVUPS (bo+64)(DI), Z1;           \
	FMA2(ao+0, Z2, Z8, Z9);            \
	FMA2(ao+4, Z3, Z10, Z11);          \
	FMA2(ao+8, Z4, Z12, Z13);          \
	FMA2(ao+12, Z5, Z14, Z15);         \
	FMA2(ao+16, Z2, Z16, Z17);         \
	FMA2(ao+20, Z3, Z18, Z19);         \
	FMA2(ao+24, Z4, Z20, Z21);         \
	FMA2(ao+28, Z5, Z22, Z23);         \
	FMA2(ao+32, Z2, Z24, Z25);         \
	FMA2(ao+36, Z3, Z26, Z27);         \
	FMA2(ao+40, Z4, Z28, Z29);         \
	FMA2(ao+44, Z5, Z30, Z31)

// PREFC prefetches the 128 bytes of a row of C at AX and moves AX to the
// next row.
#define PREFC \
	PREFETCHT0 (AX);   \
	PREFETCHT0 64(AX); \
	ADDQ       R8, AX

// STORE2 adds the accumulators x, y into the 32 floats at DX and moves DX
// to the next row of C.
#define STORE2(x, y) \
	VADDPS  (DX), x, x;    \
	VMOVUPS x, (DX);       \
	VADDPS  64(DX), y, y;  \
	VMOVUPS y, 64(DX);     \
	ADDQ    R8, DX

// func Kern12x32AVX512(kc int, a, b, c *float32, ldc int)
//
// 24 ZMM accumulators hold the 12×32 tile; each k step loads two ZMM of B
// and broadcasts the 12 floats of A, 24 FMAs against 14 loads, so the two
// 512-bit FMA pipes, not the loads, bound it. The k loop is unrolled by 4.
TEXT ·Kern12x32AVX512(SB), NOSPLIT, $0-40
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	// The tile of C is read only after the k loop: start fetching it now.
	MOVQ DX, AX
	PREFC
	PREFC
	PREFC
	PREFC
	PREFC
	PREFC
	PREFC
	PREFC
	PREFC
	PREFC
	PREFC
	PREFC

	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31

	MOVQ CX, BX
	SHRQ $2, BX
	ANDQ $3, CX
	TESTQ BX, BX
	JE   tail

loop4:
	STEP(0, 0)
	STEP(48, 128)
	STEP(96, 256)
	STEP(144, 384)
	ADDQ $192, SI
	ADDQ $512, DI
	DECQ BX
	JNE  loop4

tail:
	TESTQ CX, CX
	JE    store

loop1:
	STEP(0, 0)
	ADDQ $48, SI
	ADDQ $128, DI
	DECQ CX
	JNE  loop1

store:
	STORE2(Z8, Z9)
	STORE2(Z10, Z11)
	STORE2(Z12, Z13)
	STORE2(Z14, Z15)
	STORE2(Z16, Z17)
	STORE2(Z18, Z19)
	STORE2(Z20, Z21)
	STORE2(Z22, Z23)
	STORE2(Z24, Z25)
	STORE2(Z26, Z27)
	STORE2(Z28, Z29)
	STORE2(Z30, Z31)
	VZEROUPPER
	RET
