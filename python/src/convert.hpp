// convert.hpp — NumPy arrays to and from the library's host vectors, and the pieces every binding
// file shares. Arrays cross as C-contiguous float32 (the Python side converts before calling).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "nmsnn/dataset.hpp"
#include "nmsnn/error.hpp"

namespace nmsnn::py {

namespace nb = nanobind;

// Read-only views of caller arrays: float32 or int32, C-contiguous, on the CPU.
using FloatArray = nb::ndarray<const float, nb::c_contig, nb::device::cpu>;
using IntArray = nb::ndarray<const int32_t, nb::c_contig, nb::device::cpu>;
// Arrays handed back to Python: NumPy arrays that own their memory.
using NumpyFloat = nb::ndarray<nb::numpy, float>;
using NumpyDouble = nb::ndarray<nb::numpy, double>;
using NumpyInt = nb::ndarray<nb::numpy, int32_t>;
using NumpyInt64 = nb::ndarray<nb::numpy, int64_t>;

// A vector moved into a NumPy array of `shape` (whose product must be its size).
NumpyFloat to_numpy(std::vector<float>&& values, std::vector<size_t> shape);
NumpyDouble to_numpy(std::vector<double>&& values, std::vector<size_t> shape);
NumpyInt to_numpy(std::vector<int32_t>&& values, std::vector<size_t> shape);
NumpyInt64 to_numpy(std::vector<int64_t>&& values, std::vector<size_t> shape);

std::vector<float> to_vector(const FloatArray& a);

// The samples of a Dataset from arrays: x [N, F]; `labels` [N] with `classes` classes, or
// `targets` [N] or [N, K]; either may be absent (None) for data to predict.
Dataset make_dataset(const FloatArray& x, const IntArray* labels, int classes,
                     const FloatArray* targets, const std::vector<std::string>& feature_names,
                     const std::vector<std::string>& class_names,
                     const std::vector<std::string>& target_names);

// Calls PyErr_CheckSignals with the GIL held (it must be), and turns a pending KeyboardInterrupt
// (or any error a signal handler raised) into a C++ exception that unwinds the library's loop
// and is raised again in Python when the binding returns.
void check_signals();

void bind_errors(nb::module_& m);
void bind_spec(nb::module_& m);
void bind_data(nb::module_& m);
void bind_network(nb::module_& m);
void bind_model(nb::module_& m);

}  // namespace nmsnn::py
