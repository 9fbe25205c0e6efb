#!/usr/bin/env bash
# The folders tell the truth: every `#include "DIR/..."` in the product's sources names a folder
# that the include matrix of docs/ARCHITECTURE.md allows for the including file's folder. The
# matrix is read from the document itself (the lines between the two `include-matrix` markers,
# each `| folder | may include |`), so the map a newcomer reads is the map this test enforces.
# Usage: include_matrix_test.sh SOURCE_DIR
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
doc="$root/docs/ARCHITECTURE.md"
[[ -f $doc ]] || { echo "FAIL: $doc not found"; exit 1; }

declare -A allowed=()
in_matrix=0
while IFS= read -r line; do
  case "$line" in
    *'<!-- include-matrix:begin -->'*) in_matrix=1; continue ;;
    *'<!-- include-matrix:end -->'*) in_matrix=0; continue ;;
  esac
  ((in_matrix)) || continue
  # | `train/` | `runtime/`, `optim/`, ... |
  [[ $line =~ ^\|[[:space:]]*\`([a-z_]+)/\`[[:space:]]*\|(.*)\|[[:space:]]*$ ]] || continue
  folder=${BASH_REMATCH[1]}
  deps=$(grep -o '`[a-z_]*/`' <<<"${BASH_REMATCH[2]}" | tr -d '`/' | tr '\n' ' ' || true)
  allowed[$folder]="$folder $deps"
done <"$doc"
((${#allowed[@]} > 0)) || { echo "FAIL: no include matrix between the include-matrix markers of $doc"; exit 1; }

bad=0
checked=0
# Every folder of the repository root that holds C++ must have a row.
for dir in "$root"/*/; do
  folder=$(basename "$dir")
  [[ $folder == build* || $folder == tests || $folder == docs || $folder == scripts ]] && continue
  if find "$dir" -name '*.cc' -o -name '*.h' -o -name '*.cu' -o -name '*.inc' | grep -q .; then
    if [[ -z ${allowed[$folder]+x} ]]; then
      echo "FAIL: $folder/ holds C++ but has no row in the include matrix of docs/ARCHITECTURE.md"
      bad=1
    fi
  fi
done
for folder in "${!allowed[@]}"; do
  [[ -d $root/$folder ]] || { echo "FAIL: the include matrix names $folder/, which does not exist"; bad=1; continue; }
  while IFS= read -r -d '' file; do
    checked=$((checked + 1))
    while IFS= read -r hit; do
      n=${hit%%:*}
      inc=${hit#*:}
      target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([a-z_]+)\/.*/\1/' <<<"$inc")
      ok=0
      for a in ${allowed[$folder]}; do [[ $a == "$target" ]] && ok=1; done
      if ((!ok)); then
        echo "FAIL: ${file#$root/}:$n includes $target/ (${folder}/ may include: ${allowed[$folder]})"
        bad=1
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z_]+/' "$file" || true)
  done < <(find "$root/$folder" \( -name '*.cc' -o -name '*.h' -o -name '*.cu' -o -name '*.inc' \) -print0)
done
((checked > 0)) || { echo "FAIL: no source files checked"; exit 1; }
if ((bad)); then exit 1; fi
echo "ok: $checked files in ${#allowed[@]} folders include only what docs/ARCHITECTURE.md allows"
