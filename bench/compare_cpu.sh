#!/usr/bin/env bash
# compare_cpu.sh — nmsnn's CPU engine against the seed's own PyTorch model, side by side, in one run.
#
# For each input scale (unit = x/255, centered = x/255 - 0.5):
#   * ours:    build/tools/nmsnn train --preset seed --input-scale SCALE --epochs 1 \
#                  --train-limit N --test-limit 0 --report FILE --quiet
#   * PyTorch: bench/seed_pytorch.py (the seed's 784-100-10, T=128 spiking model), same N, one epoch
#              at the seed's first lr, capped by --time-budget, at three thread settings:
#                t2_ob1: torch threads 2, OPENBLAS_NUM_THREADS=1
#                t1_ob1: torch threads 1, OPENBLAS_NUM_THREADS=1
#                t2_ob2: torch threads 2, OPENBLAS_NUM_THREADS=2
#              the best of the three is the reference.
# plus the machine's FP32 FMA peak and memcpy bandwidth from bench/cpu_peak.cpp.
#
# Useful FLOPs per training sample (dense formulation; elementwise work, biases, optimizer not counted):
#   layer 1 forward      2*T*784*100
#   layer 1 weight grad  2*T*784*100
#   layer 2 forward      2*T*100*10
#   layer 2 weight grad  2*T*100*10
#   layer 2 input grad   2*T*100*10      (layer 1 needs no input gradient)
#   total = T * (4*784*100 + 6*100*10) = T * 319600  ->  40,908,800 FLOP at T = 128
#
# Output (default bench/out/, keep it git-ignored): summary.md (markdown table), summary.json,
# and every raw report / log / probe output behind them.
#
# Usage: bench/compare_cpu.sh [options]
#   --out DIR           output directory (default bench/out)
#   --train-limit N     training samples for both sides (default 5000)
#   --pt-budget S       PyTorch --time-budget per run, seconds (default 60)
#   --scales "A B"      input scales (default "unit centered")
#   --pt-settings "..." subset of "t2_ob1 t1_ob1 t2_ob2" (default: all three)
#   --pt-reduce R       PyTorch readout reduction: auto|sum|mean (default auto = the "readout" key of
#                       our report for that scale, else sum; the reduction costs nothing measurable,
#                       it only changes the numbers; see bench/seed_pytorch.py on sum vs mean)
#   --nmsnn PATH        engine CLI (default build/tools/nmsnn)
#   --ours-args "..."   extra arguments for the engine CLI
#   --python PATH       Python with torch (default /usr/bin/python3, Debian's python3-torch)
#   --peak-bin PATH     a built cpu_peak (default: build/bench/cpu_peak if up to date, else compiled
#                       here with g++ -O2 -mavx2 -mfma into the output directory). The % of peak
#                       columns use the AVX-512 peak when nmsnn ran its avx512 kernel set.
#   --skip-ours / --skip-pytorch / --skip-peak
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

OUT=bench/out
N=5000
PT_BUDGET=60
SCALES="unit centered"
PT_SETTINGS="t2_ob1 t1_ob1 t2_ob2"
PT_REDUCE=auto
NMSNN=build/tools/nmsnn
OURS_ARGS=""
PY=/usr/bin/python3
PEAK_BIN=""
SKIP_OURS=0
SKIP_PT=0
SKIP_PEAK=0

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --train-limit) N="$2"; shift 2 ;;
    --pt-budget) PT_BUDGET="$2"; shift 2 ;;
    --scales) SCALES="$2"; shift 2 ;;
    --pt-settings) PT_SETTINGS="$2"; shift 2 ;;
    --pt-reduce) PT_REDUCE="$2"; shift 2 ;;
    --nmsnn) NMSNN="$2"; shift 2 ;;
    --ours-args) OURS_ARGS="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --peak-bin) PEAK_BIN="$2"; shift 2 ;;
    --skip-ours) SKIP_OURS=1; shift ;;
    --skip-pytorch) SKIP_PT=1; shift ;;
    --skip-peak) SKIP_PEAK=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare_cpu.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "[compare_cpu] $*" >&2; }

mkdir -p "$OUT" || exit 1
# Forget the results of earlier runs so that nothing stale reaches the summary.
rm -f "$OUT"/ours_*.json "$OUT"/ours_*.log "$OUT"/ours_*.status \
      "$OUT"/pytorch_*.json "$OUT"/pytorch_*.log "$OUT"/pytorch_*.status \
      "$OUT"/cpu_peak.json "$OUT"/cpu_peak.txt "$OUT"/machine.env "$OUT"/summary.md "$OUT"/summary.json

# ------------------------------------------------------------------------------ machine info
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "model_name=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
  echo "cpus=$(nproc 2>/dev/null)"
  echo "cores_per_socket=$(lscpu 2>/dev/null | sed -n 's/^Core(s) per socket:[[:space:]]*//p' | head -1)"
  echo "sockets=$(lscpu 2>/dev/null | sed -n 's/^Socket(s):[[:space:]]*//p' | head -1)"
  echo "threads_per_core=$(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core:[[:space:]]*//p' | head -1)"
  echo "kernel=$(uname -sr)"
  echo "git_head=$(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "compiler=$(g++ --version 2>/dev/null | head -1)"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  # The BLAS library PyTorch's products run on. Debian's python3-torch uses the system
  # libblas.so.3: the reference BLAS (blas/libblas.so.3, ~2 GFLOP/s, 10x slower than OpenBLAS)
  # unless OpenBLAS is installed; LD_LIBRARY_PATH may point to another (see bench/RESULTS.md).
  echo "torch_blas=$("$PY" -c 'import torch; torch.ones(2, 2) @ torch.ones(2, 2); print(" ".join(sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l})))' 2>/dev/null)"
} > "$OUT/machine.env"
if grep -q "^torch_blas=.*/blas/libblas.so" "$OUT/machine.env"; then
  log "WARNING: PyTorch runs on the reference BLAS (no OpenBLAS): its figures will be ~10x too slow"
fi
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
log "machine: $(sed -n 's/^model_name=//p' "$OUT/machine.env"), $(nproc) CPUs, load average $LOAD1"
if awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.5) }'; then
  log "WARNING: load average $LOAD1 > 0.5 — something else is running; the figures will be noisy"
fi

# ---------------------------------------------------------------------------------- CPU peak
if [ "$SKIP_PEAK" = 0 ]; then
  if [ -z "$PEAK_BIN" ]; then
    if [ -x build/bench/cpu_peak ] && [ build/bench/cpu_peak -nt bench/cpu_peak.cpp ]; then
      PEAK_BIN=build/bench/cpu_peak
    else
      PEAK_BIN="$OUT/cpu_peak"
      log "compiling bench/cpu_peak.cpp -> $PEAK_BIN"
      g++ -O2 -mavx2 -mfma -std=c++17 -pthread bench/cpu_peak.cpp -o "$PEAK_BIN" || PEAK_BIN=""
    fi
  fi
  if [ -n "$PEAK_BIN" ] && [ -x "$PEAK_BIN" ]; then
    log "CPU peak probe: $PEAK_BIN"
    "$PEAK_BIN" --json > "$OUT/cpu_peak.json" 2> "$OUT/cpu_peak.txt" || log "cpu_peak failed (see $OUT/cpu_peak.txt)"
    cat "$OUT/cpu_peak.txt" >&2
  else
    log "no cpu_peak binary: peak figures will be missing"
  fi
fi

# ------------------------------------------------------------------------------- the two sides
OURS_PRESENT=0
if [ "$SKIP_OURS" = 0 ]; then
  if [ -x "$NMSNN" ]; then
    OURS_PRESENT=1
  else
    log "############################################################################"
    log "# engine CLI not found at '$NMSNN' — build it first, e.g."
    log "#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2"
    log "# measuring the PyTorch side only; our rows will read 'binary missing'."
    log "############################################################################"
  fi
fi

for SCALE in $SCALES; do
  if [ "$OURS_PRESENT" = 1 ]; then
    log "ours: $NMSNN train --preset seed --input-scale $SCALE --epochs 1 --train-limit $N --test-limit 0 $OURS_ARGS"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$NMSNN" train --preset seed --input-scale "$SCALE" --epochs 1 --train-limit "$N" --test-limit 0 \
      --report "$OUT/ours_$SCALE.json" --quiet $OURS_ARGS > "$OUT/ours_$SCALE.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    printf 'rc=%s\nwall_seconds=%s\n' "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
      > "$OUT/ours_$SCALE.status"
    if [ $rc -ne 0 ]; then
      log "ours ($SCALE) FAILED with exit status $rc — last lines of $OUT/ours_$SCALE.log:"
      tail -5 "$OUT/ours_$SCALE.log" >&2
    else
      log "ours ($SCALE) done in $(sed -n 's/.*wall_seconds=//p' "$OUT/ours_$SCALE.status") s"
    fi
  fi

  if [ "$SKIP_PT" = 0 ]; then
    REDUCE="$PT_REDUCE"
    if [ "$REDUCE" = auto ]; then
      # our report's network.readout.reduce (the seed's networks average over time)
      REDUCE=$(sed -n 's/.*"reduce"[[:space:]]*:[[:space:]]*"\(sum\|mean\)".*/\1/p' "$OUT/ours_$SCALE.json" 2>/dev/null | head -1)
      [ -n "$REDUCE" ] || REDUCE=sum
    fi
    echo "$REDUCE" > "$OUT/pytorch_${SCALE}_reduce.status"
    for SETTING in $PT_SETTINGS; do
      case "$SETTING" in
        t2_ob1) TT=2; OB=1 ;;
        t1_ob1) TT=1; OB=1 ;;
        t2_ob2) TT=2; OB=2 ;;
        *) log "unknown PyTorch setting '$SETTING' (expected t2_ob1, t1_ob1, t2_ob2)"; continue ;;
      esac
      log "pytorch: scale $SCALE, torch threads $TT, OPENBLAS_NUM_THREADS=$OB, N=$N, budget ${PT_BUDGET}s, reduce $REDUCE"
      env OPENBLAS_NUM_THREADS="$OB" "$PY" bench/seed_pytorch.py --model snn --input-scale "$SCALE" \
        --threads "$TT" --train-limit "$N" --epochs 1 --lr 0.1 --reduce "$REDUCE" \
        --time-budget "$PT_BUDGET" --no-eval --log-every 1 \
        --report "$OUT/pytorch_${SCALE}_${SETTING}.json" > "$OUT/pytorch_${SCALE}_${SETTING}.log" 2>&1
      rc=$?
      echo "rc=$rc" > "$OUT/pytorch_${SCALE}_${SETTING}.status"
      if [ $rc -ne 0 ]; then
        log "pytorch ($SCALE, $SETTING) FAILED with exit status $rc — last lines of the log:"
        tail -5 "$OUT/pytorch_${SCALE}_${SETTING}.log" >&2
      else
        tail -1 "$OUT/pytorch_${SCALE}_${SETTING}.log" >&2
      fi
    done
  fi
done
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.env"

# ------------------------------------------------------------------------------------ summary
"$PY" - "$OUT" "$N" "$PT_BUDGET" "$NMSNN" "$OURS_PRESENT" "$SKIP_OURS" "$SCALES" "$PT_SETTINGS" "$PT_REDUCE" <<'PYEOF'
import json, os, sys

out, n, budget, nmsnn, ours_present, skip_ours, scales, settings, pt_reduce = sys.argv[1:10]
scales, settings = scales.split(), settings.split()
ours_present, skip_ours = ours_present == "1", skip_ours == "1"

def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def load_env(path):
    d = {}
    try:
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    d[k] = v
    except OSError:
        pass
    return d

def flops_per_sample(T):
    # layer-1 forward + layer-1 weight grad + layer-2 forward + weight grad + input grad
    return 2 * T * 784 * 100 + 2 * T * 784 * 100 + 2 * T * 100 * 10 * 3

FORMULA = ("FLOP/sample = 2*T*784*100 (L1 fwd) + 2*T*784*100 (L1 dW) + 2*T*100*10 (L2 fwd) "
           "+ 2*T*100*10 (L2 dW) + 2*T*100*10 (L2 dX) = T*319600")

machine = load_env(os.path.join(out, "machine.env"))
peak = load_json(os.path.join(out, "cpu_peak.json"))
peak_meas = peak.get("fma_gflops_all_threads") if peak else None
peak_theo = peak.get("theoretical_gflops_all_cores") if peak else None
# The engine's kernel set (its report's cpu_kernels): with avx512 the measured peak is AVX-512's.
ours_sets = sorted({(load_json(os.path.join(out, f"ours_{s}.json")) or {}).get("cpu_kernels")
                    for s in scales} - {None})
peak_kind = "AVX2 FMA"
if ours_sets == ["avx512"] and peak and peak.get("fma512_gflops_all_threads"):
    peak_meas, peak_kind = peak["fma512_gflops_all_threads"], "AVX-512 FMA"
    if peak_theo:
        peak_theo *= 2  # 16 lanes instead of 8 at the same clock

def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "n/a"

def pct(v, ref):
    return f"{100 * v / ref:.1f}%" if isinstance(v, (int, float)) and ref else "n/a"

summary = {"machine": machine, "peak": peak, "train_limit": int(n), "pytorch_time_budget": float(budget),
           "pytorch_reduce": pt_reduce, "flops_formula": FORMULA, "scales": {}}
rows = []
for scale in scales:
    entry = {}
    # ours
    ours = load_json(os.path.join(out, f"ours_{scale}.json"))
    status = load_env(os.path.join(out, f"ours_{scale}.status"))
    if skip_ours:
        ours_state = "skipped"
    elif not ours_present:
        ours_state = f"binary missing ({nmsnn})"
    elif ours is None or not isinstance(ours.get("train_samples_per_second"), (int, float)):
        ours_state = f"failed (rc={status.get('rc', '?')}, see ours_{scale}.log)"
    else:
        ours_state = "ok"
    T = (ours or {}).get("time_steps") or 128
    fps = flops_per_sample(T)
    ours_sps = ours.get("train_samples_per_second") if ours_state == "ok" else None
    ours_gf = ours_sps * fps / 1e9 if ours_sps else None
    entry["ours"] = {"state": ours_state, "train_samples_per_second": ours_sps, "useful_gflops": ours_gf,
                     "flops_per_sample": fps, "time_steps": T, "wall_seconds": status.get("wall_seconds"),
                     "report": ours}
    # pytorch
    pts = {}
    for s in settings:
        r = load_json(os.path.join(out, f"pytorch_{scale}_{s}.json"))
        if r and isinstance(r.get("train_samples_per_second"), (int, float)):
            pts[s] = r
    best = max(pts, key=lambda s: pts[s]["train_samples_per_second"]) if pts else None
    best_sps = pts[best]["train_samples_per_second"] if best else None
    entry["pytorch"] = {s: {k: v for k, v in r.items() if k != "batch_seconds"} for s, r in pts.items()}
    entry["pytorch_best"] = {"setting": best, "train_samples_per_second": best_sps,
                             "useful_gflops": best_sps * flops_per_sample(128) / 1e9 if best_sps else None}
    entry["ratio_ours_over_pytorch_best"] = ours_sps / best_sps if ours_sps and best_sps else None
    summary["scales"][scale] = entry

    ratio = entry["ratio_ours_over_pytorch_best"]
    thr = ours.get("threads") if ours_state == "ok" and isinstance(ours, dict) else None
    rows.append((scale, "nmsnn (ours)", ours_state if ours_state != "ok" else
                 (f"engine default{'' if thr is None else f', {thr} threads'}"),
                 fmt(ours_sps, ".1f"), fmt(ours_gf, ".2f"), pct(ours_gf, peak_meas), pct(ours_gf, peak_theo),
                 fmt(ratio, ".2f") + ("x" if ratio else "")))
    labels = {"t2_ob1": "torch 2 thr, OPENBLAS 1", "t1_ob1": "torch 1 thr, OPENBLAS 1",
              "t2_ob2": "torch 2 thr, OPENBLAS 2"}
    for s in settings:
        r = pts.get(s)
        sps = r["train_samples_per_second"] if r else None
        gf = sps * flops_per_sample(128) / 1e9 if sps else None
        label = labels.get(s, s) + (" (best)" if s == best else "")
        if r:
            label += (f", {r['train_samples']} samples / {r['train_seconds']:.1f} s"
                      f" ({fmt(r.get('train_samples_per_second_incl_warmup'), '.1f')}/s incl. warm-up)")
        else:
            label += ", failed or not run"
        rows.append((scale, "PyTorch seed model", label, fmt(sps, ".1f"), fmt(gf, ".2f"),
                     pct(gf, peak_meas), pct(gf, peak_theo), "1.00x" if s == best else ""))

L = []
L.append("# nmsnn CPU engine vs the seed's PyTorch model (784-100-10, T=128, batch 1000, training)")
L.append("")
L.append(f"- date: {machine.get('date', '?')}; git HEAD: {machine.get('git_head', '?')}")
L.append(f"- CPU: {machine.get('model_name', '?')}; {machine.get('cpus', '?')} CPUs "
         f"({machine.get('sockets', '?')} socket(s) x {machine.get('cores_per_socket', '?')} cores x "
         f"{machine.get('threads_per_core', '?')} threads); {machine.get('kernel', '?')}")
L.append(f"- load average at start / end: {machine.get('loadavg_start', '?')} / {machine.get('loadavg_end', '?')}")
L.append(f"- PyTorch's BLAS: {machine.get('torch_blas') or '?'}")
if peak:
    L.append(f"- FP32 FMA peak (bench/cpu_peak): {peak['fma_gflops_1thread']:.1f} GFLOP/s on 1 thread, "
             f"{peak['fma_gflops_all_threads']:.1f} GFLOP/s on {peak['threads']} threads (measured); "
             f"theoretical at the nominal {peak['nominal_mhz']:.0f} MHz x {peak['flops_per_cycle_assumed']:.0f} "
             f"FLOP/cycle x {peak['physical_cores']} cores = {peak['theoretical_gflops_all_cores']:.1f} GFLOP/s")
    L.append(f"- memcpy ({peak['memcpy_buffer_mib']} MiB): {peak['memcpy_gbps_1thread']:.1f} GB/s on 1 thread, "
             f"{peak['memcpy_gbps_all_threads']:.1f} GB/s on {peak['threads']} threads (bytes copied per second)")
    if peak.get("fma512_gflops_all_threads"):
        L.append(f"- AVX-512 FMA peak: {peak['fma512_gflops_1thread']:.1f} GFLOP/s on 1 thread, "
                 f"{peak['fma512_gflops_all_threads']:.1f} GFLOP/s on {peak['threads']} threads")
    L.append(f"- nmsnn kernel set: {', '.join(ours_sets) or 'n/a'}; the % columns are of the {peak_kind} peak")
else:
    L.append("- CPU peak: not measured")
reduces = sorted({r.get("reduce") for e in summary["scales"].values() for r in e["pytorch"].values()} - {None})
ours_readouts = sorted({((e["ours"]["report"] or {}).get("network") or {}).get("readout", {}).get("reduce")
                        for e in summary["scales"].values()} - {None})
L.append(f"- training samples per run: ours {n} (one epoch, lr 0.1, no evaluation; its samples/s is the "
         f"engine's own train_samples_per_second); PyTorch the same samples, capped at {budget} s, "
         f"first batch excluded as warm-up (figure including it in brackets)")
L.append(f"- readout reduction over time: ours {', '.join(ours_readouts) or 'n/a'}; "
         f"PyTorch {', '.join(reduces) or 'n/a'} (--pt-reduce {pt_reduce}); no effect on the work done")
L.append(f"- dense-equivalent {FORMULA} = {flops_per_sample(128):,} FLOP at T=128: the work the "
         f"PyTorch model does. nmsnn skips products with zero inputs (a zero pixel stays zero under the "
         f"noise mask), so for nmsnn this column is a dense-equivalent rate, not executed FLOPs; "
         f"bench_cpu_engine's useful_GFLOP/s counts what it executes")
L.append("")
L.append("| input scale | engine | setting | train samples/s | dense-equivalent GFLOP/s | % of measured peak | "
         "% of nominal peak | vs PyTorch best |")
L.append("|---|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    L.append("| " + " | ".join(r) + " |")
L.append("")
for scale in scales:
    e = summary["scales"][scale]
    if e["ratio_ours_over_pytorch_best"]:
        L.append(f"- {scale}: ours / PyTorch best ({e['pytorch_best']['setting']}) = "
                 f"{e['ratio_ours_over_pytorch_best']:.2f}x")
    else:
        L.append(f"- {scale}: no ratio (ours: {e['ours']['state']}; PyTorch best: "
                 f"{e['pytorch_best']['setting'] or 'none'})")
md = "\n".join(L) + "\n"
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write(md)
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
    f.write("\n")
sys.stdout.write(md)
PYEOF
rc=$?
log "wrote $OUT/summary.md and $OUT/summary.json"
exit $rc
