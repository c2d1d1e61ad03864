//go:build !openblas

package cpu

import "errors"

// haveBLAS is false: built without -tags openblas, MatMul uses gemmGo.
const haveBLAS = false

// blasSgemm is never called without the openblas tag.
func blasSgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, acc bool, c []float32, ldc int) {
	gemmGo(transA, transB, m, n, k, a, lda, b, ldb, acc, c, ldc)
}

// BLASSgemm is unavailable without -tags openblas and returns an error.
func BLASSgemm(m, n, k int, a, b, c []float32) error {
	return errors.New("cpu: built without -tags openblas, no cblas_sgemm")
}
