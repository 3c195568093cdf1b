// cuda/cublas_scope.hpp — binding the caller's cuBLAS handle to a pass's stream and settings,
// and putting back what it found.
#pragma once

#include <cublas_v2.h>

#include "cuda_check.cuh"

namespace nmsnn::cuda {

// Binds the caller's cuBLAS handle to the stream and the settings these products need, and puts
// back what it found when the pass is queued.
class CublasScope {
 public:
  CublasScope(cublasHandle_t handle, cudaStream_t stream) : handle_(handle) {
    NMSNN_CUBLAS_CHECK(cublasGetStream(handle_, &stream_));
    NMSNN_CUBLAS_CHECK(cublasGetPointerMode(handle_, &pointer_));
    NMSNN_CUBLAS_CHECK(cublasGetMathMode(handle_, &math_));
    NMSNN_CUBLAS_CHECK(cublasGetAtomicsMode(handle_, &atomics_));
    rebound_ = stream_ != stream;
    try {
      if (rebound_) NMSNN_CUBLAS_CHECK(cublasSetStream(handle_, stream));
      NMSNN_CUBLAS_CHECK(cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_HOST));  // alpha, beta
      // Default math: FP32 products unless a call asks for TF32 by its compute type.
      NMSNN_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
      // No atomics: every product gives the same bits on every run.
      NMSNN_CUBLAS_CHECK(cublasSetAtomicsMode(handle_, CUBLAS_ATOMICS_NOT_ALLOWED));
    } catch (...) {
      restore();
      throw;
    }
  }
  ~CublasScope() { restore(); }
  CublasScope(const CublasScope&) = delete;
  CublasScope& operator=(const CublasScope&) = delete;

 private:
  void restore() noexcept {  // best effort: a destructor must not throw
    cublasSetAtomicsMode(handle_, atomics_);
    cublasSetMathMode(handle_, math_);
    cublasSetPointerMode(handle_, pointer_);
    if (rebound_) cublasSetStream(handle_, stream_);
  }
  cublasHandle_t handle_;
  cudaStream_t stream_ = nullptr;
  cublasPointerMode_t pointer_ = CUBLAS_POINTER_MODE_HOST;
  cublasMath_t math_ = CUBLAS_DEFAULT_MATH;
  cublasAtomicsMode_t atomics_ = CUBLAS_ATOMICS_NOT_ALLOWED;
  bool rebound_ = false;
};

}  // namespace nmsnn::cuda
