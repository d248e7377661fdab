import grey
from grey import capi, errors


def test_one_subclass_per_status():
    statuses = {getattr(capi, n) for n in dir(capi) if n.startswith("GREY_ERROR_")}
    classes = [getattr(grey, n) for n in errors.__all__ if isinstance(getattr(grey, n, None), type)]
    by_status = {cls.status: cls for cls in classes if cls is not grey.Error}
    assert set(by_status) == statuses, "every grey_status needs its exception class"
    for status, cls in by_status.items():
        err = errors.from_status(status, "detail")
        assert type(err) is cls and isinstance(err, grey.Error) and err.status == status and str(err) == "detail"


def test_unknown_status_gives_the_base_class():
    err = errors.from_status(0x1234, "future status")
    assert type(err) is grey.Error and err.status == 0x1234


def test_type_stub_is_valid_and_lists_every_function():
    import ast
    from pathlib import Path

    stub = Path(capi.__file__).with_suffix(".pyi")
    tree = ast.parse(stub.read_text(encoding="utf-8"))  # keywords among C parameter names are renamed
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"grey_quantize", "grey_quant_params_from_name", "grey_buffer_map", "grey_audit_records_json"} <= functions
    assert all(hasattr(capi, name) for name in functions)
