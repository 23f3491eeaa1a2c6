#!/usr/bin/env bash
# Sets up a fresh machine for cnnzoo: Debian's Fashion-MNIST package, a virtual environment in
# .venv and the project installed (editable) with its test and docs extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo_cmd=""
        [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $sudo_cmd apt-get install -y -q dataset-fashion-mnist \
            || { $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q dataset-fashion-mnist; } \
            || echo "warning: could not install dataset-fashion-mnist; real-data tests will be skipped" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,docs]"
