#!/usr/bin/env bash
# Runs the whole qst test suite with optimizations on.
# Sets up what the tests need first: a virtualenv with numpy (.venv) for the
# interop tests, which fail (not skip) without it.
set -euo pipefail
cd "$(dirname "$0")"

if ! .venv/bin/python -c 'import numpy' 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check 'numpy>=1.26,<3'
fi
export QST_PYTHON="$PWD/.venv/bin/python"

cargo build --release --workspace --all-targets
cargo test --release --workspace "$@"
