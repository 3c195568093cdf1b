// cpu/lif.hpp — the spiking layer's time loop for one sample, forward and backward (SPEC.md 2, 4).
//
// These loops are the reference statement of the neuron model: the CUDA kernels are checked
// against them. Templated on the number type so the same code runs in float (the engine) and in
// double (the finite-difference tests), and on the reset rule so the inner loop over neurons has
// no branches and vectorises. On x86-64 the loops are compiled again for the avx2 and avx512
// kernel sets (kernel_set.hpp), 8 and 16 neurons per instruction instead of 4, and with
// fp-contract=off: no fused multiply-add, so every set gives the baseline's bits exactly.
#pragma once

#include <algorithm>
#include <vector>

#include "cpu/kernel_set.hpp"
#include "nmsnn/spec.hpp"

namespace nmsnn::cpu {

template <class Real>
struct LifNeurons {
  int size = 0;
  Real decay = 0, threshold = 1, penalty = 0;
  ResetRule reset = ResetRule::scale;
  bool delay = true;

  static LifNeurons from(const SpikingLayer& spec) {
    return {spec.size, Real(spec.decay), Real(spec.threshold), Real(spec.penalty), spec.reset,
            spec.delay};
  }
  // The lif layer's neurons: the same settings, as many as its input is wide.
  static LifNeurons from(const Lif& spec, int size) {
    return {size, Real(spec.decay), Real(spec.threshold), Real(spec.penalty), spec.reset,
            spec.delay};
  }
};

namespace detail_lif {

template <class Real, ResetRule Rule>
[[gnu::always_inline]] inline void forward(const LifNeurons<Real>& n, int T, const Real* a, Real* u,
                                           Real* state, Real* spikes) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  const int H = n.size;
  const Real decay = n.decay, th = n.threshold, p = n.penalty, scale_factor = p / th;
  std::vector<Real> v(H, Real(0));  // v[t-1], zero before the first step
  if (n.delay) {
    // With delay the layer returns (v[t-1], s[t-1]): zeros at t = 0, then everything shifted.
    std::fill(state, state + H, Real(0));
    std::fill(spikes, spikes + H, Real(0));
  }
  for (int t = 0; t < T; ++t) {
    const Real* at = a + size_t(t) * H;
    Real* ut = u + size_t(t) * H;
    const int out = n.delay ? t + 1 : t;  // the step that returns this step's values
    if (out >= T) {
      for (int h = 0; h < H; ++h) {
        const Real uu = at[h] + decay * v[h];
        ut[h] = uu;
      }
      continue;  // v[T-1] and s[T-1] are never returned with delay
    }
    // Distinct arrays: __restrict lets the compiler vectorise the loop over neurons.
    Real* __restrict st = spikes + size_t(out) * H;
    Real* __restrict vt = state + size_t(out) * H;
    Real* __restrict vp = v.data();
    Real* __restrict uo = ut;
    const Real* __restrict ai = at;
    for (int h = 0; h < H; ++h) {
      const Real uu = ai[h] + decay * vp[h];
      const Real s = std::max(uu - th, Real(0));
      const Real g = Real(s > 0);  // branch-free, so the loop vectorises
      const Real vv = Rule == ResetRule::scale ? uu - scale_factor * uu * g : uu - (p + s) * g;
      uo[h] = uu;
      st[h] = s;
      vt[h] = vv;
      vp[h] = vv;
    }
  }
}

template <class Real, ResetRule Rule>
[[gnu::always_inline]] inline void backward(const LifNeurons<Real>& n, int T, const Real* u,
                                            const Real* d_state, const Real* d_spikes, Real* du) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  const int H = n.size;
  const Real decay = n.decay, th = n.threshold, scale_factor = n.penalty / n.threshold;
  std::vector<Real> dv_next(H, Real(0));  // decay * dL/du[t+1]
  for (int t = T - 1; t >= 0; --t) {
    // Which returned step carries v[t] and s[t]: the next one with delay, this one without.
    const int out = n.delay ? t + 1 : t;
    const Real* ut = u + size_t(t) * H;
    Real* dut = du + size_t(t) * H;
    if (out >= T) {
      for (int h = 0; h < H; ++h) {
        const Real g = Real(ut[h] - th > 0);
        const Real dv_du = Rule == ResetRule::scale ? Real(1) - scale_factor * g : Real(1) - g;
        dut[h] = dv_next[h] * dv_du;
        dv_next[h] = decay * dut[h];
      }
      continue;
    }
    // Distinct arrays: __restrict lets the compiler vectorise the loop over neurons.
    const Real* __restrict dvt = d_state + size_t(out) * H;
    const Real* __restrict dst = d_spikes + size_t(out) * H;
    const Real* __restrict ui = ut;
    Real* __restrict duo = dut;
    Real* __restrict dvn = dv_next.data();
    for (int h = 0; h < H; ++h) {
      const Real g = Real(ui[h] - th > 0);  // branch-free, so the loop vectorises
      const Real dv_du = Rule == ResetRule::scale ? Real(1) - scale_factor * g : Real(1) - g;
      const Real d = (dvn[h] + dvt[h]) * dv_du + dst[h] * g;
      duo[h] = d;
      dvn[h] = decay * d;
    }
  }
}

template <class Real>
[[gnu::always_inline]] inline void spikes_from_u(const LifNeurons<Real>& n, int T, const Real* u,
                                                 Real* spikes) {
  const int H = n.size;
  for (int t = 0; t < T; ++t) {
    const int src = n.delay ? t - 1 : t;
    Real* st = spikes + size_t(t) * H;
    if (src < 0) {
      std::fill(st, st + H, Real(0));
      continue;
    }
    const Real* us = u + size_t(src) * H;
    for (int h = 0; h < H; ++h) st[h] = std::max(us[h] - n.threshold, Real(0));
  }
}

// Each loop again for the avx512 and avx2 kernel sets (the entry points' target attributes;
// the bodies above are inlined into them), without fused multiply-adds:
#if defined(NMSNN_CPU_X86)
// GCC: the optimize attribute; clang has no such attribute, and contracts only within one
// expression (-ffp-contract=on), which the `#pragma clang fp contract(off)` in the loops stops.
#if defined(__clang__)
#define NMSNN_LIF_EXACT
#else
#define NMSNN_LIF_EXACT __attribute__((optimize("fp-contract=off")))
#endif
template <class Real, ResetRule Rule>
NMSNN_TARGET_AVX512 NMSNN_LIF_EXACT void forward_avx512(const LifNeurons<Real>& n, int T,
                                                        const Real* a, Real* u, Real* state,
                                                        Real* spikes) {
  forward<Real, Rule>(n, T, a, u, state, spikes);
}
template <class Real, ResetRule Rule>
NMSNN_TARGET_AVX2 NMSNN_LIF_EXACT void forward_avx2(const LifNeurons<Real>& n, int T,
                                                    const Real* a, Real* u, Real* state,
                                                    Real* spikes) {
  forward<Real, Rule>(n, T, a, u, state, spikes);
}
template <class Real, ResetRule Rule>
NMSNN_TARGET_AVX512 NMSNN_LIF_EXACT void backward_avx512(const LifNeurons<Real>& n, int T,
                                                         const Real* u, const Real* d_state,
                                                         const Real* d_spikes, Real* du) {
  backward<Real, Rule>(n, T, u, d_state, d_spikes, du);
}
template <class Real, ResetRule Rule>
NMSNN_TARGET_AVX2 NMSNN_LIF_EXACT void backward_avx2(const LifNeurons<Real>& n, int T,
                                                     const Real* u, const Real* d_state,
                                                     const Real* d_spikes, Real* du) {
  backward<Real, Rule>(n, T, u, d_state, d_spikes, du);
}
template <class Real>
NMSNN_TARGET_AVX512 void spikes_from_u_avx512(const LifNeurons<Real>& n, int T, const Real* u,
                                              Real* spikes) {
  spikes_from_u<Real>(n, T, u, spikes);
}
template <class Real>
NMSNN_TARGET_AVX2 void spikes_from_u_avx2(const LifNeurons<Real>& n, int T, const Real* u,
                                          Real* spikes) {
  spikes_from_u<Real>(n, T, u, spikes);
}
#undef NMSNN_LIF_EXACT
#endif

template <class Real, ResetRule Rule>
void forward_any(const LifNeurons<Real>& n, int T, const Real* a, Real* u, Real* state,
                 Real* spikes) {
#if defined(NMSNN_CPU_X86)
  switch (active_kernel_set()) {
    case KernelSet::avx512: return forward_avx512<Real, Rule>(n, T, a, u, state, spikes);
    case KernelSet::avx2: return forward_avx2<Real, Rule>(n, T, a, u, state, spikes);
    default: break;
  }
#endif
  forward<Real, Rule>(n, T, a, u, state, spikes);
}

template <class Real, ResetRule Rule>
void backward_any(const LifNeurons<Real>& n, int T, const Real* u, const Real* d_state,
                  const Real* d_spikes, Real* du) {
#if defined(NMSNN_CPU_X86)
  switch (active_kernel_set()) {
    case KernelSet::avx512: return backward_avx512<Real, Rule>(n, T, u, d_state, d_spikes, du);
    case KernelSet::avx2: return backward_avx2<Real, Rule>(n, T, u, d_state, d_spikes, du);
    default: break;
  }
#endif
  backward<Real, Rule>(n, T, u, d_state, d_spikes, du);
}

}  // namespace detail_lif

// Forward through all T steps of one sample.
//   a      [T, H]  input currents W x[t] + bias
//   u      [T, H]  out: pre-reset inner state u[t] (all that backward needs)
//   state  [T, H]  out: the state the layer returns at each step (v[t-1] with delay, else v[t])
//   spikes [T, H]  out: the spikes it returns (s[t-1] with delay, else s[t])
// Per step and neuron: u = a + decay * v_prev; s = relu(u - threshold); g = s > 0;
// v = u - (penalty/threshold) u g (scale) or u - (penalty + s) g (subtract).
template <class Real>
void lif_forward(const LifNeurons<Real>& n, int T, const Real* a, Real* u, Real* state,
                 Real* spikes) {
  if (n.reset == ResetRule::scale)
    detail_lif::forward_any<Real, ResetRule::scale>(n, T, a, u, state, spikes);
  else
    detail_lif::forward_any<Real, ResetRule::subtract>(n, T, a, u, state, spikes);
}

// The spikes the layer returned, recomputed from the saved u (s = relu(u - threshold), shifted by
// one step with delay). Backward uses this to get the next layer's input without storing it.
template <class Real>
void lif_spikes_from_u(const LifNeurons<Real>& n, int T, const Real* u, Real* spikes) {
#if defined(NMSNN_CPU_X86)
  switch (active_kernel_set()) {
    case KernelSet::avx512: return detail_lif::spikes_from_u_avx512<Real>(n, T, u, spikes);
    case KernelSet::avx2: return detail_lif::spikes_from_u_avx2<Real>(n, T, u, spikes);
    default: break;
  }
#endif
  detail_lif::spikes_from_u<Real>(n, T, u, spikes);
}

// Backward through all T steps of one sample, BPTT with the gate g held constant.
//   u        [T, H]  saved pre-reset states
//   d_state  [T, H]  dL/d(returned state)  (zeros where the state went nowhere)
//   d_spikes [T, H]  dL/d(returned spikes) (likewise)
//   du       [T, H]  out: dL/du[t] = dL/da[t]
// Derivatives: ds/du = g; dv/du = 1 - (penalty/threshold) g for `scale`, 1 - g for `subtract`;
// u[t] reaches v[t-1] through the decay, so dL/dv[t-1] gains decay * dL/du[t].
template <class Real>
void lif_backward(const LifNeurons<Real>& n, int T, const Real* u, const Real* d_state,
                  const Real* d_spikes, Real* du) {
  if (n.reset == ResetRule::scale)
    detail_lif::backward_any<Real, ResetRule::scale>(n, T, u, d_state, d_spikes, du);
  else
    detail_lif::backward_any<Real, ResetRule::subtract>(n, T, u, d_state, d_spikes, du);
}

}  // namespace nmsnn::cpu
