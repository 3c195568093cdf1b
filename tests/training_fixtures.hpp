// training_fixtures.hpp — small datasets and parameter snapshots shared by the training tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "nmsnn/nmsnn.hpp"

// A small separable problem: the class is the index of the largest of the first 3 features.
inline nmsnn::Dataset blobs(int count, int features, uint64_t seed) {
  nmsnn::Dataset d;
  d.name = "blobs";
  d.count = count;
  d.features = features;
  d.classes = 3;
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int i = 0; i < count * features; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    d.x.push_back(float((s >> 40) & 0xffff) / 65536.0f);
  }
  for (int i = 0; i < count; ++i) {
    const float* x = d.x.data() + size_t(i) * features;
    d.labels.push_back(int(std::max_element(x, x + 3) - x));
  }
  return d;
}

// Every parameter of the network, concatenated in the network's order.
inline std::vector<float> all_parameters(const nmsnn::Network& net) {
  std::vector<float> all;
  for (const auto& p : net.parameters()) {
    const auto v = net.parameter(p.name);
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}
