#!/usr/bin/env python3
"""Reads include/grey.h: its functions (name, return type, parameters), enum constants and structs.

Used by the coverage test (tests/bindings/coverage.py) and to write grey.capi's type stub at build
time, so that both follow the header as it grows. The header's own conventions make a small parser
enough: every function is declared `GREY_API [GREY_NODISCARD] <type> <name>(<parameters>);`.

    python3 bindings/tools/greyh.py functions include/grey.h     # one function name a line
    python3 bindings/tools/greyh.py pyi include/grey.h OUT.pyi   # the stub for grey.capi
    python3 bindings/tools/greyh.py strings include/grey.h       # JSON: every const char* parameter
                                                                 # and struct member (the Go test's list)
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Param:
    type: str
    name: str


@dataclass(frozen=True)
class Function:
    name: str
    returns: str
    params: tuple[Param, ...]


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _norm(c_type: str) -> str:
    c_type = re.sub(r"\s*\*\s*", "*", c_type.strip())
    return re.sub(r"\s+", " ", c_type)


def _param(text: str) -> Param:
    m = re.match(r"^(.*?)([A-Za-z_]\w*)\s*(\[[^\]]*\])?$", text.strip(), re.S)
    if not m or not m.group(1).strip():
        raise ValueError(f"cannot read parameter {text!r}")
    return Param(_norm(m.group(1)), m.group(2))


def functions(header: str) -> list[Function]:
    text = _strip_comments(header)
    out = []
    pattern = re.compile(r"\bGREY_API\s+(?:GREY_NODISCARD\s+)?([^;(]*?)\b([A-Za-z_]\w*)\s*\(([^)]*)\)\s*;", re.S)
    for m in pattern.finditer(text):
        params_text = m.group(3).strip()
        params = () if params_text in ("", "void") else tuple(_param(p) for p in params_text.split(","))
        out.append(Function(m.group(2), _norm(m.group(1)), params))
    return out


def constants(header: str) -> list[str]:
    """Every enum member and numeric #define named GREY_*."""
    text = _strip_comments(header)
    names: list[str] = []
    for body in re.findall(r"typedef\s+enum\s+\w*\s*\{(.*?)\}", text, re.S):
        for item in body.split(","):
            m = re.match(r"\s*(GREY_\w+)", item)
            if m:
                names.append(m.group(1))
    for m in re.finditer(r"^#define\s+(GREY_\w+)\s+(\(?\s*[\d(][^\n]*)$", text, re.M):
        names.append(m.group(1))
    return names


def structs(header: str) -> list[str]:
    """Complete struct types (opaque handles are left out)."""
    return re.findall(r"typedef\s+struct\s+(\w+)\s*\{", _strip_comments(header))


def opaque_handles(header: str) -> list[str]:
    return re.findall(r"typedef\s+struct\s+(\w+)\s+\1\s*;", _strip_comments(header))


def members(header: str) -> dict[str, tuple[Param, ...]]:
    """The members of each complete struct, in order (array members by element type: `char name[64]`
    is Param("char", "name"))."""
    out: dict[str, tuple[Param, ...]] = {}
    for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*\1\s*;", _strip_comments(header), re.S):
        out[m.group(1)] = tuple(_param(item) for item in m.group(2).split(";") if item.strip())
    return out


# Strings the library is given: the C strings a binding must refuse when they hold a NUL byte.
C_STRING = "const char*"


def string_parameters(header: str) -> dict[str, list[str]]:
    """Function name -> its `const char*` parameters, for every function that takes one."""
    return {fn.name: names for fn in functions(header) if (names := [p.name for p in fn.params if p.type == C_STRING])}


def string_members(header: str) -> dict[str, list[str]]:
    """Struct name -> its `const char*` members, for every struct that has one."""
    return {name: names for name, params in members(header).items()
            if (names := [p.name for p in params if p.type == C_STRING])}


# ---- the grey.capi stub: mirrors bindings/python/grey_python.i ----------------------------------

_INTEGERS = {"uint8_t", "uint16_t", "uint32_t", "uint64_t", "int8_t", "int16_t", "int32_t", "int64_t", "size_t", "int",
             "unsigned"}


def _py_type(c_type: str, struct_names: set[str], enums: set[str], handles: set[str]) -> str:
    base = c_type.replace("const ", "").strip()
    if base in _INTEGERS or base in enums:
        return "int"
    if base == "double":
        return "float"
    if base == "char*":
        return "str | None"
    if base.endswith("*") and base[:-1] in handles:
        return "Handle"
    if base.endswith("*") and base[:-1] in struct_names:
        return base[:-1]
    return "Any"


# (pointer, size) pairs grey_python.i turns into one buffer-protocol argument.
_MEMORY_RANGES = {
    ("source", "size_bytes"): "ReadableBuffer", ("source", "source_bytes"): "ReadableBuffer",
    ("data", "size_bytes"): "ReadableBuffer", ("approximation", "bytes_each"): "ReadableBuffer",
    ("destination", "size_bytes"): "WritableBuffer", ("destination", "destination_bytes"): "WritableBuffer",
}


def _enums(header: str) -> set[str]:
    return set(re.findall(r"typedef\s+enum\s+\w*\s*\{.*?\}\s*(\w+)\s*;", _strip_comments(header), re.S))


def python_arguments(fn: Function, header: str) -> tuple[list[Param], list[str]]:
    """What grey.capi's `fn` takes, as Param(python type, name) in order, and the types it returns."""
    struct_names = set(structs(header))
    handles = set(opaque_handles(header))
    enums = _enums(header)
    args: list[Param] = []
    outs: list[str] = []
    params = list(fn.params)
    i = 0
    while i < len(params):
        p = params[i]
        names = [q.name for q in params[i:i + 3]]
        if names in (["buffer", "buffer_size", "out_length"], ["id_buffer", "id_buffer_size", "out_id_length"]):
            args.append(Param("int", "capacity"))
            outs.append("str")
            i += 3
            continue
        if tuple(names[:2]) in _MEMORY_RANGES:
            args.append(Param(_MEMORY_RANGES[tuple(names[:2])], p.name))
            i += 2
            continue
        if p.name == "reference" and p.type == "const void*":
            args.append(Param("ReadableBuffer", "reference"))
            i += 1
            continue
        if p.name.startswith("out_") and p.type == "uint8_t":  # uint8_t out_digest[32]
            outs.append("bytes")
            i += 1
            continue
        if p.type.endswith("**"):
            outs.append("Handle")
        elif p.type.endswith("*") and not p.type.startswith("const") and p.type[:-1] in _INTEGERS | {"double"} | enums:
            outs.append("float" if p.type == "double*" else "int")
        else:
            name = p.name + "_" if keyword.iskeyword(p.name) else p.name  # grey_audit_records_json's `from`
            py_type = "Text | None" if p.type == C_STRING else _py_type(p.type, struct_names, enums, handles)
            args.append(Param(py_type, name))
        i += 1
    return args, outs


def pyi(header: str) -> str:
    struct_names = set(structs(header))
    handles = set(opaque_handles(header))
    enums = _enums(header)
    lines = [
        "# Generated at build time from include/grey.h by bindings/tools/greyh.py. Do not edit.",
        "from os import PathLike",
        "from typing import Any, Callable, NewType, Union",
        "",
        "Handle = NewType('Handle', object)  # an opaque libgrey handle; grey/ wraps each in an owner",
        "ReadableBuffer = Any  # any C-contiguous buffer-protocol object",
        "WritableBuffer = Any  # any writable C-contiguous buffer-protocol object",
        "Text = Union[str, bytes, PathLike[str], PathLike[bytes]]  # sent as UTF-8; a NUL byte raises InvalidArgument",
        "",
    ]
    lines += [f"{name}: int" for name in constants(header)]
    lines.append("")
    for name in sorted(struct_names):
        lines += [f"class {name}:", "    def __init__(self) -> None: ...",
                  "    def __getattr__(self, name: str) -> Any: ...",
                  "    def __setattr__(self, name: str, value: Any) -> None: ...", ""]
    for fn in functions(header):
        arguments, outs = python_arguments(fn, header)
        args = [f"{a.name}: {a.type}" for a in arguments]
        if fn.returns == "grey_status" or fn.returns == "void":
            result = "None" if not outs else outs[0] if len(outs) == 1 else f"tuple[{', '.join(outs)}]"
        else:
            result = _py_type(fn.returns, struct_names, enums, handles)
        lines.append(f"def {fn.name}({', '.join(args)}) -> {result}: ...")
    # The helpers grey_python.i and grey.i add beyond grey.h.
    lines.append("def grey_py_options_set_log(options: grey_context_options, "
                 "callback: Union[Callable[[int, str], None], None]) -> None: ...")
    lines.append("def grey_py_model_tensor_memory(owner: object, tensor: grey_model_tensor) -> Any: ...")
    lines.append("def grey_py_quant_options_set_progress(options: grey_model_quant_options, callback: Any) -> None: ...")
    lines.append("def grey_py_dequant_options_set_progress(options: grey_model_dequant_options, callback: Any) -> None: ...")
    lines.append("def grey_py_buffer_dlpack(owner: object, buffer: Handle, versioned: int) -> Any: ...")
    lines.append("def grey_swig_audit_verify_add_checkpoint(options: grey_audit_verify_options, path: Text) -> None: ...")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in ("functions", "pyi", "strings"):
        print(__doc__, file=sys.stderr)
        return 2
    header = Path(argv[2]).read_text(encoding="utf-8")
    if argv[1] == "functions":
        print("\n".join(fn.name for fn in functions(header)))
        return 0
    if argv[1] == "strings":
        print(json.dumps({"parameters": string_parameters(header), "members": string_members(header)}, indent=1))
        return 0
    if len(argv) != 4:
        print("usage: greyh.py pyi GREY_H OUT.pyi", file=sys.stderr)
        return 2
    Path(argv[3]).write_text(pyi(header), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
