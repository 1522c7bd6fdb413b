#!/usr/bin/env bash
# The Python suite: builds the `qst` wheel (maturin, abi3) from python/,
# installs it into the venv whose python is first on PATH, and runs pytest on
# python/tests against the real target/release/qst. A failed build fails the
# suite. Last line: `N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

fail() {
    echo "python suite: $1" >&2
    echo "0 passed, 1 failed"
    exit 1
}

py=$(command -v python) || fail "no python on PATH (test.sh puts the venv's first)"
if ! "$py" -c 'import maturin, pytest' 2>/dev/null; then
    "$py" -m pip install --quiet --disable-pip-version-check 'maturin>=1.5,<2' pytest ||
        fail "could not install maturin and pytest"
fi
[ -x target/release/qst ] || cargo build --release --bin qst || fail "could not build target/release/qst"

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
started=$(date +%s)
# The workspace's target/ reuses the release build of faer and the qst crates.
if ! CARGO_TARGET_DIR="$root/target" "$py" -m maturin build --release --quiet \
    -m python/Cargo.toml -i "$py" -o "$wheels"; then
    fail "the wheel did not build"
fi
echo "python suite: wheel built in $(($(date +%s) - started)) s"
"$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheels"/qst-*.whl ||
    fail "could not install the wheel"

log=$(mktemp)
trap 'rm -rf "$wheels" "$log"' EXIT
# Run from outside the source tree so `import qst` is the installed wheel.
(cd "$wheels" && QST_BIN="$root/target/release/qst" "$py" -m pytest -q -p no:cacheprovider \
    "$root/python/tests") 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
last=$(grep -aE '[0-9]+ (passed|failed)' "$log" | tail -n 1)
passed=$(grep -oE '[0-9]+ passed' <<<"$last" | grep -oE '[0-9]+' || echo 0)
failed=$(grep -oE '[0-9]+ failed' <<<"$last" | grep -oE '[0-9]+' || echo 0)
errors=$(grep -oE '[0-9]+ errors?' <<<"$last" | grep -oE '[0-9]+' || echo 0)
failed=$((failed + errors))
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1 # pytest stopped without counting (collection or usage error)
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
