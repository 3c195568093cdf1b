// cuda_check.cuh — turning CUDA and cuBLAS status codes into nmsnn::Error with file and line.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "nmsnn/error.hpp"

#define NMSNN_CUDA_CHECK(call)                                                              \
  do {                                                                                      \
    const cudaError_t nmsnn_status_ = (call);                                               \
    if (nmsnn_status_ != cudaSuccess)                                                       \
      ::nmsnn::detail::fail(#call, " failed at ", __FILE__, ":", __LINE__, ": ",            \
                            cudaGetErrorName(nmsnn_status_), " (",                          \
                            cudaGetErrorString(nmsnn_status_), ")");                        \
  } while (0)

#define NMSNN_CUBLAS_CHECK(call)                                                            \
  do {                                                                                      \
    const cublasStatus_t nmsnn_status_ = (call);                                            \
    if (nmsnn_status_ != CUBLAS_STATUS_SUCCESS)                                             \
      ::nmsnn::detail::fail(#call, " failed at ", __FILE__, ":", __LINE__, ": ",            \
                            cublasGetStatusName(nmsnn_status_));                            \
  } while (0)
