#!/usr/bin/env bash
# Builds and installs the Python package `nmsnn` into a virtual environment and runs its pytest
# suite (tests/python), printing the count. ctest's `python` entry runs it; so can you:
#   bash scripts/test_python.sh [BUILD_DIR] [NMSNN_CLI]
# BUILD_DIR (default build/python) holds the environment and an incremental build of the
# extension; NMSNN_CLI, the `nmsnn` command of this tree, enables the tests that compare with it.
#
# Debian's pip refuses to install into the system Python (PEP 668), and Debian ships
# scikit-learn, pandas, matplotlib (and torch) for the system Python only: so the environment is
# made from /usr/bin/python3 with --system-site-packages, and only the build tools
# (scikit-build-core, nanobind) come from PyPI into it. The package is installed without build
# isolation, so nothing is downloaded again.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$(realpath -m "${1:-$repo/build/python}")"
cli="${2:-}"
python=/usr/bin/python3

# The Debian packages the suite needs (also in scripts/install_deps.sh's list).
packages=(python3-venv python3-dev python3-numpy python3-sklearn python3-pandas python3-pytest
          python3-matplotlib)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "test_python: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mkdir -p "$build"
env_dir="$build/pyenv"
if [ ! -x "$env_dir/bin/python" ]; then
  "$python" -m venv --system-site-packages "$env_dir"
fi
"$env_dir/bin/python" -c "import scikit_build_core, nanobind" 2>/dev/null ||
  "$env_dir/bin/pip" install -q "scikit-build-core>=0.10" "nanobind>=2.0"

# The extension is built incrementally in $build/wheel. Without a GPU the CUDA engine is left
# out (NMSNN_CUDA=OFF) to save its many minutes of nvcc: the package then has the CPU engine only;
# `pip install .` elsewhere builds the CUDA engine whenever CUDA is found.
cuda_define=""
if ! nvidia-smi -L >/dev/null 2>&1; then cuda_define="NMSNN_CUDA=OFF"; fi
echo "test_python: building and installing the package (build dir $build/wheel)" >&2
SKBUILD_BUILD_DIR="$build/wheel" SKBUILD_CMAKE_DEFINE="$cuda_define" \
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
  "$env_dir/bin/pip" install -q --no-build-isolation --no-deps "$repo" > "$build/pip.log" 2>&1 || {
    tail -40 "$build/pip.log" >&2
    echo "test_python: pip install failed (log: $build/pip.log)" >&2
    exit 1
  }

cd "$repo"
export NMSNN_CLI="$cli"
status=0
"$env_dir/bin/python" -m pytest tests/python -q -p no:cacheprovider -o "junit_family=xunit2" \
  --junitxml "$build/pytest.xml" || status=$?
"$env_dir/bin/python" - "$build/pytest.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot()
s = s if s.tag == "testsuite" else s.find("testsuite")
n, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
print(f"python tests: {n} run, {n - f - e - k} passed, {f + e} failed, {k} skipped or xfailed")
PY
exit $status
