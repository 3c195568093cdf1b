// nmsnn/nmsnn.hpp — the whole public C++ API in one include (CUDA types stay in nmsnn/cuda.hpp; the
// SVG plots, a component of their own, in nmsnn/plot.hpp with the target nmsnn::plot).
#pragma once

#include "nmsnn/checkpoint.hpp"
#include "nmsnn/csv.hpp"
#include "nmsnn/dataset.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/idx.hpp"
#include "nmsnn/json.hpp"
#include "nmsnn/limits.hpp"
#include "nmsnn/loss.hpp"
#include "nmsnn/metrics.hpp"
#include "nmsnn/model.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"
#include "nmsnn/philox.hpp"
#include "nmsnn/preprocess.hpp"
#include "nmsnn/safetensors.hpp"
#include "nmsnn/spec.hpp"
#include "nmsnn/spec_json.hpp"
#include "nmsnn/task.hpp"
#include "nmsnn/trainer.hpp"
