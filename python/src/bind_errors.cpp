// bind_errors.cpp — the library's exceptions in Python: nmsnn.Error (a ValueError: every library
// error is about a bad argument, file or value) and nmsnn.TrainingDiverged (an Error).
#include "convert.hpp"
#include "nmsnn/trainer.hpp"

namespace nmsnn::py {

namespace {
PyObject* error_type = nullptr;
PyObject* diverged_type = nullptr;
}  // namespace

void bind_errors(nb::module_& m) {
  error_type = PyErr_NewExceptionWithDoc(
      "nmsnn._core.Error", "An error of the nmsnn library; its message names what is at fault.",
      PyExc_ValueError, nullptr);
  diverged_type = PyErr_NewExceptionWithDoc(
      "nmsnn._core.TrainingDiverged",
      "Training diverged (a loss or parameter not finite, or exploding); lower the learning rate.",
      error_type, nullptr);
  m.attr("Error") = nb::handle(error_type);
  m.attr("TrainingDiverged") = nb::handle(diverged_type);
  // One translator, most specific type first.
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const TrainingDiverged& e) {
      PyErr_SetString(diverged_type, e.what());
    } catch (const Error& e) {
      PyErr_SetString(error_type, e.what());
    }
  });
}

}  // namespace nmsnn::py
