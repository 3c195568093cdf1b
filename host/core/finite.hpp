// core/finite.hpp — where the first inf or NaN of an array is: the check every input to a
// pass, and every training set a StepLoop keeps, goes through.
#pragma once

#include <cstddef>

namespace nmsnn::detail {

// The index of the first inf or NaN among data[0..count) (count if none).
size_t first_non_finite(const float* data, size_t count);

}  // namespace nmsnn::detail
