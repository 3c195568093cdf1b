#!/usr/bin/env python3
"""check_loop_constants.py — the napkin model's loop constants against the SASS they came from.

bench/napkin_math.hpp takes the masked products' main-loop instruction counts (kSimtForwardLoop,
kSimtWgradLoop, kMmaForwardLoop, kMmaWgradLoop, kMmaLiveWgradLoop, and the forward with the time
loop fused in: kMmaLifForwardLoop, kLifTailLoop, kLifTailNextLoop, kNextProductLoop) from
scripts/sass_loop_counts.sh by hand. This
reads that script's output (sm_90) and the header, and fails, naming each constant and both
values, when a kernel change has left one stale.

    bash scripts/sass_loop_counts.sh sm_90 > counts.txt
    bash scripts/sass_loop_counts.sh sm_90a > counts_a.txt
    python3 bench/check_loop_constants.py counts.txt counts_a.txt bench/napkin_math.hpp

The forward on wgmma (kWgmmaForwardLoop, kWgmmaLifForwardLoop and their
StagingLoop twins, kWgmmaLiveWgradLoop) exists only in sm_90a code, so their constants are
checked against the second listing.
"""
import re
import sys

# Width classes as the header indexes them: forward NT, weight gradient MT (masked_linear.cu).
FORWARD_NT = [8, 13, 16]
WGRAD_MT = [4, 7, 8]
PRECISIONS = ["Tf32", "Bf16"]


def sass_counts(text):
    """{kernel name: loop instructions} from sass_loop_counts.sh's output."""
    return {m.group(1).strip(): int(m.group(2))
            for m in re.finditer(r"^(?:void )?(.+?): (\d+) instructions in the main loop$", text,
                                 re.M)}


def sass_loops(text):
    """{kernel name: [every innermost loop's instructions]} from the same output."""
    return {m.group(1).strip(): [int(n) for n in m.group(2).split()]
            for m in re.finditer(r"^(?:void )?(.+?): \d+ instructions in the main loop\n.*\n"
                                 r"\s+innermost loops: ([\d ]+)$", text, re.M)}


def wgmma_stage_loops(text):
    """{kernel name: [its wgmma stage loops' instructions, smallest first]} (sass_loop_mix.py's
    "wgmma stage loop" lines; a loop with a loop of products over a warpgroup's samples inside
    counts without it: the path of a round of one sample, which the model takes)."""
    loops = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"^(?:void )?(.+?): \d+ instructions in the main loop$", line)
        if m:
            name = m.group(1).strip()
        m = re.match(r"^\s+wgmma stage loop: (\d+) instructions(?: \((\d+) without)?", line)
        if m and name:
            loops.setdefault(name, []).append(int(m.group(2) or m.group(1)))
    return loops


def header_constants(text):
    """The constants as numbers (the mma ones as [class][precision] lists)."""
    def scalar(name):
        m = re.search(r"\b%s = (\d+)" % name, text)
        if not m:
            sys.exit("check_loop_constants: %s not found in the header" % name)
        return int(m.group(1))

    def table(name):
        m = re.search(r"\b%s\[3\]\[2\] = \{(.*?)\};" % name, text, re.S)
        if not m:
            sys.exit("check_loop_constants: %s[3][2] not found in the header" % name)
        rows = re.findall(r"\{\s*(\d+)\s*,\s*(\d+)\s*\}", m.group(1))
        return [[int(a), int(b)] for a, b in rows]

    def row(name, n):
        m = re.search(r"\b%s\[%d\] = \{(.*?)\};" % (name, n), text, re.S)
        if not m:
            sys.exit("check_loop_constants: %s[%d] not found in the header" % (name, n))
        return [int(v) for v in re.findall(r"\d+", m.group(1))]

    return {"kWgmmaLiveAddLoop": row("kWgmmaLiveAddLoop", 3),
            "kWgmmaForwardLoop": table("kWgmmaForwardLoop"),
            "kWgmmaForwardStagingLoop": table("kWgmmaForwardStagingLoop"),
            "kWgmmaLifForwardStagingLoop": table("kWgmmaLifForwardStagingLoop"),
            "kWgmmaLiveWgradLoop": table("kWgmmaLiveWgradLoop"),
            "kWgmmaLifForwardLoop": table("kWgmmaLifForwardLoop"),
            "kMmaLifForwardLoop": table("kMmaLifForwardLoop"),
            "kLifTailLoop": table("kLifTailLoop"),
            "kLifTailNextLoop": table("kLifTailNextLoop"),
            "kNextProductLoop": row("kNextProductLoop", 2),
            "kSimtForwardLoop": scalar("kSimtForwardLoop"),
            "kSimtWgradLoop": scalar("kSimtWgradLoop"),
            "kMmaForwardLoop": table("kMmaForwardLoop"),
            "kMmaWgradLoop": table("kMmaWgradLoop"),
            "kMmaLiveWgradLoop": table("kMmaLiveWgradLoop")}


def expectations(c):
    """(constant as written, value in the header, kernel whose SASS it must equal)."""
    yield "kSimtForwardLoop", c["kSimtForwardLoop"], "masked_linear_forward_kernel<SimtMath<true> >"
    yield "kSimtWgradLoop", c["kSimtWgradLoop"], "masked_linear_wgrad_kernel<SimtMath<false> >"
    # The K % 4 == 0 instantiations (kVec true): W1's, the ones the model counts.
    for i, nt in enumerate(FORWARD_NT):
        for j, p in enumerate(PRECISIONS):
            yield ("kMmaForwardLoop[%d][%d]" % (i, j), c["kMmaForwardLoop"][i][j],
                   "masked_linear_forward_mma_kernel<%sForward, %d, true, false, false>" % (p, nt))
    for i, mt in enumerate(WGRAD_MT):
        for j, p in enumerate(PRECISIONS):
            yield ("kMmaWgradLoop[%d][%d]" % (i, j), c["kMmaWgradLoop"][i][j],
                   "masked_linear_wgrad_mma_kernel<%sWgrad, %d, true>" % (p, mt))
            yield ("kMmaLiveWgradLoop[%d][%d]" % (i, j), c["kMmaLiveWgradLoop"][i][j],
                   "masked_linear_wgrad_live_kernel<%sWgrad, %d, true>" % (p, mt))


def fused_expectations(c):
    """(constant, value, kernel that must have an innermost loop of that many instructions): the
    forward with the time loop fused in, whose main loop is not its longest."""
    for i, nt in enumerate(FORWARD_NT):
        for j, p in enumerate(PRECISIONS):
            yield ("kMmaLifForwardLoop[%d][%d]" % (i, j), c["kMmaLifForwardLoop"][i][j],
                   "masked_linear_forward_mma_kernel<%sForward, %d, true, true, false>" % (p, nt))
    # The tail's loops (a function of their own, the same in every width class): W1's class.
    for name in ("kLifTailLoop", "kLifTailNextLoop"):
        for i, values in enumerate(c[name]):
            for j, p in enumerate(PRECISIONS):
                yield ("%s[%d][%d]" % (name, i, j), values[j],
                       "masked_linear_forward_mma_kernel<%sForward, 13, true, true, false>" % p)
    # The layer above's product: its stage loop in every width class.
    for nt in FORWARD_NT:
        for j, p in enumerate(PRECISIONS):
            yield ("kNextProductLoop[%d]" % j, c["kNextProductLoop"][j],
                   "masked_linear_forward_mma_kernel<%sForward, %d, true, true, false>" % (p, nt))


def wgmma_expectations(c):
    """(constant, value, kernel, which stage loop, smallest first): the wgmma kernels' stage loops
    (the loop around a wait), from the sm_90a listing, by class NT = 8, 13, 16: the weight
    gradient by sample (a round of one sample), and the forward, plain and with the time loop
    fused in, W1's instantiations (K % 4 == 0, T % 32 == 0: a warp's rows one sample), each with
    two: W copied from its arranged tiles (the smaller) and staged from its quads."""
    for i, nt in enumerate(FORWARD_NT):
        for j, p in enumerate(PRECISIONS):
            yield ("kWgmmaLiveWgradLoop[%d][%d]" % (i, j), c["kWgmmaLiveWgradLoop"][i][j],
                   "masked_linear_wgrad_live_kernel<%sWgradWgmma, %d, true>" % (p, nt), 0)
            for fused, name in ((False, "kWgmmaForward"), (True, "kWgmmaLifForward")):
                kernel = "masked_linear_forward_mma_kernel<%sForwardWgmma, %d, true, %s, true>" % (
                    p, nt, "true" if fused else "false")
                yield ("%sLoop[%d][%d]" % (name, i, j), c[name + "Loop"][i][j], kernel, 0)
                yield ("%sStagingLoop[%d][%d]" % (name, i, j), c[name + "StagingLoop"][i][j],
                       kernel, 1)


def wgmma_loop_expectations(c):
    """(constant, value, kernel that must have an innermost loop of that many instructions) in
    the sm_90a listing: the weight gradient by sample's adds of a sample, by class NT."""
    for i, nt in enumerate(FORWARD_NT):
        for p in PRECISIONS:
            yield ("kWgmmaLiveAddLoop[%d]" % i, c["kWgmmaLiveAddLoop"][i],
                   "masked_linear_wgrad_live_kernel<%sWgradWgmma, %d, true>" % (p, nt))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    listing = open(sys.argv[1]).read()
    counts, loops = sass_counts(listing), sass_loops(listing)
    listing_a = open(sys.argv[2]).read()
    stage_loops, loops_a = wgmma_stage_loops(listing_a), sass_loops(listing_a)
    constants = header_constants(open(sys.argv[3]).read())
    stale = 0
    for name, value, kernel, which in wgmma_expectations(constants):
        found = stage_loops.get(kernel, [])
        if which >= len(found) or found[which] != value:
            print("check_loop_constants: %s = %d in the header, but %s's sm_90a wgmma stage loops "
                  "have %s" % (name, value, kernel, " ".join(map(str, found)) or "no count"))
            stale += 1
    for name, value, kernel in wgmma_loop_expectations(constants):
        if value not in loops_a.get(kernel, []):
            print("check_loop_constants: %s = %d in the header, but %s has no sm_90a loop of that "
                  "many instructions (its loops: %s)"
                  % (name, value, kernel, " ".join(map(str, loops_a.get(kernel, []))) or "none"))
            stale += 1
    for name, value, kernel in fused_expectations(constants):
        if kernel not in loops:
            print("check_loop_constants: no SASS loops for %s (%s)" % (kernel, name))
            stale += 1
        elif value not in loops[kernel]:
            print("check_loop_constants: %s = %d in the header, but %s has no loop of that many "
                  "instructions (its loops: %s)"
                  % (name, value, kernel, " ".join(map(str, loops[kernel]))))
            stale += 1
    for name, value, kernel in expectations(constants):
        if kernel not in counts:
            print("check_loop_constants: no SASS count for %s (%s)" % (kernel, name))
            stale += 1
        elif counts[kernel] != value:
            print("check_loop_constants: %s = %d in the header, but %s's loop has %d "
                  "instructions" % (name, value, kernel, counts[kernel]))
            stale += 1
    if stale:
        sys.exit("check_loop_constants: %d constant(s) stale: update bench/napkin_math.hpp from "
                 "scripts/sass_loop_counts.sh sm_90 (and sm_90a), then regenerate bench/RESULTS.md's "
                 "Predicted tables (build/bench/napkin_table)" % stale)
    print("check_loop_constants: all %d loop constants match the sm_90 and sm_90a SASS"
          % (len(list(expectations(constants))) + len(list(fused_expectations(constants))) +
             len(list(wgmma_expectations(constants))) +
             len(list(wgmma_loop_expectations(constants)))))


if __name__ == "__main__":
    main()
