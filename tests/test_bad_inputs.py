#!/usr/bin/env python3
# test_bad_inputs.py — the `nmsnn` command fed bad input, as a new user (or a fuzzer) would: huge
# sizes, hostile bytes in CSV cells and JSON keys, corrupt model files, diverging training, bad
# flags. Every case must end with ONE line on stderr naming the problem (no internal names, no raw
# control bytes, short), exit status 1 or 2, within a time limit, and must not write files it
# should not (plots of a failed command, temporaries of an interrupted save).
#
#   usage: test_bad_inputs.py PATH/TO/nmsnn [SOURCE_DIR]      (ctest: bad_inputs)
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

NMSNN = os.path.abspath(sys.argv[1])
SOURCE = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), ".."))
IRIS = os.path.join(SOURCE, "data", "csv", "iris_data.csv")
failures = []


def run(args, timeout=120, cwd=None):
    try:
        p = subprocess.run([NMSNN] + args, capture_output=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        return None, b"", b""
    return p.returncode, p.stdout, p.stderr


def check_error(name, args, expect=(), timeout=120, cwd=None):
    """The command must fail cleanly: exit 1 or 2, one short printable error line naming `expect`."""
    rc, _, err = run(args, timeout, cwd)
    problems = []
    if rc is None:
        problems.append(f"hung (no exit within {timeout} s)")
    else:
        lines = [l for l in err.split(b"\n") if l.strip()]
        text = err.decode("utf-8", "replace")
        if rc not in (1, 2):
            problems.append(f"exit status {rc}, expected 1 or 2")
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, expected 1")
        if b"internal error" in err or b"std::" in err or b"what()" in err:
            problems.append("an internal name in the message")
        if any(c < 0x20 and c not in (0x0a,) for c in err) or 0x7f in err:
            problems.append("raw control bytes in the message")
        if len(err) > 600:
            problems.append(f"a message of {len(err)} bytes")
        for e in expect:
            if e.lower() not in text.lower():
                problems.append(f"message does not mention {e!r}")
    status = "ok  " if not problems else "FAIL"
    shown = err.decode("utf-8", "replace").strip()[:300]
    print(f"{status} {name}: {shown}")
    if problems:
        failures.append(f"{name}: {'; '.join(problems)} -- stderr: {err[:400]!r}")


def check_ok(name, args, timeout=300, cwd=None):
    rc, out, err = run(args, timeout, cwd)
    if rc != 0:
        failures.append(f"{name}: exit {rc}, expected 0 -- stderr: {err[-400:]!r}")
        print(f"FAIL {name}: exit {rc}")
        return None
    print(f"ok   {name}")
    return out.decode("utf-8", "replace")


def write(path, data):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def model_file(path, spec):
    return write(path, json.dumps(spec))


def idx_header(dims, magic_type=0x08):
    return struct.pack(">BBBB", 0, 0, magic_type, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)


def read_safetensors(path):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def write_safetensors(path, header, data):
    h = json.dumps(header).encode()
    write(path, struct.pack("<Q", len(h)) + h + data)


def main():
    tmp = tempfile.mkdtemp(prefix="nmsnn-bad-inputs-")
    try:
        cases(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(failures)} failed")
    for f in failures:
        print("  " + f)
    return 1 if failures else 0


def cases(tmp):
    T = lambda *p: os.path.join(tmp, *p)
    train = ["train", "--quiet", "--data", IRIS, "--target", "target", "--epochs", "1"]

    # ---- sizes without an upper bound --------------------------------------------------------
    check_error("hidden 2e9", train + ["--hidden", "2e9"], ["--hidden"])
    check_error("hidden 2000000000", train + ["--hidden", "2000000000"], ["--hidden"])
    check_error("time steps 1e9", train + ["--time-steps", "1000000000"], ["--time-steps"])
    for label, spec, key in [
        ("layer of 2^31-1 neurons", {"layers": [{"type": "dense", "size": 2147483647}, {"type": "dense", "size": 3}]}, "size"),
        ("size 2147483648", {"layers": [{"type": "dense", "size": 2147483648}, {"type": "dense", "size": 3}]}, "size"),
        ("time_steps 1e9", {"time_steps": 1e9, "layers": [{"type": "dense", "size": 3}]}, "time_steps"),
        ("time_steps 1e10", {"time_steps": 1e10, "layers": [{"type": "dense", "size": 3}]}, "time_steps"),
        ("size 1e30", {"layers": [{"type": "dense", "size": 1e30}, {"type": "dense", "size": 3}]}, "size"),
        ("JSON key with a newline", {"layers": [{"type": "dense", "size\nX": 3}]}, "size"),
    ]:
        check_error(f"model file: {label}", train + ["--model-file", model_file(T("m.json"), spec)], [key])
    check_error("network larger than --max-memory", train + ["--hidden", "20000,20000", "--max-memory", "100M"],
                ["needs", "memory limit"])
    check_error("bad --max-memory", train + ["--max-memory", "lots"], ["--max-memory"])
    os.makedirs(T("idx"), exist_ok=True)
    write(T("idx", "train-images-idx3-ubyte"), idx_header([2147483647, 28, 28]) + bytes(1000))
    write(T("idx", "train-labels-idx1-ubyte"), idx_header([2147483647]) + bytes(1000))
    write(T("idx", "t10k-images-idx3-ubyte"), idx_header([1, 28, 28]) + bytes(784))
    write(T("idx", "t10k-labels-idx1-ubyte"), idx_header([1]) + bytes(1))
    check_error("IDX header claiming 2^31-1 images", ["train", "--quiet", "--data", T("idx")], ["train-images"])

    # ---- user bytes echoed raw ----------------------------------------------------------------
    base = open(IRIS).read().split("\n")
    def bad_csv(name, cell):
        rows = list(base)
        fields = rows[3].split(",")
        fields[1] = cell
        rows[3] = ",".join(fields)
        return write(T(name), "\n".join(rows))
    check_error("CSV cell with a newline", train + ["--data", bad_csv("nl.csv", '"4.1\nabc"')], ["line"])
    check_error("CSV cell of 10 MB", train + ["--data", bad_csv("big.csv", "x" * (10 << 20))], ["line"])
    check_error("CSV cell with an escape code", train + ["--data", bad_csv("esc.csv", "\x1b[31mred\x1b[0m")], ["line"])
    with open(bad_csv("nul.csv", "4.1"), "r+b") as f:  # a NUL inside a number
        blob = f.read().replace(b"4.1,", b"4\x001,", 1)
        f.seek(0), f.write(blob)
    check_error("CSV cell with a NUL", train + ["--data", T("nul.csv")], ["line"])
    check_error("unknown flag with an escape code", ["train", "--\x1b[2Jx"], ["unknown flag"])
    check_error("unknown command with a newline", ["tra\nin"], ["unknown command"])

    # ---- model files: metadata and tensors ---------------------------------------------------
    good = T("good.nmsnn")
    check_ok("train a small model", train + ["--epochs", "2", "--time-steps", "8", "--save", good])
    header, data = read_safetensors(good)
    def corrupt(name, edit):
        h = json.loads(json.dumps(header))
        d = bytearray(data)
        edit(h, d)
        path = T(name + ".nmsnn")
        write_safetensors(path, h, bytes(d))
        return path
    def set_meta(key, value):
        return lambda h, d: h["__metadata__"].__setitem__(key, value)
    def first_tensor(prefix):
        return next(k for k in header if k.startswith(prefix))
    def fill(name, value):
        def edit(h, d):
            begin, end = h[name]["data_offsets"]
            d[begin:end] = struct.pack("<f", value) * ((end - begin) // 4)
        return edit
    def shape(name, value):
        return lambda h, d: h[name].__setitem__("shape", value)
    weight = first_tensor("layers.")
    evaluate = lambda path: ["eval", "--model", path, "--data", IRIS]
    for label, edit, expect in [
        ("seed 'abc'", set_meta("seed", "abc"), ["seed"]),
        ("feature_names an object", set_meta("feature_names", "{\"a\": 1}"), ["feature_names"]),
        ("format_version 99", set_meta("format_version", "99"), ["format_version"]),
        ("task 'x\\ny'", set_meta("task", "x\ny"), ["task"]),
        ("network not JSON", set_meta("network", "{"), ["network"]),
        ("NaN weights", fill(weight, float("nan")), [weight]),
        ("inf weights", fill(weight, float("inf")), [weight]),
        ("zero feature scale", fill("preprocess.feature_scale", 0.0), ["feature_scale"]),
        ("shape entry 1e30", shape(weight, [1e30, 4]), [weight]),
        ("shape entry -1", shape(weight, [-1, 4]), [weight]),
    ]:
        check_error(f"model file: {label}", evaluate(corrupt(label.split()[0], edit)), expect)

    # ---- training that goes wrong ---------------------------------------------------------------
    check_error("mlp with lr 1e30", train + ["--model", "mlp", "--lr", "1e30", "--epochs", "3"], ["lr"])
    check_error("snn with lr 1e30", train + ["--lr", "1e30", "--epochs", "3", "--time-steps", "8",
                                             "--save", T("diverged.nmsnn")], ["lr"])
    if not os.path.exists(T("diverged.nmsnn")):
        failures.append("snn with lr 1e30: the last good model was not saved with --save")

    # ---- flags outside their meaning ---------------------------------------------------------
    check_error("--limit -5 (eval)", ["eval", "--model", good, "--data", IRIS, "--limit", "-5"], ["--limit"])
    check_error("--lr-step -1", train + ["--lr-step", "-1"], ["--lr-step"])
    check_error("--threads -1", train + ["--threads", "-1"], ["--threads"])
    check_error("--epochs 0", train + ["--epochs", "0"], ["--epochs"])
    check_error("--batch -3", train + ["--batch", "-3"], ["--batch"])
    os.makedirs(T("plots"))
    check_error("plot --sample out of range", ["plot", "--model", good, "--data", IRIS, "--out", T("plots"),
                                                "--sample", "100000"], ["--sample"])
    if os.listdir(T("plots")):
        failures.append(f"plot --sample out of range wrote files: {os.listdir(T('plots'))}")

    # ---- numbers the README promises to accept --------------------------------------------------
    check_ok("CSV value 1e-400 (underflows to 0)", train + ["--data", bad_csv("tiny.csv", "1e-400")])
    # A test split with one class (2 rows of class 1 among 52: the stratified 10% test split gets
    # none of them): AUC undefined, not a failure; the model saved, the plots written.
    rows = [base[0]] + [l for l in base[1:] if l.endswith(",0")] + [l for l in base[1:] if l.endswith(",1")][:2]
    write(T("oneclass.csv"), "\n".join(rows) + "\n")
    out = check_ok("test split with one class", ["train", "--quiet", "--data", T("oneclass.csv"), "--target", "target",
                                                  "--epochs", "1", "--test-fraction", "0.1", "--save", T("one.nmsnn"),
                                                  "--plots", T("one-plots")])
    if out is not None:
        if "AUC undefined" not in out:
            failures.append(f"test split with one class: no 'AUC undefined' in {out[:300]!r}")
        if not os.path.exists(T("one.nmsnn")):
            failures.append("test split with one class: the model was not saved")
    leftovers = [f for f in os.listdir(tmp) if "tmp" in f.lower()]
    if leftovers:
        failures.append(f"temporary files left behind: {leftovers}")


if __name__ == "__main__":
    sys.exit(main())
