#!/usr/bin/env python3
"""sass_loop_mix.py — the instruction mix of each kernel's main loop in a cuobjdump -sass listing.

For every function in the listing it takes the longest backward branch with no other loop
inside it (the main loop, innermost), counts the instructions between its target and the branch,
and prints them by opcode. Those counts are static: a loop body that holds a rarely taken path (an edge check's slow branch)
counts it too, so the figure is an upper bound on what one iteration issues when the loop has
no inner loops.

    python3 bench/sass_loop_mix.py listing.sass [name-filter]
"""
import collections
import re
import subprocess
import sys


def functions(text):
    """Yields (name, [(address, instruction)]) for each function of a cuobjdump -sass listing."""
    for chunk in re.split(r"\n\s*Function : ", text)[1:]:
        name = chunk.split("\n", 1)[0].strip()
        body = []
        for line in chunk.split("\n"):
            m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)
            if m:
                # Drop the predicate guard: "@!P0 BRA ..." counts as a BRA.
                body.append((int(m.group(1), 16), re.sub(r"^@!?U?P[0-9T]\s+", "", m.group(2))))
        yield name, body


def all_loops(body):
    """The spans (length, first, last address) of every loop, inner or not."""
    spans = []
    for address, ins in body:
        m = re.match(r"BRA\s+(?:`\(\.L_x_\d+\)\s*)?0x([0-9a-f]+)", ins)
        if m and int(m.group(1), 16) < address:
            spans.append((address - int(m.group(1), 16), int(m.group(1), 16), address))
    return spans


def inner_loops(body):
    """The spans (length, first, last address) of the innermost loops, longest first."""
    spans = all_loops(body)
    # Innermost loops only (no other loop inside): a kernel that walks its stages inside an
    # outer loop (the forward's chunks of features) is counted by its stage loop.
    inner = [s for s in spans
             if not any(o is not s and s[1] <= o[1] and o[2] <= s[2] for o in spans)]
    return sorted(inner, reverse=True)


def loop_instructions(body, span):
    _, lo, hi = span
    return [ins for address, ins in body if lo <= address <= hi]


def main_loop(body):
    """The instructions of the longest innermost loop, or None without a loop."""
    loops = inner_loops(body)
    return loop_instructions(body, loops[0]) if loops else None


def short_name(name):
    """The demangled kernel name (c++filt, when there is one), without its namespaces."""
    try:
        name = subprocess.run(["c++filt", name], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return name
    name = re.sub(r"\(anonymous namespace\)::|nmsnn::kernels::", "", name)
    return name.split("(", 1)[0]


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: sass_loop_mix.py listing.sass [name-filter]")
    text = open(sys.argv[1]).read()
    pattern = sys.argv[2] if len(sys.argv) > 2 else ""
    found = False
    for name, body in functions(text):
        if pattern not in name:
            continue
        loop = main_loop(body)
        if loop is None:
            continue
        found = True
        ops = collections.Counter(ins.split()[0] for ins in loop)
        print(f"{short_name(name)}: {len(loop)} instructions in the main loop")
        print("    " + ", ".join(f"{op} {n}" for op, n in ops.most_common()))
        # Every innermost loop's count (a kernel with a second loop after its main one, the
        # forward with the time loop fused in, shows both).
        loops = inner_loops(body)
        counts = [len(loop_instructions(body, span)) for span in loops]
        print("    innermost loops: " + " ".join(str(n) for n in counts))
        # The loops with tensor-core instructions: how much of the rest is issued among them.
        # A warp issues in order, so integer work placed before a stage's first mma (or after
        # its last) cannot overlap its tensor-pipe time; masked_linear.cu's MasksAhead puts the
        # next stage's Philox blocks between them.
        for span in loops:
            ops_in = [ins.split()[0] for ins in loop_instructions(body, span)]
            mma = [i for i, op in enumerate(ops_in) if op.startswith("HMMA")]
            if mma:
                among = sum(1 for op in ops_in[mma[0]:mma[-1]] if not op.startswith("HMMA"))
                print(f"    mma loop of {len(ops_in)}: {len(mma)} HMMA, {among} other "
                      "instructions between the first and the last")
            # wgmma runs asynchronously from its issue to the warpgroup's wait: what the warp
            # issues in between overlaps the tensor cores' work.
            gmma = [i for i, op in enumerate(ops_in) if op.startswith("HGMMA")]
            wait = [i for i, op in enumerate(ops_in) if op.startswith("WARPGROUP.DEPBAR")]
            if gmma and wait:
                after = sum(1 for op in ops_in[gmma[0]:wait[-1]] if not op.startswith("HGMMA"))
                print(f"    wgmma loop of {len(ops_in)}: {len(gmma)} HGMMA, {after} other "
                      "instructions between the first and the wait")
        # A loop that waits for wgmma may hold an inner loop that issues them (the weight
        # gradient by sample: one product per sample of a warpgroup, in rounds that mix
        # samples), so it is not innermost: the smallest loop around each wait is a stage loop.
        # A kernel may have two (the forward: W copied from its tiles, or staged from its
        # quads), listed smallest first. The instructions of an inner loop that issues HGMMA
        # are also given as the rest of the stage loop, the path a round of one sample takes.
        waits = [address for address, ins in body if ins.startswith("WARPGROUP.DEPBAR")]
        spans = all_loops(body)
        stage_spans = sorted({min(s for s in spans if s[1] <= w <= s[2])
                              for w in waits if any(s[1] <= w <= s[2] for s in spans)})
        for span in stage_spans:
            ops_in = [ins.split()[0] for ins in loop_instructions(body, span)]
            gmma = [i for i, op in enumerate(ops_in) if op.startswith("HGMMA")]
            wait = [i for i, op in enumerate(ops_in) if op.startswith("WARPGROUP.DEPBAR")]
            after = sum(1 for op in ops_in[gmma[0]:wait[-1]] if not op.startswith("HGMMA")) \
                if gmma else 0
            product_loops = [s for s in spans if s != span and span[1] <= s[1] and s[2] <= span[2]
                             and any(i.startswith("HGMMA") for i in loop_instructions(body, s))]
            inner = sum(len(loop_instructions(body, s)) for s in product_loops)
            rest = f" ({len(ops_in) - inner} without the loop over a warpgroup's samples)" \
                if inner else ""
            print(f"    wgmma stage loop: {len(ops_in)} instructions{rest}, {len(gmma)} HGMMA, "
                  f"{after} other between the first HGMMA and the wait")
    if not found:
        sys.exit(f"no function with a loop matches '{pattern}' in {sys.argv[1]}")


if __name__ == "__main__":
    main()
