// convert.cpp — NumPy arrays to and from host vectors (convert.hpp).
#include "convert.hpp"

#include <utility>

#include "nmsnn/error.hpp"

namespace nmsnn::py {

namespace {
template <class T>
nb::ndarray<nb::numpy, T> owned(std::vector<T>&& values, const std::vector<size_t>& shape) {
  size_t n = 1;
  for (size_t d : shape) n *= d;
  if (n != values.size())
    detail::fail("internal: an array of ", values.size(), " values cannot take a shape of ", n);
  auto* heap = new std::vector<T>(std::move(values));
  nb::capsule owner(heap, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T>(heap->data(), shape.size(), shape.data(), owner);
}

size_t numel(const FloatArray& a) {
  size_t n = 1;
  for (size_t d = 0; d < a.ndim(); ++d) n *= a.shape(d);
  return n;
}
}  // namespace

NumpyFloat to_numpy(std::vector<float>&& v, std::vector<size_t> s) { return owned(std::move(v), s); }
NumpyDouble to_numpy(std::vector<double>&& v, std::vector<size_t> s) { return owned(std::move(v), s); }
NumpyInt to_numpy(std::vector<int32_t>&& v, std::vector<size_t> s) { return owned(std::move(v), s); }
NumpyInt64 to_numpy(std::vector<int64_t>&& v, std::vector<size_t> s) { return owned(std::move(v), s); }

std::vector<float> to_vector(const FloatArray& a) {
  return std::vector<float>(a.data(), a.data() + numel(a));
}

Dataset make_dataset(const FloatArray& x, const IntArray* labels, int classes,
                     const FloatArray* targets, const std::vector<std::string>& feature_names,
                     const std::vector<std::string>& class_names,
                     const std::vector<std::string>& target_names) {
  if (x.ndim() != 2) detail::fail("X must be a 2-D array [samples, features], got ", x.ndim(), " dimensions");
  Dataset d;
  d.name = "array";
  d.count = int(x.shape(0));
  d.features = int(x.shape(1));
  d.x = to_vector(x);
  if (labels) {
    if (labels->ndim() != 1 || labels->shape(0) != x.shape(0))
      detail::fail("y must hold one label per sample (", x.shape(0), ")");
    d.labels.assign(labels->data(), labels->data() + labels->shape(0));
    d.classes = classes;
    d.class_names = class_names;
  }
  if (targets) {
    if (targets->ndim() < 1 || targets->ndim() > 2 || targets->shape(0) != x.shape(0))
      detail::fail("y must hold one target (or one row of targets) per sample (", x.shape(0), ")");
    d.target_size = targets->ndim() == 2 ? int(targets->shape(1)) : 1;
    d.targets = to_vector(*targets);
    d.target_names = target_names;
  }
  d.feature_names = feature_names;
  if (labels || targets) d.validate();  // data to predict has neither; its features are checked
                                        // by the Python side (finite, the right width)
  return d;
}

void check_signals() {
  if (PyErr_CheckSignals() != 0) throw nb::python_error();
}

}  // namespace nmsnn::py
