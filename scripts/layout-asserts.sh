#!/usr/bin/env bash
# Prints _Static_assert lines freezing the size and every offset of the named public structs, for
# pasting into tests/abi/layout_test.c when a struct is released. Usage: scripts/layout-asserts.sh grey_x [grey_y...]
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$@" > "$tmp/gen.c" <<'PY'
import re, sys
header = open("include/grey.h").read()
print('#include "grey.h"\n#include <stdio.h>\n#include <stddef.h>\nint main(void) {')
for name in sys.argv[1:]:
    m = re.search(r"typedef struct %s \{(.*?)\} %s;" % (name, name), header, re.S)
    if not m:
        sys.exit(f"no struct {name} in include/grey.h")
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    print(f'printf("_Static_assert(sizeof({name}) == %zu, \\"size of {name} changed\\");\\n", sizeof({name}));')
    for decl in filter(None, (d.strip() for d in body.split(";"))):
        fn = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
        field = fn.group(1) if fn else re.search(r"(\w+)\s*(\[[^\]]*\])?$", decl).group(1)
        print(f'printf("_Static_assert(offsetof({name}, {field}) == %zu, \\"{name}.{field} moved\\");\\n", offsetof({name}, {field}));')
print("return 0; }")
PY
cc -std=c11 -Iinclude "$tmp/gen.c" -o "$tmp/gen"
"$tmp/gen"
