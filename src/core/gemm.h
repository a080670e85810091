// The math-kernel interface: the one place dense linear algebra enters.
//
// Row-major SGEMM with the BLAS argument order, so oneDNN's dnnl_sgemm or
// any CBLAS drops in:  C = alpha * op(A) * op(B) + beta * C,
// op(A): (M, K), op(B): (K, N), C: (M, N); trans_a/trans_b select A^T / B^T.
// sslc_sgemm_naive is the reference the tests compare every backend with.
#ifndef SSLC_CORE_GEMM_H
#define SSLC_CORE_GEMM_H

#include <stdbool.h>
#include <stdint.h>

void sslc_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                int64_t ldc);

void sslc_sgemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                      float *C, int64_t ldc);

// "dnnl", "cblas" or "naive".
const char *sslc_gemm_backend(void);
// The instruction set oneDNN's kernels use on this CPU, as oneDNN names it
// ("avx2", "avx512_core_bf16", "avx512_core_amx", ...); "" without oneDNN.
const char *sslc_math_isa(void);


#endif
