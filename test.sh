#!/usr/bin/env bash
# Runs the whole qst test suite with optimizations on, and ends with one line
# `N passed, M failed` over every part of it.
#
# Sets up what the tests need first: a virtualenv with numpy (.venv) for the
# interop tests, and Debian's chromium for the report tests (which render
# report.html headless); both fail (not skip) without them. Extra suites (a part that is
# not `cargo test`) are scripts under tests/suites/, each run with the venv's
# python on PATH; each prints its own `N passed, M failed` line last.
set -uo pipefail
cd "$(dirname "$0")"

setup() {
    if ! .venv/bin/python -c 'import numpy, openpyxl, odf, xlwt' 2>/dev/null; then
        [ -x .venv/bin/python ] || python3 -m venv .venv || return 1
        # numpy for the interop tests; openpyxl, odfpy and xlwt write the
        # spreadsheets the lab's Python tools write.
        .venv/bin/python -m pip install --quiet --disable-pip-version-check \
            'numpy>=1.26,<3' openpyxl odfpy xlwt || return 1
    fi
}
if ! setup; then
    echo "test.sh: could not set up .venv with numpy (needs python3-venv and the package index)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
export QST_PYTHON="$PWD/.venv/bin/python"

# The report tests render report.html in /usr/bin/chromium.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: /usr/bin/chromium is missing and this is not root, so it cannot be installed (apt-get install chromium fonts-dejavu-core); the report tests will fail" >&2
    elif ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core; }; then
        echo "test.sh: apt-get could not install chromium; the report tests will fail" >&2
    fi
fi

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Adds the counts of every `N passed[;,] M failed` line in $log.
count() {
    local p f
    p=$(grep -aoE '(^|[^0-9])[0-9]+ passed' "$log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
    f=$(grep -aoE '[0-9]+ failed' "$log" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
    passed=$((passed + p))
    failed=$((failed + f))
}

if ! cargo build --release --workspace --all-targets; then
    echo "0 passed, 1 failed"
    exit 1
fi

# Rust: unit, integration and end-to-end tests.
cargo test --release --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
grep -aE '^test result:' "$log" > "$log.r" || true
mv "$log.r" "$log"
count
if [ "$rc" -ne 0 ] && ! grep -qaE '[1-9][0-9]* failed' "$log"; then
    failed=$((failed + 1)) # a test binary that did not build or crashed
fi

# Other suites (each script prints its own closing `N passed, M failed` line).
for suite in tests/suites/*.sh; do
    [ -e "$suite" ] || continue
    echo "== $suite"
    PATH="$PWD/.venv/bin:$PATH" bash "$suite" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    tail -n 1 "$log" > "$log.r"
    mv "$log.r" "$log"
    if grep -qaE '[0-9]+ passed' "$log"; then
        count
        if [ "$rc" -ne 0 ] && ! grep -qaE '[1-9][0-9]* failed' "$log"; then
            failed=$((failed + 1))
        fi
    else
        failed=$((failed + 1)) # the suite ended without its closing line
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
