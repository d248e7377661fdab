import gc

import numpy as np
import pytest

import grey


@pytest.fixture
def model_file(tmp_path):
    """A safetensors file with an F32 matrix, an F16 vector and BF16 bits, written through grey.ModelWriter."""
    path = tmp_path / "small.safetensors"
    w32 = np.arange(6 * 64, dtype=np.float32).reshape(6, 64) / 100
    with grey.ModelWriter("safetensors") as writer:
        writer.set_metadata("origin", "pytest")
        writer.add_tensor("w32", w32)
        writer.add_tensor("bias", np.array([1.5, -2.0, 0.25], dtype=np.float16))
        writer.add_tensor("bf", np.array([[0x3F80, 0xC000]], dtype=np.uint16), dtype="bf16")
        writer.write(path)
    return path, w32


def test_tensors_are_views_of_the_mapped_file(model_file):
    path, w32 = model_file
    with grey.Model(path) as model:
        assert model.format == "safetensors" and len(model) == 3
        assert model.names() == ["w32", "bias", "bf"]  # file order
        t = model["w32"]
        assert (t.name, t.dtype, t.shape, t.nbytes) == ("w32", "F32", (6, 64), w32.nbytes)
        np.testing.assert_array_equal(t.data, w32)
        assert not t.data.flags.writeable and not t.data.flags.owndata  # a view, read-only
        with pytest.raises(ValueError):
            t.data[0, 0] = 1
        assert t.raw.dtype == np.uint8 and t.raw.tobytes() == w32.tobytes()
        np.testing.assert_array_equal(model[1].data, np.array([1.5, -2.0, 0.25], dtype=np.float16))
        bf = model[-1]
        assert bf.dtype == "BF16" and bf.data.dtype == np.uint16 and bf.data.tolist() == [[0x3F80, 0xC000]]
        assert [t.name for t in model] == model.names()


def test_views_keep_the_file_mapped_after_close(model_file):
    path, w32 = model_file
    model = grey.Model(path)
    view = model["w32"].data
    model.close()
    assert model.closed
    with pytest.raises(ValueError, match="closed"):
        len(model)
    del model
    gc.collect()
    np.testing.assert_array_equal(view, w32)  # still mapped: the view holds the file


def test_quantize_a_model_tensor_and_write_gguf(model_file, tmp_path):
    path, w32 = model_file
    out = tmp_path / "q.gguf"
    with grey.Model(path) as model, grey.ModelWriter("gguf") as writer:
        writer.copy_metadata(model)
        q = grey.quantize(model["w32"], "q8_0")
        np.testing.assert_array_equal(q.data, grey.quantize(w32, "q8_0").data)
        writer.add_tensor("w32", q.data, dtype="Q8_0", shape=q.shape)
        writer.add_tensor("bias", model["bias"])
        writer.write(out)
    with grey.Model(out) as gguf:
        assert gguf.format == "gguf"
        t = gguf["w32"]
        assert t.dtype == "Q8_0" and t.shape == (6, 64) and t.data.dtype == np.uint8
        np.testing.assert_array_equal(t.raw, q.data)
        np.testing.assert_array_equal(gguf["bias"].data, np.array([1.5, -2.0, 0.25], dtype=np.float16))


def test_model_errors(tmp_path):
    with pytest.raises(grey.NotFound):
        grey.Model(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 16)
    with pytest.raises(grey.Corrupt):
        grey.Model(junk)
    with pytest.raises(ValueError, match="model format"):
        grey.ModelWriter("onnx")
    with grey.ModelWriter() as writer:
        with pytest.raises(grey.InvalidArgument):
            writer.add_tensor("q", np.zeros(10, dtype=np.uint8), dtype="Q4_0", shape=(1, 32))  # 18 bytes needed
        with pytest.raises(ValueError, match="element type"):
            writer.add_tensor("c", np.zeros(2, dtype=np.complex64))
    with pytest.raises(ValueError, match="closed"):
        writer.write(tmp_path / "x.safetensors")


def test_streamed_writer_gives_the_bytes_of_the_one_shot_writer(tmp_path, model_file):
    path, w32 = model_file
    bias = np.array([1.5, -2.0, 0.25], dtype=np.float16)
    bf = np.array([[0x3F80, 0xC000]], dtype=np.uint16)
    streamed = tmp_path / "streamed.safetensors"
    with grey.ModelWriter("safetensors") as writer:
        writer.set_metadata("origin", "pytest")
        assert writer.declare_tensor("w32", dtype="f32", shape=w32.shape) == 0
        assert writer.declare_tensor("bias", dtype="f16", shape=bias.shape) == 1
        assert writer.declare_tensor("bf", dtype="bf16", shape=bf.shape) == 2
        writer.open(streamed)
        writer.write_tensor(2, bf)
        writer.write_tensor(0, w32[:3])
        writer.write_tensor(0, w32[3:])
        writer.write_tensor(1, bias.tobytes())
        assert not streamed.exists()
        writer.finish()
    assert streamed.read_bytes() == path.read_bytes()
    with grey.Model(streamed) as model:
        for i in range(len(model)):
            model.evict(i)
        np.testing.assert_array_equal(model["w32"].data, w32)


def test_streamed_writer_never_replaces_a_file_unless_asked(tmp_path):
    target = tmp_path / "x.safetensors"
    target.write_bytes(b"precious")
    with grey.ModelWriter() as writer:
        writer.declare_tensor("t", dtype="f32", shape=(2,))
        with pytest.raises(grey.IoError, match="already exists"):
            writer.open(target)
        writer.open(target, replace=True)
        with pytest.raises(grey.InvalidArgument, match="has 0 of its 8 bytes"):
            writer.finish()
        writer.write_tensor(0, np.array([1.0, 2.0], dtype=np.float32))
        writer.finish()
    with grey.Model(target) as model:
        np.testing.assert_array_equal(model["t"].data, [1.0, 2.0])
    unfinished = tmp_path / "unfinished.safetensors"
    with grey.ModelWriter() as writer:
        writer.declare_tensor("t", dtype="f32", shape=(2,))
        writer.open(unfinished)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.safetensors"]
