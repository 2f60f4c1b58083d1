#!/usr/bin/env bash
# module-graph.sh: the module graph of src/ from its `#include "module/..."`
# lines, checked against the layers of docs/ARCHITECTURE.md.
#
#   scripts/module-graph.sh            print the graph; exit 1 if an include
#                                      points up or sideways a layer
#   scripts/module-graph.sh --doc      also exit 1 unless docs/ARCHITECTURE.md's
#                                      dependency block is exactly this graph
#
# A module may include its own headers and those of modules in lower layers
# only. Two modules of the same layer do not include each other: the layer of
# a new dependency is decided here, on purpose, not by accident.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src="$here/src"
doc="$here/docs/ARCHITECTURE.md"

# The layers, lowest first (docs/ARCHITECTURE.md, "Dependencies").
LAYERS=(
    "core"
    "store index oci gguf sign engine health loadgen registry webui"
    "repo access audit scan policy delta"
    "trust serve rag suite bench"
    "bundle server"
    "cli"
)

declare -A layer_of
for i in "${!LAYERS[@]}"; do
    for m in ${LAYERS[$i]}; do layer_of[$m]=$i; done
done

status=0
# Every folder of src/ is a module and must have a layer.
for d in "$src"/*/; do
    m=$(basename "$d")
    [ -n "${layer_of[$m]:-}" ] || {
        echo "module-graph: error: module '$m' has no layer: add it to LAYERS in scripts/module-graph.sh" \
            "and to docs/ARCHITECTURE.md" >&2
        status=1
    }
done

# file:line:module-included, one per include of another module's header.
edges=$(cd "$src" && grep -rnoE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[a-z0-9_]+/' --include='*.c' \
    --include='*.h' --include='*.cpp' . |
    sed -E 's|^\./||; s|#[[:space:]]*include[[:space:]]+"||; s|/$||; s|:[[:space:]]*|:|g')

while IFS=: read -r file line to; do
    [ -n "$file" ] || continue
    from=${file%%/*}
    [ "$from" = "$to" ] && continue
    [ -n "${layer_of[$to]:-}" ] || {
        echo "module-graph: error: src/$file:$line includes '$to/...', which is not a module" >&2
        status=1; continue
    }
    [ -n "${layer_of[$from]:-}" ] || continue   # reported above
    lf=${layer_of[$from]} lt=${layer_of[$to]}
    if [ "$lt" -gt "$lf" ]; then
        echo "module-graph: error: src/$file:$line: $from (layer $lf) includes $to (layer $lt):" \
            "an include must point down a layer" >&2
        status=1
    elif [ "$lt" -eq "$lf" ]; then
        echo "module-graph: error: src/$file:$line: $from includes $to, both in layer $lf:" \
            "move one of them (scripts/module-graph.sh, docs/ARCHITECTURE.md)" >&2
        status=1
    fi
done <<<"$edges"

# The graph: one line per module with dependencies, modules in layer order,
# top first, each module's dependencies in layer order, lowest last.
graph() {
    local i m
    for ((i = ${#LAYERS[@]} - 1; i >= 0; i--)); do
        for m in ${LAYERS[$i]}; do
            local deps
            deps=$(awk -F: -v m="$m" '{ split($1, p, "/") } p[1] == m && $3 != m { print $3 }' <<<"$edges" |
                sort -u | while read -r d; do echo "${layer_of[$d]:-9} $d"; done |
                sort -k1,1nr -k2 | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $2 }')
            [ -n "$deps" ] && echo "$m -> $deps"
        done
    done
    return 0
}
graph >"${TMPDIR:-/tmp}/al-module-graph.$$"
trap 'rm -f "${TMPDIR:-/tmp}/al-module-graph.$$"' EXIT
cat "${TMPDIR:-/tmp}/al-module-graph.$$"

if [ "${1:-}" = --doc ]; then
    # The block between the two marker lines in docs/ARCHITECTURE.md.
    if ! diff -u <(sed -n '/^<!-- module-graph: begin/,/^<!-- module-graph: end/p' "$doc" | sed '1d;$d' |
        grep -v '^```') "${TMPDIR:-/tmp}/al-module-graph.$$" >&2; then
        echo "module-graph: error: docs/ARCHITECTURE.md's dependency list differs from the include graph" \
            "(- the page, + the code): update the page" >&2
        status=1
    fi
fi
exit "$status"
