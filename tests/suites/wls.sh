#!/usr/bin/env bash
# The wls suite: qst's weighted least squares against an independent scipy
# minimizer (tests/py/wls_check.py) on cases written by the wls_cases example.
# Prints `N passed, M failed` last; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."

fail() {
    echo "wls suite: $1" >&2
    echo "0 passed, 1 failed"
    exit 1
}

python=python
command -v "$python" >/dev/null 2>&1 || python=python3
if ! "$python" -c 'import numpy, scipy' 2>/dev/null; then
    "$python" -m pip install --quiet --disable-pip-version-check scipy ||
        fail "could not install scipy"
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo run --quiet --release -p qst-math --example wls_cases -- "$dir" ||
    fail "the wls_cases example failed"
"$python" tests/py/wls_check.py "$dir"
