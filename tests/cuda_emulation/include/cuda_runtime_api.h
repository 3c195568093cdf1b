// cuda_runtime_api.h (emulated) — the same declarations as cuda_runtime.h here.
#pragma once
#include "cuda_runtime.h"
