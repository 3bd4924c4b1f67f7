#!/usr/bin/env bash
# Build lucid's kernels with AddressSanitizer and UndefinedBehaviorSanitizer in a
# scratch copy of the tree, run the kernel tests against that build, and fail on
# any sanitizer report. The working tree and its installed build are untouched.
#
# Usage: .ci/sanitize.sh [pytest arguments]   (default: the kernel test files)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The copy leaves out built files, so nothing unsanitized can be imported from it.
mkdir "$work/src"
tar -C "$repo" --exclude='*.so' --exclude='__pycache__' --exclude='lucid/_ext/*.c' \
    -cf - setup.py pyproject.toml README.md lucid tests | tar -C "$work/src" -xf -
cd "$work/src"

# Build isolation kept the build requirements out of the environment; add them.
python -m pip install --quiet "setuptools>=77" "Cython>=3.0"
cc="$(python -c 'import sysconfig; print(sysconfig.get_config_var("CC"))')"
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# The flags go into CC so that every compile and link, the OpenMP probe's
# executable included, is sanitized.
CC="$cc $sanitize" CFLAGS="-g" LUCID_REQUIRE_OPENMP=1 \
    python setup.py --quiet build_ext --inplace -j 2 --build-temp "$work/build"

# Python itself is not built with ASan: its runtime must be loaded first.
libasan="$(${cc%% *} -print-file-name=libasan.so)"
[ -f "$libasan" ] || { echo "sanitize: no libasan.so from ${cc%% *}" >&2; exit 1; }

if [ "$#" -eq 0 ]; then
    # Everything that runs the kernels on odd inputs, layouts and threads; not
    # tests/test_huge.py, whose zero-stride views ASan cannot tell apart and
    # which would take minutes here.
    set -- tests/test_kl_div_*.py tests/test_simd_*.py tests/test_hypothesis_*.py \
        tests/test_hostile_inputs.py tests/test_memory_*.py tests/test_metrics_per_row.py \
        tests/test_fork.py tests/test_threads.py tests/test_concurrency.py
fi
status=0
export LD_PRELOAD="$libasan"
# Leak checking is off: CPython keeps interned objects alive until exit by design.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# The sanitized build in this copy must be what the tests import, not an installed lucid.
python -c 'import os, lucid._ext._kl_div as k; assert k.__file__.startswith(os.getcwd()), k.__file__'
# --capture=sys leaves file descriptor 2 alone, so a report reaches the log even
# when it ends the process; reports from forked children land there too.
python -m pytest -q -p no:cacheprovider --capture=sys --durations=10 "$@" 2>&1 \
    | tee "$work/pytest.log" || status=$?
unset LD_PRELOAD

if grep -qE "runtime error:|ERROR: AddressSanitizer|SUMMARY: [A-Za-z]+Sanitizer" "$work/pytest.log"; then
    echo "sanitize: the sanitizers reported errors (see above)" >&2
    exit 1
fi
[ "$status" -eq 0 ] || { echo "sanitize: tests failed (status $status)" >&2; exit "$status"; }
echo "sanitize: no ASan or UBSan reports"
