// nmsnn/task.hpp — what a model predicts: classes, two classes, or real values.
//
// The task decides how a table's target column is read (class names or numbers), which loss and
// which metrics apply; it is stored with a model so prediction files are read the same way.
#pragma once

#include <string>

#include "nmsnn/error.hpp"

namespace nmsnn {

enum class TaskKind {
  classification,  // target is one of C >= 2 classes -> Dataset::labels in [0, C)
  regression,      // target is a real number -> Dataset::targets
  binary,          // exactly two classes -> labels 0 and 1; class 1 is the "positive" one
};

inline const char* to_string(TaskKind task) {
  switch (task) {
    case TaskKind::classification: return "multiclass";
    case TaskKind::regression: return "regression";
    case TaskKind::binary: return "binary";
  }
  return "unknown";
}

// "multiclass" (or "classification"), "regression" or "binary"; anything else throws naming the
// accepted words.
inline TaskKind parse_task_kind(const std::string& name) {
  if (name == "multiclass" || name == "classification") return TaskKind::classification;
  if (name == "regression") return TaskKind::regression;
  if (name == "binary") return TaskKind::binary;
  detail::fail("unknown task '", name, "': expected multiclass, binary or regression");
}

}  // namespace nmsnn
