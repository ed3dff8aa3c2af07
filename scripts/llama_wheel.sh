#!/bin/sh
# Installs llama-cpp-python (the local LLM server) into the venv of PYTHON from a *portable* wheel.
#
# llama.cpp builds with -march=native by default, and pip caches that wheel under the sdist's name:
# a cache filled on one CPU then crashes the server with SIGILL on another (it loads the model,
# answers /models, and dies on the first completion). So the wheel is built here once with
# GGML_NATIVE=OFF (x86-64-v3: AVX2, FMA, F16C; ggml's own default set), kept in a cache folder
# named by the version and the build flags, and installed from that file. ~10 min once on 2 cores.
# Usage: sh scripts/llama_wheel.sh PYTHON   (the version comes from constraints.txt)
set -eu
py=${1:?usage: llama_wheel.sh PYTHON}
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^llama-cpp-python==//p' "$root/constraints.txt")
[ -n "$version" ] || { echo "error: constraints.txt pins no llama-cpp-python==VERSION" >&2; exit 2; }
flags="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
key=$(printf '%s %s' "$version" "$flags" | sha256sum | cut -c1-12)
cache=${EMBODIED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/embodied}/wheels/llama-cpp-python-$version-$key

if "$py" -c "import importlib.metadata as m, sys; sys.exit(m.version('llama-cpp-python') != '$version')" 2>/dev/null \
   && [ -f "$("$py" -c 'import sys; print(sys.prefix)')/.llama-wheel-$key" ]; then
  exit 0  # this venv already has this build
fi
if ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $version (portable CPU build, ~10 min once; cached in $cache)"
  mkdir -p "$(dirname "$cache")"
  rm -rf "$cache.tmp"
  CMAKE_ARGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc 2>/dev/null || echo 2) \
    "$py" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python -w "$cache.tmp" \
    "llama-cpp-python==$version" >"$cache.log" 2>&1 \
    || { echo "error: building llama-cpp-python failed (a C/C++ compiler and cmake are needed): see $cache.log" >&2; exit 1; }
  mv "$cache.tmp" "$cache"
fi
"$py" -m pip install -q --no-deps --force-reinstall "$cache"/llama_cpp_python-*.whl
touch "$("$py" -c 'import sys; print(sys.prefix)')/.llama-wheel-$key"
