import numpy as np
import pytest

import grey


@pytest.fixture
def model_file(tmp_path):
    """A model with an embedding, two matrices, a norm, a first and last convolution and an int tensor."""
    path = tmp_path / "model.safetensors"
    rng = np.random.default_rng(5)
    tensors = {
        "embed_tokens.weight": rng.standard_normal((16, 64), dtype=np.float32),
        "conv_in.weight": rng.standard_normal((8, 3, 3, 3), dtype=np.float32),
        "layers.0.q.weight": rng.standard_normal((64, 64), dtype=np.float32),
        "layers.0.norm.weight": np.ones(64, dtype=np.float32),
        "layers.0.out.weight": rng.standard_normal((32, 64), dtype=np.float32),
        "conv_out.weight": rng.standard_normal((4, 8, 1, 1), dtype=np.float32),
        "ids": np.arange(4, dtype=np.int64),
    }
    with grey.ModelWriter("safetensors") as writer:
        for name, array in tensors.items():
            writer.add_tensor(name, array)
        writer.write(path)
    return path, tensors


def test_report_lists_every_tensor_with_the_policy_reasons(model_file):
    path, tensors = model_file
    report = grey.quantize_model(path, None, "int4-g64")
    assert [t["name"] for t in report["tensors"]] == ["layers.0.q.weight", "layers.0.out.weight"]
    assert {k["name"]: k["reason"] for k in report["kept"]} == {
        "embed_tokens.weight": "embedding (critical layer)",
        "conv_in.weight": "first convolution (critical layer)",
        "layers.0.norm.weight": "one-dimensional (bias or norm)",
        "conv_out.weight": "last convolution (critical layer)",
        "ids": "not a float tensor (I64)",
    }
    assert report["total"]["elements"] == 64 * 64 + 32 * 64


def test_patterns_override_the_keep_list_and_the_format(model_file):
    path, _ = model_file
    report = grey.quantize_model(path, None, "int4-g64", keep=[r"\.out\."], quantize=["^embed"],
                                 formats={"^layers": "int8", "^embed": "q8_0"}, calibration="mse")
    assert {t["name"]: t["format"] for t in report["tensors"]} == {"embed_tokens.weight": "q8_0", "layers.0.q.weight": "int8"}
    assert {k["name"]: k["reason"] for k in report["kept"]}["layers.0.out.weight"] == r"matches keep pattern '\.out\.'"
    everything = grey.quantize_model(path, None, "int8", keep_critical=False)
    assert len(everything["tensors"]) == 5


def test_bad_patterns_and_the_empty_run_are_errors(model_file, tmp_path):
    path, _ = model_file
    with pytest.raises(grey.InvalidArgument, match=r"keep pattern '\(' is not a valid regular expression"):
        grey.quantize_model(path, None, "int8", keep=["("])
    with pytest.raises(grey.InvalidArgument, match="unknown quantization format name 'int3'"):
        grey.quantize_model(path, None, "int8", formats={"x": "int3"})
    with pytest.raises(TypeError):
        grey.quantize_model(path, None, "int8", keep="layers")
    out = tmp_path / "out.safetensors"
    with pytest.raises(grey.InvalidArgument, match="nothing to quantize"):
        grey.quantize_model(path, out, "int8", keep=["^layers"])
    assert not out.exists()
    report = grey.quantize_model(path, out, "int8", keep=["^layers"], allow_empty=True)
    assert report["tensors"] == [] and len(report["kept"]) == 7 and out.exists()


def test_dequantize_round_trip(model_file, tmp_path):
    path, tensors = model_file
    quantized, restored = tmp_path / "q.gguf", tmp_path / "r.safetensors"
    report = grey.quantize_model(path, quantized, "int4-g32")
    grey.dequantize_model(quantized, restored)
    with grey.Model(restored) as model:
        assert model.names() == list(tensors)
        for name, array in tensors.items():
            back = model[name].data
            assert back.shape == array.shape
            row = next((t for t in report["tensors"] if t["name"] == name), None)
            if row is None:
                np.testing.assert_array_equal(back, array)  # kept: unchanged
            else:
                expected = grey.quantize(array, "int4-g32").dequantize()
                np.testing.assert_array_equal(back, expected)
    grey.dequantize_model(quantized, tmp_path / "h.safetensors", dtype="F16")
    with grey.Model(tmp_path / "h.safetensors") as model:
        assert model["layers.0.q.weight"].dtype == "F16"
    with pytest.raises(grey.InvalidArgument, match="nothing to dequantize"):
        grey.dequantize_model(path, tmp_path / "never.safetensors")
    with pytest.raises(grey.InvalidArgument):
        grey.dequantize_model(quantized, tmp_path / "x.safetensors", dtype="I8")


def test_progress_reports_every_tensor_and_stops(model_file, tmp_path):
    path, tensors = model_file
    sizes = [array.nbytes for array in tensors.values()]
    seen = []
    grey.quantize_model(path, tmp_path / "q.safetensors", "int4-g32", progress=lambda *call: seen.append(call))
    done = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    assert seen == [(d, sum(sizes), name) for d, name in zip(done, [""] + list(tensors))]

    # A true result stops the call: grey.Cancelled, and no output file.
    with pytest.raises(grey.Cancelled, match="cancelled by the progress callback"):
        grey.quantize_model(path, tmp_path / "stopped.safetensors", "int4-g32", progress=lambda done, total, name: name == "layers.0.q.weight")
    assert not (tmp_path / "stopped.safetensors").exists()

    # An exception in the callback stops the call and is the one raised.
    def broken(done, total, name):
        raise KeyError(name)

    with pytest.raises(KeyError):
        grey.dequantize_model(tmp_path / "q.safetensors", tmp_path / "r.safetensors", progress=broken)
    assert not (tmp_path / "r.safetensors").exists()
    calls = []
    grey.dequantize_model(tmp_path / "q.safetensors", tmp_path / "r.safetensors", progress=lambda *c: calls.append(c))
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1] and [c[2] for c in calls[1:]] == list(tensors)
