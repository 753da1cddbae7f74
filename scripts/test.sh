#!/usr/bin/env bash
# The one test command: deps, style, build (warnings are errors), all tests, the same
# again under AddressSanitizer + UndefinedBehaviorSanitizer, then the tests that touch
# threads (label "tsan": every unit test, the agent's and the Workload API's integration
# tests) under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=$(nproc 2>/dev/null || echo 2)
# Integration tests spend most of their time waiting on real processes (renewals,
# reconnects, rotations): twice as many tests as cores keeps the cores busy. Their
# deadlines scale for the sanitizer build (tests/integration/lib.sh).
TEST_JOBS=${WARDEN_TEST_JOBS:-$((JOBS * 2))}

bash scripts/install-deps.sh
bash scripts/check-style.sh

# run_suite DIR [CMAKE ARGS...]; CTEST_ARGS (an array) selects tests.
CTEST_ARGS=()
run_suite() {
  local dir=$1
  shift
  echo "=== configure $dir ($*)"
  cmake -S . -B "$dir" -DWARDEN_WERROR=ON "$@" >/dev/null
  echo "=== build $dir"
  cmake --build "$dir" -j"$JOBS"
  echo "=== test $dir"
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j"$TEST_JOBS" "${CTEST_ARGS[@]}")
  echo "=== $dir done at $SECONDS s"
}

run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DWARDEN_SANITIZE=address,undefined \
  -DWARDEN_HEADER_CHECK=OFF
CTEST_ARGS=(-L tsan)
run_suite build-tsan -DCMAKE_BUILD_TYPE=Debug -DWARDEN_SANITIZE=thread \
  -DWARDEN_HEADER_CHECK=OFF
echo "=== all tests passed (normal, ASan+UBSan and TSan builds)"
