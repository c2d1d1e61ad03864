//go:build amd64 && !purego

#include "textflag.h"

// func TransposeRows(dst, src *float32, lda, rows, kc int)
//
// For each 4 k steps and each block of 4 rows: load 4 floats of each row
// (X0..X3), transpose the 4×4 block in registers and store its 4 k steps'
// 4 floats into dst, whose k steps are rows*4 bytes apart. Every row is read
// in order and dst is written in order, 16 bytes at a time.
TEXT ·TransposeRows(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ rows+24(FP), DX
	MOVQ kc+32(FP), CX
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ DX, R12
	SHLQ $2, R12
	LEAQ (R12)(R12*2), R13
	SHRQ $2, DX
	SHRQ $2, CX
	JE   done

steps:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ DX, R10

block:
	VMOVUPS   (AX), X0
	VMOVUPS   (AX)(R8*1), X1
	VMOVUPS   (AX)(R8*2), X2
	VMOVUPS   (AX)(R9*1), X3
	VUNPCKLPS X1, X0, X4
	VUNPCKHPS X1, X0, X5
	VUNPCKLPS X3, X2, X6
	VUNPCKHPS X3, X2, X7
	VMOVLHPS  X6, X4, X0
	VMOVHLPS  X4, X6, X1
	VMOVLHPS  X7, X5, X2
	VMOVHLPS  X5, X7, X3
	VMOVUPS   X0, (BX)
	VMOVUPS   X1, (BX)(R12*1)
	VMOVUPS   X2, (BX)(R12*2)
	VMOVUPS   X3, (BX)(R13*1)
	LEAQ      (AX)(R8*4), AX
	ADDQ      $16, BX
	DECQ      R10
	JNE       block

	ADDQ $16, SI
	LEAQ (DI)(R12*4), DI
	DECQ CX
	JNE  steps

done:
	RET
