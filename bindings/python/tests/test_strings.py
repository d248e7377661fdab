"""Strings holding a NUL byte never reach libgrey cut short: C reads a `const char*` only up to its first
NUL, so 'a.safetensors\\x00/x' would open a.safetensors and a record type 't1\\x00x' would be stored as
't1'. grey.capi's string typemap refuses them with grey.InvalidArgument naming the parameter, before
calling the library. The parameters and struct members checked here are read from grey.h itself, so
one that grey.h gains is checked as soon as it lands."""

import json
import pathlib
import sys

import numpy as np
import pytest

import grey
from grey import capi

REPO = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "bindings" / "tools"))
import greyh  # noqa: E402

HEADER = (REPO / "include" / "grey.h").read_text(encoding="utf-8")
FUNCTIONS = {fn.name: fn for fn in greyh.functions(HEADER)}
# The same string as each kind a string parameter takes.
KINDS = {"str": str, "bytes": lambda s: s.encode(), "PathLike": pathlib.PurePosixPath}


def refusal(where):
    """The start of the message of a refused string whose NUL is at byte 1."""
    return f"{where} holds a NUL byte (at byte 1)"


def _string_parameters():
    """(function, index of the Python argument, name) for every const char* parameter of grey.h."""
    out = []
    for name, fn in FUNCTIONS.items():
        arguments, _ = greyh.python_arguments(fn, HEADER)
        out += [(name, i, a.name) for i, a in enumerate(arguments) if a.type == "Text | None"]
    return out


STRING_PARAMETERS = _string_parameters()
STRING_MEMBERS = [(s, m) for s, members in greyh.string_members(HEADER).items() for m in members]


def _placeholder(python_type):
    """An argument of `python_type` that converts without complaint (the call is refused before it runs)."""
    if python_type == "Text | None":
        return "ok"
    if python_type in ("Handle", "Any"):
        return None
    if python_type == "int":
        return 0
    if python_type == "float":
        return 0.0
    if python_type in ("ReadableBuffer", "WritableBuffer"):
        return bytearray(8)
    if hasattr(capi, python_type):
        return getattr(capi, python_type)()
    pytest.fail(f"no placeholder for a grey.capi argument of type {python_type}")


def test_the_header_has_the_strings_this_test_expects():
    assert {("grey_model_create", "path"), ("grey_audit_append", "type"), ("grey_audit_append", "payload"),
            ("grey_config_set", "value"), ("grey_quant_params_from_name", "name")} <= {(f, n) for f, _, n in STRING_PARAMETERS}
    assert {("grey_audit_options", "log_path"), ("grey_context_options", "backends")} <= set(STRING_MEMBERS)
    assert len(STRING_PARAMETERS) == sum(len(v) for v in greyh.string_parameters(HEADER).values())


def test_every_function_taking_a_string_can_report_the_refusal():
    """Go's binding reports a refused string as the call's error, so each such function returns grey_status."""
    cannot = [name for name in greyh.string_parameters(HEADER) if FUNCTIONS[name].returns != "grey_status"]
    assert cannot == []


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("function, index, name", STRING_PARAMETERS, ids=[f"{f}.{n}" for f, _, n in STRING_PARAMETERS])
def test_every_string_parameter_refuses_a_nul_byte(function, index, name, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a cut path would point, were the string not refused
    arguments, _ = greyh.python_arguments(FUNCTIONS[function], HEADER)
    args = [_placeholder(a.type) for a in arguments]
    args[index] = KINDS[kind]("x\x00y")
    with pytest.raises(grey.InvalidArgument) as refused:
        getattr(capi, function)(*args)
    assert str(refused.value).startswith(refusal(f"{function}: {name}"))
    assert refused.value.status == capi.GREY_ERROR_INVALID_ARGUMENT
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("struct, member", STRING_MEMBERS, ids=[f"{s}.{m}" for s, m in STRING_MEMBERS])
def test_every_string_member_refuses_a_nul_byte(struct, member):
    obj = getattr(capi, struct)()
    with pytest.raises(grey.InvalidArgument) as refused:
        setattr(obj, member, "x\x00y")
    assert str(refused.value).startswith(refusal(f"{struct}.{member}"))
    assert getattr(obj, member) is None  # nothing was stored
    setattr(obj, member, b"ok")
    assert getattr(obj, member) == "ok"


def test_checkpoint_paths_refuse_a_nul_byte():
    options = capi.grey_audit_verify_options()
    with pytest.raises(grey.InvalidArgument, match=r"^grey_swig_audit_verify_add_checkpoint: path holds a NUL byte"):
        capi.grey_swig_audit_verify_add_checkpoint(options, "cp\x00x")
    assert options.checkpoint_count == 0


def test_a_string_must_be_str_bytes_or_pathlike():
    with pytest.raises(TypeError, match=r"^grey_model_create: path must be str, bytes or os.PathLike, not int$"):
        capi.grey_model_create(7)


# ---- the Pythonic layer: every kind of string it passes on ----------------------------------------

@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "a.safetensors"
    with grey.ModelWriter("safetensors") as writer:
        writer.add_tensor("w", np.zeros(4, dtype=np.float32))
        writer.write(path)
    return path


def test_model_path_with_a_nul_byte_is_refused_not_cut(model_file, monkeypatch):
    monkeypatch.chdir(model_file.parent)
    with grey.Model("a.safetensors") as model:  # the file the cut path would name exists
        assert model.names() == ["w"]
    for path in ("a.safetensors\x00/x", b"a.safetensors\x00/x", pathlib.Path("a.safetensors\x00/x")):
        with pytest.raises(grey.InvalidArgument, match=r"^grey_model_create: path holds a NUL byte \(at byte 13\)"):
            grey.Model(path)


def test_paths_may_be_str_bytes_or_pathlike(model_file):
    digest = grey.sha256_file(model_file)
    assert grey.sha256_file(str(model_file)) == digest
    assert grey.sha256_file(bytes(model_file)) == digest
    with grey.Model(bytes(model_file)) as model:
        assert model.names() == ["w"]


@pytest.fixture
def log(tmp_path):
    verifier, writer = tmp_path / "audit.key", tmp_path / "audit.key.writer"
    grey.audit_keygen(verifier, writer)
    with grey.AuditLog(tmp_path / "audit.log", writer) as log:
        yield log


def test_audit_record_type_and_payload_with_a_nul_byte_are_refused(log):
    with pytest.raises(grey.InvalidArgument, match=r"^grey_audit_append: type holds a NUL byte \(at byte 2\)"):
        log.append("t1\x00x", {"step": 1})
    with pytest.raises(grey.InvalidArgument, match=r"^grey_audit_append: payload holds a NUL byte \(at byte 6\)"):
        log.append("t1", '{"a":"\x00"}')
    with pytest.raises(grey.InvalidArgument, match=r"^grey_audit_append: payload holds a NUL byte \(at byte 6\)"):
        log.append("t1", b'{"a":"\x00"}')
    with pytest.raises(grey.InvalidArgument, match=r"^grey_proof_write: artifact_json holds a NUL byte"):
        log.proof_write(pathlib.Path(log.path).parent / "proofs", b'{"a":"\x00"}')
    assert log.info().records == 0  # the library was never called


def test_payloads_keep_nul_characters_both_ways(log):
    """A NUL inside a JSON string is written \\u0000: stored, and read back, whole."""
    assert log.append("t1", {"text": "x\x00y"}) == 0
    assert log.append("t2", b'{"text":"bytes\\u0000too"}') == 1
    assert log.append("t3", bytearray(b'{"n":3}')) == 2
    log.flush()
    records = grey.audit_records(log.path)
    assert [(r["type"], r["payload"]) for r in records] == [
        ("t1", {"text": "x\x00y"}), ("t2", {"text": "bytes\x00too"}), ("t3", {"n": 3})]
    text = capi.grey_audit_records_json(log.path, 0, 0, 1 << 16)
    assert "x\\u0000y" in text and json.loads(text)[0]["payload"]["text"] == "x\x00y"


def test_audit_paths_with_a_nul_byte_are_refused(tmp_path, log):
    key = tmp_path / "audit.key"
    with pytest.raises(grey.InvalidArgument, match=r"^grey_audit_keygen_options\.verifier_key_path holds a NUL"):
        grey.audit_keygen(tmp_path / "k\x00x", tmp_path / "w")
    with pytest.raises(grey.InvalidArgument, match=r"^grey_swig_audit_verify_add_checkpoint: path holds a NUL"):
        grey.audit_verify(log.path, key, [tmp_path / "cp\x00x"])
    with pytest.raises(grey.InvalidArgument, match=r"^grey_audit_checkpoint: out_path holds a NUL"):
        log.checkpoint(tmp_path / "cp\x00x")
    with pytest.raises(grey.InvalidArgument, match=r"^grey_audit_options\.key_path holds a NUL"):
        grey.AuditLog(tmp_path / "other.log", str(key) + "\x00.writer")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.key", "audit.key.writer", "audit.log"]


def test_config_and_context_strings_with_a_nul_byte_are_refused(tmp_path):
    with pytest.raises(grey.InvalidArgument, match=r"^grey_config_create: profile holds a NUL"):
        grey.Config("balanced\x00x")
    with grey.Config() as cfg:
        with pytest.raises(grey.InvalidArgument, match=r"^grey_config_set: key holds a NUL"):
            cfg["memory.compression.algorithm\x00x"] = "zstd"
        with pytest.raises(grey.InvalidArgument, match=r"^grey_config_set: value holds a NUL"):
            cfg["memory.compression.algorithm"] = "zstd\x00x"
        with pytest.raises(grey.InvalidArgument, match=r"^grey_config_get: key holds a NUL"):
            cfg["memory.compression.algorithm\x00x"]
        with pytest.raises(grey.InvalidArgument, match=r"^grey_config_load_string: yaml holds a NUL"):
            cfg.load_string("memory:\x00\n")
        with pytest.raises(grey.InvalidArgument, match=r"^grey_config_load_file: path holds a NUL"):
            cfg.load_file(tmp_path / "grey.yaml\x00x")
    for options, member in (({"backends": ["host\x00x"]}, "backends"), ({"backend_dir": "d\x00"}, "backend_dir"),
                            ({"config_path": "c\x00"}, "config_path"), ({"profile": "balanced\x00"}, "profile")):
        with pytest.raises(grey.InvalidArgument, match=rf"^grey_context_options\.{member} holds a NUL"):
            grey.Context(**options)


def test_model_writer_and_quant_names_with_a_nul_byte_are_refused(tmp_path):
    w = np.zeros((4, 32), dtype=np.float32)
    with pytest.raises(grey.InvalidArgument, match=r"^grey_quant_params_from_name: name holds a NUL byte \(at byte 4\)"):
        grey.quantize(w, "q8_0\x00x")
    with pytest.raises(grey.InvalidArgument, match=r"^grey_quant_params_from_name: name holds a NUL"):
        grey.quant_size((4, 32), "q8_0\x00x")
    with grey.ModelWriter("gguf") as writer:
        with pytest.raises(grey.InvalidArgument, match=r"^grey_model_writer_add_tensor: name holds a NUL"):
            writer.add_tensor("w\x00x", w)
        with pytest.raises(grey.InvalidArgument, match=r"^grey_model_writer_set_metadata: key holds a NUL"):
            writer.set_metadata("general.name\x00x", "m")
        with pytest.raises(grey.InvalidArgument, match=r"^grey_model_writer_set_metadata: value holds a NUL"):
            writer.set_metadata("general.name", "m\x00x")
        writer.add_tensor("w", w)
        with pytest.raises(grey.InvalidArgument, match=r"^grey_model_writer_write: path holds a NUL"):
            writer.write(tmp_path / "out.gguf\x00x")
    assert list(tmp_path.iterdir()) == []
