// bind_data.cpp — the library's data helpers: its seeded split (so Python splits rows exactly as
// `nmsnn train` does) and its CSV reader (so Python reads a table exactly as the CLI does).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <optional>

#include "convert.hpp"
#include "nmsnn/csv.hpp"
#include "nmsnn/preprocess.hpp"

namespace nmsnn::py {

namespace {

NumpyInt64 indices(const std::vector<int>& v) {
  return to_numpy(std::vector<int64_t>(v.begin(), v.end()), {v.size()});
}

std::tuple<NumpyInt64, NumpyInt64, NumpyInt64> split(int n, double test_fraction,
                                                     double validation_fraction, uint64_t seed,
                                                     std::optional<IntArray> stratify) {
  std::vector<int> labels;
  if (stratify) {
    if (stratify->ndim() != 1 || int(stratify->shape(0)) != n)
      detail::fail("stratify must hold one label per sample (", n, ")");
    labels.assign(stratify->data(), stratify->data() + n);
  }
  Split s;
  {
    nb::gil_scoped_release release;
    s = split_indices(n, test_fraction, validation_fraction, seed, stratify ? &labels : nullptr);
  }
  return {indices(s.train), indices(s.validation), indices(s.test)};
}

nb::dict read_table(const std::string& path, const std::string& target, const std::string& task,
                    const std::vector<std::string>& ignore) {
  CsvOptions opts;
  opts.target = target;
  opts.task = parse_task_kind(task);
  opts.ignore = ignore;
  Dataset d;
  {
    nb::gil_scoped_release release;
    d = load_csv(path, opts);
  }
  nb::dict out;
  out["x"] = to_numpy(std::move(d.x), {size_t(d.count), size_t(d.features)});
  if (opts.task == TaskKind::regression) {
    out["y"] = to_numpy(std::move(d.targets), {size_t(d.count), size_t(d.target_size)});
  } else {
    out["y"] = to_numpy(std::vector<int32_t>(d.labels.begin(), d.labels.end()), {size_t(d.count)});
  }
  out["feature_names"] = d.feature_names;
  out["class_names"] = d.class_names;
  out["target_names"] = d.target_names;
  return out;
}

}  // namespace

void bind_data(nb::module_& m) {
  m.def("split_indices", &split, nb::arg("n"), nb::arg("test_fraction"),
        nb::arg("validation_fraction") = 0.0, nb::arg("seed") = 1, nb::arg("stratify") = nb::none(),
        "The library's seeded split of range(n): (train, validation, test) index arrays, each "
        "ascending; stratified by the int32 labels `stratify` when given.");
  m.def("read_csv", &read_table, nb::arg("path"), nb::arg("target") = "",
        nb::arg("task") = "multiclass", nb::arg("ignore") = std::vector<std::string>{},
        "Reads a CSV file as `nmsnn train` does: a dict with x [N, F] float32, y (int32 class ids "
        "or float32 targets [N, K]), feature_names, class_names, target_names.");
}

}  // namespace nmsnn::py
