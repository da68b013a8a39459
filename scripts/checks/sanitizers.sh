#!/usr/bin/env bash
# CI: the C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer (about 5 minutes on 2
# cores, most of it compiling). The Python half runs with `scripts/sanitize.sh python`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
exec bash "$root/scripts/sanitize.sh" cpp
