//go:build amd64 && !purego

#include "textflag.h"

// Vector exp-family kernels; see vexp_amd64.go for what each computes.
// exp is Cephes' expf, as the scalar expf in package cpu: n = round(x/ln 2)
// by adding 1.5·2²³, r = x - n·ln 2 in two parts, e^r by a degree-6
// polynomial, times 2ⁿ. Inputs below LO give 0, above HI +Inf, NaN stays
// NaN. Each constant is stored 8 times (32 bytes), so the AVX2 code can use
// it as a memory operand and the AVX-512 code broadcasts its first copy.

// 1/ln 2
#define LOG2E vexpc<>+0(SB)
// 1.5·2²³: adding it rounds to an integer
#define MAGIC vexpc<>+32(SB)
// ln 2, high part
#define C1 vexpc<>+64(SB)
// ln 2, low part
#define C2 vexpc<>+96(SB)
// expf polynomial
#define P0 vexpc<>+128(SB)
#define P1 vexpc<>+160(SB)
#define P2 vexpc<>+192(SB)
#define P3 vexpc<>+224(SB)
#define P4 vexpc<>+256(SB)
#define P5 vexpc<>+288(SB)
#define ONE vexpc<>+320(SB)
// below: exp is 0
#define LO vexpc<>+352(SB)
// above: exp is +Inf
#define HI vexpc<>+384(SB)
#define INF vexpc<>+416(SB)
// clears the sign bit
#define ABS vexpc<>+448(SB)
// 1/√2
#define RSQRT2 vexpc<>+480(SB)
#define HALF vexpc<>+512(SB)
// erfc fit, highest power of t first
#define G0 vexpc<>+544(SB)
#define G1 vexpc<>+576(SB)
#define G2 vexpc<>+608(SB)
#define G3 vexpc<>+640(SB)
#define G4 vexpc<>+672(SB)
#define G5 vexpc<>+704(SB)
#define G6 vexpc<>+736(SB)
#define G7 vexpc<>+768(SB)
#define G8 vexpc<>+800(SB)
#define G9 vexpc<>+832(SB)
#define NEGINF vexpc<>+864(SB)
// int32 exponent bias
#define I127 vexpc<>+896(SB)

DATA vexpc<>+0(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA vexpc<>+8(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA vexpc<>+16(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA vexpc<>+24(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA vexpc<>+32(SB)/8, $0x4b4000004b400000
DATA vexpc<>+40(SB)/8, $0x4b4000004b400000
DATA vexpc<>+48(SB)/8, $0x4b4000004b400000
DATA vexpc<>+56(SB)/8, $0x4b4000004b400000
DATA vexpc<>+64(SB)/8, $0x3f3180003f318000
DATA vexpc<>+72(SB)/8, $0x3f3180003f318000
DATA vexpc<>+80(SB)/8, $0x3f3180003f318000
DATA vexpc<>+88(SB)/8, $0x3f3180003f318000
DATA vexpc<>+96(SB)/8, $0xb95e8083b95e8083
DATA vexpc<>+104(SB)/8, $0xb95e8083b95e8083
DATA vexpc<>+112(SB)/8, $0xb95e8083b95e8083
DATA vexpc<>+120(SB)/8, $0xb95e8083b95e8083
DATA vexpc<>+128(SB)/8, $0x3950696739506967
DATA vexpc<>+136(SB)/8, $0x3950696739506967
DATA vexpc<>+144(SB)/8, $0x3950696739506967
DATA vexpc<>+152(SB)/8, $0x3950696739506967
DATA vexpc<>+160(SB)/8, $0x3ab743ce3ab743ce
DATA vexpc<>+168(SB)/8, $0x3ab743ce3ab743ce
DATA vexpc<>+176(SB)/8, $0x3ab743ce3ab743ce
DATA vexpc<>+184(SB)/8, $0x3ab743ce3ab743ce
DATA vexpc<>+192(SB)/8, $0x3c0889083c088908
DATA vexpc<>+200(SB)/8, $0x3c0889083c088908
DATA vexpc<>+208(SB)/8, $0x3c0889083c088908
DATA vexpc<>+216(SB)/8, $0x3c0889083c088908
DATA vexpc<>+224(SB)/8, $0x3d2aa9c13d2aa9c1
DATA vexpc<>+232(SB)/8, $0x3d2aa9c13d2aa9c1
DATA vexpc<>+240(SB)/8, $0x3d2aa9c13d2aa9c1
DATA vexpc<>+248(SB)/8, $0x3d2aa9c13d2aa9c1
DATA vexpc<>+256(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA vexpc<>+264(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA vexpc<>+272(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA vexpc<>+280(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA vexpc<>+288(SB)/8, $0x3f0000003f000000
DATA vexpc<>+296(SB)/8, $0x3f0000003f000000
DATA vexpc<>+304(SB)/8, $0x3f0000003f000000
DATA vexpc<>+312(SB)/8, $0x3f0000003f000000
DATA vexpc<>+320(SB)/8, $0x3f8000003f800000
DATA vexpc<>+328(SB)/8, $0x3f8000003f800000
DATA vexpc<>+336(SB)/8, $0x3f8000003f800000
DATA vexpc<>+344(SB)/8, $0x3f8000003f800000
DATA vexpc<>+352(SB)/8, $0xc2aeac4fc2aeac4f
DATA vexpc<>+360(SB)/8, $0xc2aeac4fc2aeac4f
DATA vexpc<>+368(SB)/8, $0xc2aeac4fc2aeac4f
DATA vexpc<>+376(SB)/8, $0xc2aeac4fc2aeac4f
DATA vexpc<>+384(SB)/8, $0x42b1721742b17217
DATA vexpc<>+392(SB)/8, $0x42b1721742b17217
DATA vexpc<>+400(SB)/8, $0x42b1721742b17217
DATA vexpc<>+408(SB)/8, $0x42b1721742b17217
DATA vexpc<>+416(SB)/8, $0x7f8000007f800000
DATA vexpc<>+424(SB)/8, $0x7f8000007f800000
DATA vexpc<>+432(SB)/8, $0x7f8000007f800000
DATA vexpc<>+440(SB)/8, $0x7f8000007f800000
DATA vexpc<>+448(SB)/8, $0x7fffffff7fffffff
DATA vexpc<>+456(SB)/8, $0x7fffffff7fffffff
DATA vexpc<>+464(SB)/8, $0x7fffffff7fffffff
DATA vexpc<>+472(SB)/8, $0x7fffffff7fffffff
DATA vexpc<>+480(SB)/8, $0x3f3504f33f3504f3
DATA vexpc<>+488(SB)/8, $0x3f3504f33f3504f3
DATA vexpc<>+496(SB)/8, $0x3f3504f33f3504f3
DATA vexpc<>+504(SB)/8, $0x3f3504f33f3504f3
DATA vexpc<>+512(SB)/8, $0x3f0000003f000000
DATA vexpc<>+520(SB)/8, $0x3f0000003f000000
DATA vexpc<>+528(SB)/8, $0x3f0000003f000000
DATA vexpc<>+536(SB)/8, $0x3f0000003f000000
DATA vexpc<>+544(SB)/8, $0x3e2ef9453e2ef945
DATA vexpc<>+552(SB)/8, $0x3e2ef9453e2ef945
DATA vexpc<>+560(SB)/8, $0x3e2ef9453e2ef945
DATA vexpc<>+568(SB)/8, $0x3e2ef9453e2ef945
DATA vexpc<>+576(SB)/8, $0xbf527892bf527892
DATA vexpc<>+584(SB)/8, $0xbf527892bf527892
DATA vexpc<>+592(SB)/8, $0xbf527892bf527892
DATA vexpc<>+600(SB)/8, $0xbf527892bf527892
DATA vexpc<>+608(SB)/8, $0x3fbe87b03fbe87b0
DATA vexpc<>+616(SB)/8, $0x3fbe87b03fbe87b0
DATA vexpc<>+624(SB)/8, $0x3fbe87b03fbe87b0
DATA vexpc<>+632(SB)/8, $0x3fbe87b03fbe87b0
DATA vexpc<>+640(SB)/8, $0xbf914e5dbf914e5d
DATA vexpc<>+648(SB)/8, $0xbf914e5dbf914e5d
DATA vexpc<>+656(SB)/8, $0xbf914e5dbf914e5d
DATA vexpc<>+664(SB)/8, $0xbf914e5dbf914e5d
DATA vexpc<>+672(SB)/8, $0x3e8ec7cc3e8ec7cc
DATA vexpc<>+680(SB)/8, $0x3e8ec7cc3e8ec7cc
DATA vexpc<>+688(SB)/8, $0x3e8ec7cc3e8ec7cc
DATA vexpc<>+696(SB)/8, $0x3e8ec7cc3e8ec7cc
DATA vexpc<>+704(SB)/8, $0xbe3ec24cbe3ec24c
DATA vexpc<>+712(SB)/8, $0xbe3ec24cbe3ec24c
DATA vexpc<>+720(SB)/8, $0xbe3ec24cbe3ec24c
DATA vexpc<>+728(SB)/8, $0xbe3ec24cbe3ec24c
DATA vexpc<>+736(SB)/8, $0x3dc636c93dc636c9
DATA vexpc<>+744(SB)/8, $0x3dc636c93dc636c9
DATA vexpc<>+752(SB)/8, $0x3dc636c93dc636c9
DATA vexpc<>+760(SB)/8, $0x3dc636c93dc636c9
DATA vexpc<>+768(SB)/8, $0x3ebf88fb3ebf88fb
DATA vexpc<>+776(SB)/8, $0x3ebf88fb3ebf88fb
DATA vexpc<>+784(SB)/8, $0x3ebf88fb3ebf88fb
DATA vexpc<>+792(SB)/8, $0x3ebf88fb3ebf88fb
DATA vexpc<>+800(SB)/8, $0x3f8000c73f8000c7
DATA vexpc<>+808(SB)/8, $0x3f8000c73f8000c7
DATA vexpc<>+816(SB)/8, $0x3f8000c73f8000c7
DATA vexpc<>+824(SB)/8, $0x3f8000c73f8000c7
DATA vexpc<>+832(SB)/8, $0xbfa1fc4ebfa1fc4e
DATA vexpc<>+840(SB)/8, $0xbfa1fc4ebfa1fc4e
DATA vexpc<>+848(SB)/8, $0xbfa1fc4ebfa1fc4e
DATA vexpc<>+856(SB)/8, $0xbfa1fc4ebfa1fc4e
DATA vexpc<>+864(SB)/8, $0xff800000ff800000
DATA vexpc<>+872(SB)/8, $0xff800000ff800000
DATA vexpc<>+880(SB)/8, $0xff800000ff800000
DATA vexpc<>+888(SB)/8, $0xff800000ff800000
DATA vexpc<>+896(SB)/8, $0x0000007f0000007f
DATA vexpc<>+904(SB)/8, $0x0000007f0000007f
DATA vexpc<>+912(SB)/8, $0x0000007f0000007f
DATA vexpc<>+920(SB)/8, $0x0000007f0000007f
GLOBL vexpc<>(SB), RODATA|NOPTR, $928

// EXP512(x, y, t): y = exp(x) for 16 lanes; x and t are clobbered, K2 and
// K3 hold the underflow/overflow lanes. Constants in Z18..Z31 (LOADEXP512).
// VSCALEFPS multiplies by 2ⁿ in one step, exact wherever the result is
// normal, as the scalar y·2ⁿ is; the compares then give the scalar's exact
// 0 below LO (NLT_UQ keeps NaN lanes) and +Inf above HI.
#define EXP512(x, y, t) \
	VCMPPS       $0x05, Z29, x, K2; \
	VCMPPS       $0x1e, Z30, x, K3; \
	VMOVAPS      Z19, t; \
	VFMADD231PS  Z18, x, t; \
	VSUBPS       Z19, t, t; \
	VFNMADD231PS Z20, t, x; \
	VFNMADD231PS Z21, t, x; \
	VMOVAPS      Z22, y; \
	VFMADD213PS  Z23, x, y; \
	VFMADD213PS  Z24, x, y; \
	VFMADD213PS  Z25, x, y; \
	VFMADD213PS  Z26, x, y; \
	VFMADD213PS  Z27, x, y; \
	VMULPS       x, y, y; \
	VFMADD213PS  x, x, y; \
	VADDPS       Z28, y, y; \
	VSCALEFPS    t, y, y; \
	VMOVAPS.Z    y, K2, y; \
	VMOVAPS      Z31, K3, y

#define LOADEXP512 \
	VBROADCASTSS LOG2E, Z18; \
	VBROADCASTSS MAGIC, Z19; \
	VBROADCASTSS C1, Z20; \
	VBROADCASTSS C2, Z21; \
	VBROADCASTSS P0, Z22; \
	VBROADCASTSS P1, Z23; \
	VBROADCASTSS P2, Z24; \
	VBROADCASTSS P3, Z25; \
	VBROADCASTSS P4, Z26; \
	VBROADCASTSS P5, Z27; \
	VBROADCASTSS ONE, Z28; \
	VBROADCASTSS LO, Z29; \
	VBROADCASTSS HI, Z30; \
	VBROADCASTSS INF, Z31

// TAILMASK512 is the loop head of every AVX-512 kernel: with CX elements
// left it goes on with all 16 lanes (K1 as set before the loop), or with
// the low CX lanes in K1, or to done when none are left.
#define TAILMASK512(full, done) \
	CMPQ  CX, $16; \
	JGE   full; \
	TESTQ CX, CX; \
	JLE   done; \
	MOVL  $1, AX; \
	SHLL  CX, AX; \
	DECL  AX; \
	KMOVW AX, K1

// EXP256(x, y, t, m1, m2): y = exp(x) for 8 lanes; x, t, m1, m2 are
// clobbered. Without VSCALEFPS, 2ⁿ is applied as 2^(n>>1) · 2^(n - n>>1),
// both normal for every n in range (-126..128), so the product rounds once
// as the scalar's does.
#define EXP256(x, y, t, m1, m2) \
	VCMPPS       $0x11, LO, x, m1; \
	VCMPPS       $0x1e, HI, x, m2; \
	VMOVUPS      MAGIC, t; \
	VFMADD231PS  LOG2E, x, t; \
	VSUBPS       MAGIC, t, y; \
	VFNMADD231PS C1, y, x; \
	VFNMADD231PS C2, y, x; \
	VPSUBD       MAGIC, t, t; \
	VMOVUPS      P0, y; \
	VFMADD213PS  P1, x, y; \
	VFMADD213PS  P2, x, y; \
	VFMADD213PS  P3, x, y; \
	VFMADD213PS  P4, x, y; \
	VFMADD213PS  P5, x, y; \
	VMULPS       x, y, y; \
	VFMADD213PS  x, x, y; \
	VADDPS       ONE, y, y; \
	VPSRAD       $1, t, x; \
	VPSUBD       x, t, t; \
	VPADDD       I127, x, x; \
	VPSLLD       $23, x, x; \
	VPADDD       I127, t, t; \
	VPSLLD       $23, t, t; \
	VMULPS       x, y, y; \
	VMULPS       t, y, y; \
	VANDNPS      y, m1, y; \
	VBLENDVPS    m2, INF, y, y

// func expSum512(dst, src *float32, n int, a, b float32) (sum float64)
TEXT ·expSum512(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS a+24(FP), Z16
	VBROADCASTSS b+28(FP), Z17
	LOADEXP512
	VXORPD       Z14, Z14, Z14
	VXORPD       Z15, Z15, Z15
	KXNORW       K1, K1, K1

esloop:
	TAILMASK512(esfull, esdone)

esfull:
	VMOVUPS.Z     (SI), K1, Z0
	VFMADD213PS   Z17, Z16, Z0
	EXP512(Z0, Z1, Z2)
	// Lanes past the end stay out of the sum.
	VMOVAPS.Z     Z1, K1, Z1
	VMOVUPS       Z1, K1, (DI)
	VCVTPS2PD     Y1, Z2
	VADDPD        Z2, Z14, Z14
	VEXTRACTF64X4 $1, Z1, Y2
	VCVTPS2PD     Y2, Z2
	VADDPD        Z2, Z15, Z15
	ADDQ          $64, SI
	ADDQ          $64, DI
	SUBQ          $16, CX
	JMP           esloop

esdone:
	VADDPD        Z15, Z14, Z14
	VEXTRACTF64X4 $1, Z14, Y15
	VADDPD        Y15, Y14, Y14
	VEXTRACTF128  $1, Y14, X15
	VADDPD        X15, X14, X14
	VUNPCKHPD     X14, X14, X15
	VADDSD        X15, X14, X14
	VMOVSD        X14, sum+32(FP)
	VZEROUPPER
	RET

// func max512(x *float32, n int) (m float32)
TEXT ·max512(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS NEGINF, Z0
	KXNORW       K1, K1, K1

mxloop:
	TAILMASK512(mxfull, mxdone)

mxfull:
	// Lanes past the end load as -Inf.
	VBROADCASTSS NEGINF, Z1
	VMOVUPS      (SI), K1, Z1
	VMAXPS       Z1, Z0, Z0
	ADDQ         $64, SI
	SUBQ         $16, CX
	JMP          mxloop

mxdone:
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0x4e, X0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSS        X0, m+16(FP)
	VZEROUPPER
	RET

// func scale512(x *float32, n int, a float32)
TEXT ·scale512(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS a+16(FP), Z16
	KXNORW       K1, K1, K1

scloop:
	TAILMASK512(scfull, scdone)

scfull:
	VMOVUPS.Z (SI), K1, Z0
	VMULPS    Z16, Z0, Z0
	VMOVUPS   Z0, K1, (SI)
	ADDQ      $64, SI
	SUBQ      $16, CX
	JMP       scloop

scdone:
	VZEROUPPER
	RET

// func xsigmoid512(dst, src, h *float32, n int, nk, c float32)
TEXT ·xsigmoid512(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         h+16(FP), DX
	MOVQ         n+24(FP), CX
	VBROADCASTSS nk+32(FP), Z16
	VBROADCASTSS c+36(FP), Z17
	MOVL         c+36(FP), R8
	LOADEXP512
	KXNORW       K1, K1, K1

xsloop:
	TAILMASK512(xsfull, xsdone)

xsfull:
	VMOVUPS.Z   (SI), K1, Z0
	VMOVAPS     Z0, Z3
	// The cubic term only when c is not +0: c·x³ would turn x = ±Inf into NaN.
	TESTL       R8, R8
	JZ          xsarg
	VMULPS      Z17, Z0, Z4
	VMULPS      Z0, Z4, Z4
	VFMADD231PS Z4, Z0, Z3

xsarg:
	VMULPS Z16, Z3, Z3
	EXP512(Z3, Z1, Z2)
	VADDPS Z28, Z1, Z1
	VDIVPS Z1, Z0, Z1
	TESTQ  DX, DX
	JZ     xsstore
	VMOVUPS.Z (DX), K1, Z2
	VMULPS    Z2, Z1, Z1
	ADDQ      $64, DX

xsstore:
	VMOVUPS Z1, K1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     xsloop

xsdone:
	VZEROUPPER
	RET

// func gelu512(dst, src, h *float32, n int)
TEXT ·gelu512(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         h+16(FP), DX
	MOVQ         n+24(FP), CX
	LOADEXP512
	VBROADCASTSS ABS, Z5
	VBROADCASTSS RSQRT2, Z6
	VBROADCASTSS HALF, Z7
	VBROADCASTSS G0, Z8
	VBROADCASTSS G1, Z9
	VBROADCASTSS G2, Z10
	VBROADCASTSS G3, Z11
	VBROADCASTSS G4, Z12
	VBROADCASTSS G5, Z13
	VBROADCASTSS G6, Z14
	VBROADCASTSS G7, Z15
	VBROADCASTSS G8, Z16
	VBROADCASTSS G9, Z17
	KXNORW       K1, K1, K1

geloop:
	TAILMASK512(gefull, gedone)

gefull:
	// z = |x|/√2, t = 1/(1 + z/2), e = t·exp(P(t) - z²)/2 = erfc(z)/2.
	VMOVUPS.Z    (SI), K1, Z0
	VANDPS       Z5, Z0, Z1
	VMULPS       Z6, Z1, Z1
	VMOVAPS      Z28, Z2
	VFMADD231PS  Z7, Z1, Z2
	VDIVPS       Z2, Z28, Z2
	VMOVAPS      Z8, Z3
	VFMADD213PS  Z9, Z2, Z3
	VFMADD213PS  Z10, Z2, Z3
	VFMADD213PS  Z11, Z2, Z3
	VFMADD213PS  Z12, Z2, Z3
	VFMADD213PS  Z13, Z2, Z3
	VFMADD213PS  Z14, Z2, Z3
	VFMADD213PS  Z15, Z2, Z3
	VFMADD213PS  Z16, Z2, Z3
	VFMADD213PS  Z17, Z2, Z3
	VFNMADD231PS Z1, Z1, Z3
	EXP512(Z3, Z4, Z1)
	VMULPS       Z2, Z4, Z4
	VMULPS       Z7, Z4, Z4
	// Φ(x) = 1 - e, or e where the sign bit of x is set (as geluf).
	VSUBPS       Z4, Z28, Z1
	VPMOVD2M     Z0, K4
	VMOVAPS      Z4, K4, Z1
	VMULPS       Z1, Z0, Z1
	TESTQ        DX, DX
	JZ           gestore
	VMOVUPS.Z    (DX), K1, Z2
	VMULPS       Z2, Z1, Z1
	ADDQ         $64, DX

gestore:
	VMOVUPS Z1, K1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     geloop

gedone:
	VZEROUPPER
	RET

// The AVX2 kernels take n a multiple of 8 (the Go side keeps the rest).

// func expSum256(dst, src *float32, n int, a, b float32) (sum float64)
TEXT ·expSum256(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS a+24(FP), Y8
	VBROADCASTSS b+28(FP), Y9
	VXORPD       Y14, Y14, Y14
	VXORPD       Y15, Y15, Y15

es2loop:
	TESTQ CX, CX
	JLE   es2done
	VMOVUPS      (SI), Y0
	VFMADD213PS  Y9, Y8, Y0
	EXP256(Y0, Y1, Y2, Y3, Y4)
	VMOVUPS      Y1, (DI)
	VCVTPS2PD    X1, Y2
	VADDPD       Y2, Y14, Y14
	VEXTRACTF128 $1, Y1, X2
	VCVTPS2PD    X2, Y2
	VADDPD       Y2, Y15, Y15
	ADDQ         $32, SI
	ADDQ         $32, DI
	SUBQ         $8, CX
	JMP          es2loop

es2done:
	VADDPD       Y15, Y14, Y14
	VEXTRACTF128 $1, Y14, X15
	VADDPD       X15, X14, X14
	VUNPCKHPD    X14, X14, X15
	VADDSD       X15, X14, X14
	VMOVSD       X14, sum+32(FP)
	VZEROUPPER
	RET

// func max256(x *float32, n int) (m float32)
TEXT ·max256(SB), NOSPLIT, $0-20
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	VMOVUPS NEGINF, Y0

mx2loop:
	TESTQ  CX, CX
	JLE    mx2done
	VMAXPS (SI), Y0, Y0
	ADDQ   $32, SI
	SUBQ   $8, CX
	JMP    mx2loop

mx2done:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSS       X0, m+16(FP)
	VZEROUPPER
	RET

// func scale256(x *float32, n int, a float32)
TEXT ·scale256(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS a+16(FP), Y8

sc2loop:
	TESTQ   CX, CX
	JLE     sc2done
	VMULPS  (SI), Y8, Y0
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	JMP     sc2loop

sc2done:
	VZEROUPPER
	RET

// func xsigmoid256(dst, src, h *float32, n int, nk, c float32)
TEXT ·xsigmoid256(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         h+16(FP), DX
	MOVQ         n+24(FP), CX
	VBROADCASTSS nk+32(FP), Y8
	VBROADCASTSS c+36(FP), Y9
	MOVL         c+36(FP), R8

xs2loop:
	TESTQ   CX, CX
	JLE     xs2done
	VMOVUPS (SI), Y0
	VMOVAPS Y0, Y3
	TESTL   R8, R8
	JZ      xs2arg
	VMULPS      Y9, Y0, Y4
	VMULPS      Y0, Y4, Y4
	VFMADD231PS Y4, Y0, Y3

xs2arg:
	VMULPS  Y8, Y3, Y3
	EXP256(Y3, Y1, Y2, Y4, Y5)
	VADDPS  ONE, Y1, Y1
	VDIVPS  Y1, Y0, Y1
	TESTQ   DX, DX
	JZ      xs2store
	VMULPS  (DX), Y1, Y1
	ADDQ    $32, DX

xs2store:
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     xs2loop

xs2done:
	VZEROUPPER
	RET

// func gelu256(dst, src, h *float32, n int)
TEXT ·gelu256(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ h+16(FP), DX
	MOVQ n+24(FP), CX

ge2loop:
	TESTQ CX, CX
	JLE   ge2done
	VMOVUPS      (SI), Y0
	VANDPS       ABS, Y0, Y1
	VMULPS       RSQRT2, Y1, Y1
	VMOVUPS      ONE, Y2
	VFMADD231PS  HALF, Y1, Y2
	VMOVUPS      ONE, Y6
	VDIVPS       Y2, Y6, Y2
	VMOVUPS      G0, Y3
	VFMADD213PS  G1, Y2, Y3
	VFMADD213PS  G2, Y2, Y3
	VFMADD213PS  G3, Y2, Y3
	VFMADD213PS  G4, Y2, Y3
	VFMADD213PS  G5, Y2, Y3
	VFMADD213PS  G6, Y2, Y3
	VFMADD213PS  G7, Y2, Y3
	VFMADD213PS  G8, Y2, Y3
	VFMADD213PS  G9, Y2, Y3
	VFNMADD231PS Y1, Y1, Y3
	EXP256(Y3, Y4, Y1, Y5, Y6)
	VMULPS       Y2, Y4, Y4
	VMULPS       HALF, Y4, Y4
	// Φ(x) = 1 - e, or e where the sign bit of x is set (as geluf).
	VMOVUPS      ONE, Y1
	VSUBPS       Y4, Y1, Y1
	VBLENDVPS    Y0, Y4, Y1, Y1
	VMULPS       Y1, Y0, Y1
	TESTQ        DX, DX
	JZ           ge2store
	VMULPS       (DX), Y1, Y1
	ADDQ         $32, DX

ge2store:
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     ge2loop

ge2done:
	VZEROUPPER
	RET
