#!/usr/bin/env python3
"""rewrite_launches.py SOURCE.cu OUTPUT.cpp — a .cu file as plain C++ for the CUDA emulation.

Every launch `kernel<<<grid, block[, shared, stream]>>>(args);` becomes
`::emulated::launch_on(stream, dim3(grid), dim3(block), [=]() { kernel(args); });` (the arguments
copied, as a launch copies them, so a launch recorded into a graph runs later with the values it
was given). A kernel's dynamic shared memory, `extern __shared__ [__align__(n)] TYPE name[];`,
becomes `TYPE* const name = reinterpret_cast<TYPE*>(::emulated::dynamic_shared);` (the running
block's buffer; emulated_kernel.hpp). The file starts by
including emulated_kernel.hpp (CUDA's keywords as macros). A #line directive keeps compiler
messages and sanitizer reports pointing at the original file.
"""
import re
import sys

DYNAMIC_SHARED = re.compile(
    r'extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([A-Za-z_][\w:]*(?:\s+[A-Za-z_][\w:]*)*?)'
    r'\s+([A-Za-z_]\w*)\s*\[\s*\]\s*;')
LAUNCH = re.compile(r'([A-Za-z_][\w:]*(?:<[^<>;]*>)?)\s*<<<(.*?)>>>\s*\((.*?)\);', re.S)


def split_top_level(text):
    """Splits a launch configuration at commas outside brackets."""
    parts, depth, current = [], 0, ''
    for ch in text:
        if ch == ',' and depth == 0:
            parts.append(current.strip())
            current = ''
            continue
        depth += ch in '(<['
        depth -= ch in ')>]'
        current += ch
    parts.append(current.strip())
    return parts


def rewrite(match):
    config = split_top_level(match.group(2))
    stream = config[3] if len(config) > 3 else 'cudaStream_t(nullptr)'
    return '::emulated::launch_on(%s, dim3(%s), dim3(%s), [=]() { %s(%s); });' % (
        stream, config[0], config[1], match.group(1), match.group(3))


def main():
    source, output = sys.argv[1], sys.argv[2]
    text, launches = LAUNCH.subn(rewrite, open(source).read())
    text = DYNAMIC_SHARED.sub(
        r'\1* const \2 = reinterpret_cast<\1*>(::emulated::dynamic_shared);', text)
    if '<<<' in text:
        sys.exit('%s: a kernel launch was not recognised' % source)
    with open(output, 'w') as f:
        f.write('#include "emulated_kernel.hpp"\n#line 1 "%s"\n' % source)
        f.write(text)


if __name__ == '__main__':
    main()
