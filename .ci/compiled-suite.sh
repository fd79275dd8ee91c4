#!/usr/bin/env bash
# The whole test suite against the compiled build (hatch_build.py), installed as an operator
# installs it: a wheel built with AIOKES_COMPILE=1, in a venv of its own. Run by .ci/run from
# the repository root, after the suite of the editable install.
#
# The suite runs from a copy of the tree without aiokes/: from the tree itself, pytest's
# pythonpath ["."] (and `python -m aiokes` in the tests' subprocesses) would import ./aiokes,
# the interpreted sources. AIOKES_TEST_EXPECT_COMPILED=1 makes tests/test_build.py fail
# unless every module of the request path is imported compiled.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The build writes nothing in the tree: no .so beside the sources, no build/ directory.
tree_state() { git status --porcelain --ignored 2>/dev/null || echo "(not a git checkout)"; }
before="$(tree_state)"
AIOKES_COMPILE=1 .venv/bin/pip wheel -q --no-deps -w "$work/dist" .
after="$(tree_state)"
if [ "$before" != "$after" ]; then
    echo "the compiled build wrote into the source tree:" >&2
    diff <(echo "$before") <(echo "$after") >&2 || true
    exit 1
fi
wheel="$(echo "$work"/dist/aiokes-*.whl)"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip
"$work/venv/bin/pip" install -q "$wheel[azure,test,bench]"

mkdir "$work/tree"
tar -c --exclude=./aiokes --exclude=./.git --exclude='./.venv*' --exclude=./.ci/cache \
    --exclude='*/__pycache__' --exclude=./.mypy_cache --exclude=./.ruff_cache \
    --exclude=./.pytest_cache . | tar -x -C "$work/tree"

cd "$work/tree"
AIOKES_TEST_EXPECT_COMPILED=1 "$work/venv/bin/pytest" -q -p no:cacheprovider
