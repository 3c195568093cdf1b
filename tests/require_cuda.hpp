// require_cuda.hpp — GPU tests start with REQUIRE_CUDA(): without a usable CUDA device they are
// skipped with the reason, so CI machines without a GPU report them as skipped, not passed.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "nmsnn/network.hpp"

#define REQUIRE_CUDA()                                                             \
  do {                                                                             \
    std::string why_;                                                              \
    if (!nmsnn::cuda_available(&why_)) GTEST_SKIP() << "no CUDA device: " << why_; \
  } while (0)
