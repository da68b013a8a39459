#!/usr/bin/env bash
# CI: the C++ tests and the Python kernel parity tests under AddressSanitizer +
# UndefinedBehaviorSanitizer (one instrumented build; ~7-9 minutes on 2 cores, mostly compiling).
# SANITIZE=cpp limits it to the C++ tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
exec bash "$root/scripts/sanitize.sh" "${SANITIZE:-all}"
