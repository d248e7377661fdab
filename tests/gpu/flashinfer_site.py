#!/usr/bin/env python3
"""Builds a trimmed site folder holding what FlashInfer's BatchDecodeWithPagedKVCacheWrapper needs (bf16,
head dim 128, with and without tensor cores) for bench/kv_gpu_bench.py on a GPU machine that cannot reach a
package registry (tests/gpu/fetch-deps.sh, part `flashinfer`).

The flashinfer-python wheel unpacks to ~715 MB, nearly all of it kernel sources and generated kernels for
other operators; a run carries 64 MiB with the tree. What the decode path reads is far less:

  * the Python modules `import flashinfer` executes: followed from flashinfer/__init__.py through every
    module-level import (not imports inside functions, which the decode path does not reach, nor imports
    inside `try: ... except ImportError` or `contextlib.suppress(ImportError)`, which FlashInfer itself
    treats as optional: without them the import takes the same path it takes on a machine that lacks
    nvidia-cutlass-dsl, cudnn-frontend, cuda-tile and nccl4py, as the GPU image does);
  * the CUDA sources and Jinja templates its JIT specs for the batch-decode module and the FA2
    batch-prefill module (use_tensor_cores=True) name, and every header they include, followed through
    the include path FlashInfer's JIT build uses (flashinfer/jit/cpp_ext.py: the vendored CCCL first,
    then the CUDA toolkit's headers, which are followed but not copied, then tvm-ffi, flashinfer/data/include,
    csrc, CUTLASS, spdlog). A CUDA toolkit must be present to follow the includes its headers make
    ($CUDA_HOME, default /usr/local/cuda);
  * apache-tvm-ffi (the modules' binding layer), without its sources and Cython files.

  python3 tests/gpu/flashinfer_site.py site UNPACKED_FLASHINFER_WHEEL UNPACKED_TVM_FFI_WHEEL OUT
  python3 tests/gpu/flashinfer_site.py aot OUT     (needs PyTorch and nvcc; OUT on PYTHONPATH)

`aot` compiles the modules for sm_90a (H100, H200) with OUT's own headers, which also proves they
suffice, and puts each .so where FlashInfer looks for a prebuilt module (flashinfer/data/aot/NAME/NAME.so,
flashinfer/jit/env.py get_aot_artifacts): it loads that file as it is and compiles nothing.
"""
import ast
import os
import re
import shutil
import sys
import time

# Read by FlashInfer's Python at run time beside the modules: the templates and host sources its JIT
# specs copy into the build folder (flashinfer/jit/attention/modules.py, gen_customize_batch_decode_module
# and gen_customize_batch_prefill_module) and the header its default attention variant names in a string.
CSRC_ROOTS = [
    "batch_decode.cu", "batch_decode_jit_binding.cu", "batch_decode_customize_config.jinja",
    "batch_decode_kernel_inst.jinja",
    "batch_prefill.cu", "batch_prefill_jit_binding.cu", "batch_prefill_paged.cu",
    "batch_prefill_paged_jit_binding.cu", "batch_prefill_customize_config.jinja",
    "batch_prefill_paged_kernel_inst.jinja", "batch_prefill_ragged_kernel_inst.jinja",
]
INCLUDE_ROOTS = ["flashinfer/attention/variants.cuh"]
# flashinfer/version.py imports _build_meta inside try/except ImportError; without it the version reads
# 0.0.0+unknown, which changes the JIT cache's folder name and turns off its version checks.
KEEP_MODULES = ["flashinfer._build_meta"]


def module_closure(root):
    """Files of the flashinfer modules a top-level import executes (see the header comment)."""
    def path_of(name):
        base = os.path.join(root, *name.split("."))
        for candidate in (os.path.join(base, "__init__.py"), base + ".py"):
            if os.path.isfile(candidate):
                return candidate
        return None

    def optional(handlers):
        for handler in handlers:
            if handler.type is None:
                return True
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            if any(isinstance(t, ast.Name) and t.id in ("ImportError", "ModuleNotFoundError", "Exception",
                                                         "BaseException") for t in types):
                return True
        return False

    seen, todo = {}, ["flashinfer"] + KEEP_MODULES
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = seen[name] = path_of(name)
        if path is None:  # `from .x import y` where y is a name, not a module
            continue
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        package = parts if path.endswith("__init__.py") else parts[:-1]

        class Imports(ast.NodeVisitor):
            def visit_FunctionDef(self, node):
                pass
            visit_AsyncFunctionDef = visit_FunctionDef

            def visit_Try(self, node):
                if not optional(node.handlers):
                    for statement in node.body:
                        self.visit(statement)
                for statement in node.handlers + node.orelse + node.finalbody:
                    self.visit(statement)

            def visit_With(self, node):
                if any("suppress" in ast.unparse(i.context_expr) and "ImportError" in ast.unparse(i.context_expr)
                       for i in node.items):
                    return
                self.generic_visit(node)

            def visit_Import(self, node):
                todo.extend(a.name for a in node.names if a.name.split(".")[0] == "flashinfer")

            def visit_ImportFrom(self, node):
                if node.level:
                    base = package[:len(package) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "flashinfer":
                    return
                todo.append(target)
                todo.extend(f"{target}.{a.name}" for a in node.names)

        with open(path) as source:
            Imports().visit(ast.parse(source.read(), path))
    return sorted(os.path.relpath(p, root) for p in seen.values() if p)


def header_closure(root, cuda_include):
    """Files under flashinfer/data and tvm_ffi/include the JIT builds of the two modules read."""
    data = os.path.join(root, "flashinfer", "data")
    search = [f"{data}/cccl/cub", f"{data}/cccl/libcudacxx/include", f"{data}/cccl/thrust", cuda_include,
              f"{root}/tvm_ffi/include", f"{root}/tvm_ffi/3rdparty/dlpack/include", f"{data}/include",
              f"{data}/csrc", f"{data}/cutlass/include", f"{data}/cutlass/tools/util/include",
              f"{data}/spdlog/include"]
    include = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
    todo = [os.path.join(data, "csrc", f) for f in CSRC_ROOTS] + [os.path.join(data, "include", f) for f in INCLUDE_ROOTS]
    seen = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        with open(path, errors="replace") as source:
            text = source.read()
        # Every #include is followed, whatever #if surrounds it: more files than a build reads, never fewer.
        for kind, name in include.findall(text):
            for directory in ([os.path.dirname(path)] if kind == '"' else []) + search:
                candidate = os.path.normpath(os.path.join(directory, name))
                if os.path.isfile(candidate):
                    todo.append(candidate)
                    break
    return sorted(os.path.relpath(p, root) for p in seen if not p.startswith(cuda_include + os.sep))


def build_site(flashinfer_root, tvm_root, out):
    cuda_include = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "include")
    if not os.path.isfile(os.path.join(cuda_include, "cuda_runtime.h")):
        sys.exit(f"no CUDA toolkit headers at {cuda_include} (set CUDA_HOME): the header scan follows them")
    if os.path.exists(out):
        shutil.rmtree(out)
    # tvm-ffi first, in a staging copy of the wheel's layout, so that the header scan sees its include folder.
    stage = out + ".stage"
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    os.symlink(os.path.join(os.path.abspath(flashinfer_root), "flashinfer"), os.path.join(stage, "flashinfer"))
    os.symlink(os.path.join(os.path.abspath(tvm_root), "tvm_ffi"), os.path.join(stage, "tvm_ffi"))
    files = module_closure(flashinfer_root) + header_closure(stage, cuda_include)
    shutil.rmtree(stage)
    for name in files:
        source = os.path.join(tvm_root if name.startswith("tvm_ffi/") else flashinfer_root, name)
        os.makedirs(os.path.join(out, os.path.dirname(name)), exist_ok=True)
        shutil.copy2(source, os.path.join(out, name))
    for root, name in ((flashinfer_root, "flashinfer_python-"), (tvm_root, "apache_tvm_ffi-")):
        for entry in os.listdir(root):
            if entry.startswith(name) and entry.endswith(".dist-info"):
                # RECORD lists the wheel's every file, most of them left out here.
                shutil.copytree(os.path.join(root, entry), os.path.join(out, entry),
                                ignore=lambda d, names: [n for n in names if n == "RECORD"])
    # tvm-ffi's Python package; its C++ sources, Cython files and libbacktrace's source are for building
    # tvm-ffi itself (its core module links libtvm_ffi_testing.so, which stays).
    shutil.copytree(os.path.join(tvm_root, "tvm_ffi"), os.path.join(out, "tvm_ffi"), dirs_exist_ok=True,
                    ignore=lambda d, names: [n for n in names if n in ("src", "cython", "libbacktrace",
                                                                         "__pycache__")])
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"{out}: {len(files)} FlashInfer files and tvm-ffi, {size / 2**20:.1f} MiB")


def build_aot(out):
    """Compiles the decode module and the FA2 prefill modules (use_tensor_cores=True) for sm_90a into OUT."""
    workspace = os.path.abspath(out) + ".jit"
    os.environ["FLASHINFER_WORKSPACE_BASE"] = workspace
    os.environ["FLASHINFER_CUDA_ARCH_LIST"] = "9.0"
    sys.path.insert(0, os.path.abspath(out))
    import torch
    import flashinfer
    from flashinfer.jit.attention.modules import (_gen_batch_prefill_independent_paged_module,
                                                  _gen_batch_prefill_primary_module, gen_batch_decode_module)
    assert os.path.abspath(flashinfer.__file__).startswith(os.path.abspath(out)), flashinfer.__file__
    bf16 = torch.bfloat16
    # The arguments decode.py's plan passes (BatchDecodeWithPagedKVCacheWrapper.plan): q, KV and output
    # dtype, int32 indices, head dim 128 for QK and VO, no positional encoding, no sliding window, no
    # logits cap; the prefill module (fa2 backend) also without fp16 QK reduction. prefill.py's
    # get_batch_prefill_module loads the primary module (K and V pages of equal strides) and builds the
    # independent-strides one only when a call's K and V strides differ.
    prefill_args = ("fa2", bf16, bf16, bf16, torch.int32, 128, 128, 0, False, False, False)
    specs = [gen_batch_decode_module(bf16, bf16, bf16, torch.int32, 128, 128, 0, False, False),
             _gen_batch_prefill_primary_module(*prefill_args),
             _gen_batch_prefill_independent_paged_module(*prefill_args)]
    for spec in specs:
        start = time.perf_counter()
        spec.build()
        seconds = time.perf_counter() - start
        target = os.path.join(out, "flashinfer", "data", "aot", spec.name)
        os.makedirs(target, exist_ok=True)
        shutil.copy2(spec.jit_library_path, os.path.join(target, f"{spec.name}.so"))
        print(f"compiled {spec.name} for sm_90a in {seconds:.0f} s "
              f"({os.path.getsize(spec.jit_library_path) / 2**20:.1f} MiB)")
    shutil.rmtree(workspace)


if __name__ == "__main__":
    if sys.argv[1:2] == ["site"] and len(sys.argv) == 5:
        build_site(*sys.argv[2:])
    elif sys.argv[1:2] == ["aot"] and len(sys.argv) == 3:
        build_aot(sys.argv[2])
    else:
        sys.exit(__doc__)
