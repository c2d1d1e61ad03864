//go:build amd64 && !purego

#include "textflag.h"

// func CvtF16F32(dst *float32, src *uint16, n int)
//
// Converts n (a multiple of 16) fp16 words at src to float32 at dst, sixteen
// at a time with F16C's VCVTPH2PS (exact, like half.Float16ToFloat32).
TEXT ·CvtF16F32(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JE   done

loop:
	VCVTPH2PS (SI), Y0
	VCVTPH2PS 16(SI), Y1
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	DECQ      CX
	JNE       loop

done:
	VZEROUPPER
	RET
