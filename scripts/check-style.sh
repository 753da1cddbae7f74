#!/usr/bin/env bash
# Style gate: clang-format (per .clang-format) and file-length limits (STYLE.md: 600 target, 800 hard).
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -Ev '^(build|_build)' || true)
if [ ${#files[@]} -eq 0 ]; then
  echo "check-style: no sources"
  exit 0
fi

status=0
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/warden-style.$$; then
  head -40 /tmp/warden-style.$$ >&2
  echo "check-style: clang-format differences (run: clang-format -i <file>)" >&2
  status=1
fi
rm -f /tmp/warden-style.$$

for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  n=$(wc -l <"$f")
  if [ "$n" -gt 800 ]; then
    echo "check-style: $f has $n lines (limit 800)" >&2
    status=1
  fi
done

[ $status -eq 0 ] && echo "check-style: ${#files[@]} files OK"
exit $status
