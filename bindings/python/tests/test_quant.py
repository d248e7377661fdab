import math

import numpy as np
import pytest

import grey
from grey import capi

FORMATS = ["int8", "int8-token", "int4-g32", "int4-g64", "int4-g128", "int4-sym-g128", "fp8-e4m3", "fp8-e5m2", "nf4",
           "q8_0", "q4_0", "q4_1"]


def weights(rows=64, cols=256, seed=7):
    return (np.random.default_rng(seed).standard_normal((rows, cols)) * 0.02).astype(np.float32)


def test_the_format_names_are_libgreys():
    assert grey.quant_formats() == FORMATS


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_round_trips_and_reports_what_the_c_api_reports(name):
    x = weights()
    q = grey.quantize(x, name)
    assert q.format == name and q.shape == x.shape and q.dtype == "F32" and q.calibration == "rtn"
    assert q.data.dtype == np.uint8 and q.data.shape == (grey.quant_size(x.shape, name),) and q.nbytes == q.data.nbytes

    # The same call through the raw layer gives the same bytes and the same report, field for field.
    params = capi.grey_quant_params()
    capi.grey_quant_params_from_name(name, params)
    assert capi.grey_quant_params_name(params) == name
    desc = capi.grey_tensor_desc()
    desc.dtype, desc.rank, desc.shape = capi.GREY_DTYPE_F32, 2, x.shape
    raw_out = np.empty(capi.grey_quant_size(desc, params), dtype=np.uint8)
    raw_report = capi.grey_quant_report()
    capi.grey_quantize(desc, x, params, raw_out, raw_report)
    np.testing.assert_array_equal(q.data, raw_out)
    r = q.report
    assert (r.elements, r.bytes, r.bits_per_weight) == (raw_report.elements, raw_report.bytes, raw_report.bits_per_weight)
    assert (r.rel_rmse, r.sqnr_db, r.max_abs_err) == (raw_report.rel_rmse, raw_report.sqnr_db, raw_report.max_abs_err)
    assert r.bits_per_weight == 8 * r.bytes / r.elements and r.elements == x.size

    # Dequantizing gives back values whose error is the report's, exactly.
    y = q.dequantize()
    assert y.dtype == np.float32 and y.shape == x.shape
    again = grey.quant_compare(x, y)
    assert again.rel_rmse == r.rel_rmse and again.max_abs_err == r.max_abs_err
    assert 0 < r.rel_rmse < 0.25 and math.isclose(r.sqnr_db, -20 * math.log10(r.rel_rmse), rel_tol=1e-9)
    np.testing.assert_array_equal(q.dequantize(np.float16), y.astype(np.float16))


def test_report_to_dict_and_exact_results():
    x = np.zeros((4, 64), dtype=np.float32)
    q = grey.quantize(x, "int8")
    d = q.report.to_dict()
    assert d["rel_rmse"] == 0.0 and d["sqnr_db"] is None and math.isinf(q.report.sqnr_db)
    assert set(d) == {"calibration", "elements", "bytes", "bits_per_weight", "rel_rmse", "sqnr_db", "max_abs_err",
                      "sum_squared_error", "sum_squared_signal"}
    np.testing.assert_array_equal(q.dequantize(), x)


def test_mse_calibration_is_passed_through_and_never_worse():
    x = weights(seed=3)
    rtn = grey.quantize(x, "int4-g128", "rtn").report
    mse = grey.quantize(x, "int4-g128", calibration="mse").report
    assert rtn.calibration == "rtn" and mse.calibration == "mse"
    assert mse.rel_rmse <= rtn.rel_rmse


def test_float16_and_bfloat16_inputs():
    x = weights(8, 128)
    half = x.astype(np.float16)
    q16 = grey.quantize(half, "q8_0")
    assert q16.dtype == "F16"
    np.testing.assert_array_equal(q16.data, grey.quantize(half.astype(np.float32), "q8_0").data)
    bf16 = (x.view(np.uint32) >> 16).astype(np.uint16)  # truncated BF16 bits
    qb = grey.quantize(bf16, "int8", dtype="bf16")
    assert qb.dtype == "BF16"
    back = qb.dequantize("bf16")
    assert back.dtype == np.uint16 and back.shape == x.shape
    as_f32 = (bf16.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(qb.data, grey.quantize(as_f32, "int8").data)


def test_no_copy_of_contiguous_input_and_none_for_no_report():
    x = weights(4, 64)
    q = grey.quantize(x, "int8", report=False)
    assert q.report is None
    strided = np.asfortranarray(x)  # not C-contiguous: copied once, same result
    np.testing.assert_array_equal(grey.quantize(strided, "int8").data, q.data)


def test_errors_carry_libgreys_messages():
    x = weights(2, 96)
    with pytest.raises(grey.InvalidArgument) as bad_name:
        grey.quantize(x, "int3")
    assert str(bad_name.value) == (
        "unknown quantization format name 'int3'; valid names: int8, int8-token, int4-g32, int4-g64, int4-g128, "
        "int4-sym-g128, fp8-e4m3, fp8-e5m2, nf4, q8_0, q4_0, q4_1")
    with pytest.raises(grey.InvalidArgument, match="innermost dimension 48 is not a multiple of 32"):
        grey.quantize(weights(2, 48), "q4_0")
    nan = x.copy()
    nan[1, 5] = np.nan
    with pytest.raises(grey.InvalidArgument, match="NaN"):
        grey.quantize(nan, "int8")
    with pytest.raises(ValueError, match="calibration"):
        grey.quantize(x, "int8", calibration="best")
    with pytest.raises(ValueError, match="F32, F16 or BF16"):
        grey.quantize(np.arange(64, dtype=np.int32).reshape(2, 32), "int8")
    with pytest.raises(TypeError):
        grey.quantize(x, 8)
    with pytest.raises(ValueError, match="must match"):
        grey.quant_compare(x, x[:1])
    with pytest.raises(grey.InvalidArgument):
        grey.quantize(np.zeros((0, 32), dtype=np.float32), "int8")  # nothing to quantize
    q = grey.quantize(x, "int8")
    with pytest.raises(ValueError, match="dequantize writes"):
        q.dequantize(np.int8)


def test_raw_layer_checks_the_two_sizes_of_quant_compare():
    desc = capi.grey_tensor_desc()
    desc.dtype, desc.rank, desc.shape = capi.GREY_DTYPE_F32, 1, (4,)
    with pytest.raises(ValueError, match="differ in size"):
        capi.grey_quant_compare(desc, np.zeros(4, np.float32), np.zeros(3, np.float32), capi.grey_quant_report())
