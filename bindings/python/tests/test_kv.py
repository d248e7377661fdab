"""The KV cache through the raw binding (grey.capi): arrays go in as host addresses."""
import numpy as np
import pytest

import grey
from grey import capi


@pytest.fixture
def cache():
    with grey.Context() as context:
        config = capi.grey_kv_cache_config()
        config.layers, config.kv_heads, config.head_dim = 1, 2, 32
        config.tokens_per_block, config.window_tokens = 8, 4
        config.window_dtype, config.format = capi.GREY_DTYPE_BF16, capi.GREY_KV_INT8
        config.capacity_bytes = 1 << 20
        handle = capi.grey_kv_cache_create(context._get_handle(), 0, config)
        try:
            yield handle
        finally:
            capi.grey_kv_cache_destroy(handle)


def test_append_attend_and_stats(cache):
    seq = capi.grey_kv_sequence_create(cache, 7)
    rng = np.random.default_rng(0)
    n = 16
    tokens = np.arange(n, dtype=np.int32)
    k = rng.standard_normal((1, n, 2, 32), dtype=np.float32)
    v = rng.standard_normal((1, n, 2, 32), dtype=np.float32)
    capi.grey_kv_append(cache, seq, tokens.ctypes.data, n, capi.GREY_DTYPE_F32, k.ctypes.data, v.ctypes.data, k.nbytes)
    assert capi.grey_kv_sequence_length(cache, seq) == n

    params = capi.grey_kv_attend_params()
    params.query_heads = 4
    seqs = np.array([seq], dtype=np.uint64)
    q = rng.standard_normal((1, 4, 32), dtype=np.float32)
    out = np.zeros_like(q)
    capi.grey_kv_attend(cache, params, seqs.ctypes.data, 1, q.ctypes.data, out.ctypes.data, q.nbytes)

    gk, gv = np.zeros((n, 2, 32), np.float32), np.zeros((n, 2, 32), np.float32)
    capi.grey_kv_gather(cache, seq, 0, gk.ctypes.data, gv.ctypes.data, gk.nbytes)
    for h in range(4):
        scores = gk[:, h // 2, :].astype(np.float64) @ q[0, h].astype(np.float64) / np.sqrt(32.0)
        w = np.exp(scores - scores.max())
        expected = (w / w.sum()) @ gv[:, h // 2, :].astype(np.float64)
        np.testing.assert_allclose(out[0, h], expected, rtol=1e-5, atol=1e-6)

    stats = capi.grey_kv_stats()
    capi.grey_kv_cache_stats_get(cache, stats)
    assert stats.tokens == n and stats.blocks_compressed == 1 and stats.compression_ratio > 1.0


def test_unknown_sequence_raises(cache):
    with pytest.raises(grey.Error, match="does not exist"):
        capi.grey_kv_sequence_free(cache, 12345)
