//go:build openblas

package cpu

// #cgo LDFLAGS: -lopenblas
// #include <cblas.h>
import "C"

import (
	"sync"
	"unsafe"
)

// haveBLAS is true: built with -tags openblas, MatMul calls cblas_sgemm.
const haveBLAS = true

// blasMu serializes cblas_sgemm calls: OpenBLAS runs its own thread pool,
// and concurrent calls from several goroutines would oversubscribe it (and
// are unsafe in builds without locking).
var blasMu sync.Mutex

// blasSgemm calls OpenBLAS's cblas_sgemm (row-major) with alpha 1 and beta 0
// or 1; see gemm for the arguments.
func blasSgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, acc bool, c []float32, ldc int) {
	ta, tb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	beta := C.float(0)
	if acc {
		beta = 1
	}
	if k == 0 {
		if !acc {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	blasMu.Lock()
	defer blasMu.Unlock()
	C.cblas_sgemm(C.CblasRowMajor, C.enum_CBLAS_TRANSPOSE(ta), C.enum_CBLAS_TRANSPOSE(tb),
		C.blasint(m), C.blasint(n), C.blasint(k), 1,
		(*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb), beta,
		(*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}

// BLASSgemm calls cblas_sgemm directly on row-major (m, k)·(k, n) → (m, n)
// matrices; the benchmark uses it as the OpenBLAS baseline.
func BLASSgemm(m, n, k int, a, b, c []float32) error {
	blasSgemm(false, false, m, n, k, a, k, b, n, false, c, n)
	return nil
}
