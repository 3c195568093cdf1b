// nmsnn/nmsnn.hpp — the whole public C++ API in one include.
#pragma once

#include "nmsnn/dataset.hpp"
#include "nmsnn/error.hpp"
#include "nmsnn/idx.hpp"
#include "nmsnn/loss.hpp"
#include "nmsnn/network.hpp"
#include "nmsnn/optimizer.hpp"
#include "nmsnn/philox.hpp"
#include "nmsnn/spec.hpp"
#include "nmsnn/trainer.hpp"
