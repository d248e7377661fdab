//! The KV cache through the safe wrapper.

#[test]
fn kv_cache_shares_prefixes_and_attends() {
    let ctx = grey::Context::new().unwrap();
    let mut config = grey::KvConfig::new(1, 2, 32, 1 << 20);
    config.tokens_per_block = 4;
    config.window_tokens = 4;
    let cache = ctx.kv_cache(0, config).unwrap();
    let tokens: Vec<i32> = (0..8).collect();
    let k: Vec<f32> = (0..8 * 2 * 32).map(|i| ((i % 11) as f32) * 0.1).collect();
    let v: Vec<f32> = (0..8 * 2 * 32).map(|i| ((i % 13) as f32) * 0.1).collect();
    let a = cache.sequence(1).unwrap();
    let b = cache.sequence(1).unwrap();
    cache.append(a, &tokens, &k, &v).unwrap();
    cache.append(b, &tokens, &k, &v).unwrap();
    let stats = cache.stats().unwrap();
    assert_eq!(stats.prefix_hits, 2);
    assert_eq!(stats.blocks_used, 2);
    let out = cache.attend(0, 4, &[a, b], &vec![0.05f32; 2 * 4 * 32]).unwrap();
    assert_eq!(out[..4 * 32], out[4 * 32..]);
    let (gk, _) = cache.gather(a, 0).unwrap();
    assert_eq!(gk.len(), 8 * 2 * 32);
    let err = cache.free(12345).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    cache.free(a).unwrap();
    assert_eq!(cache.len(b).unwrap(), 8);
}

#[test]
fn kv_cache_takes_a_token_a_layer_at_a_time() {
    let ctx = grey::Context::new().unwrap();
    let mut config = grey::KvConfig::new(2, 1, 32, 1 << 20);
    config.tokens_per_block = 4;
    config.window_tokens = 4;
    let cache = ctx.kv_cache(0, config).unwrap();
    let row = |seed: usize| -> Vec<f32> { (0..32).map(|i| (((i + seed) % 7) as f32) * 0.25).collect() };
    // Two sequences: one appended whole, one written layer by layer; they must end up the same.
    let whole = cache.sequence(1).unwrap();
    let layered = cache.sequence(2).unwrap();
    let (k0, k1, v0, v1) = (row(1), row(2), row(3), row(4));
    let both = |a: &[f32], b: &[f32]| -> Vec<f32> { a.iter().chain(b).copied().collect() };
    cache.append(whole, &[7], &both(&k0, &k1), &both(&v0, &v1)).unwrap();

    assert_eq!(cache.reserve(layered, &[7]).unwrap(), 0);
    let err = cache.reserve(layered, &[8]).unwrap_err();
    assert!(matches!(err, grey::Error::InvalidArgument(_)), "{err}");
    cache.write_layer(layered, 1, &k1, &v1).unwrap();
    assert_eq!(cache.len(layered).unwrap(), 0, "not committed before every layer is written");
    // Layer 1 already sees the reserved token: the same attention as the whole sequence's.
    let q = vec![0.5f32; 32];
    assert_eq!(cache.attend(1, 1, &[layered], &q).unwrap(), cache.attend(1, 1, &[whole], &q).unwrap());
    let err = cache.write_layer(layered, 1, &k1, &v1).unwrap_err();
    assert!(err.to_string().contains("layer 1"), "{err}");
    let err = cache.write_layer(layered, 0, &k0[..16], &v0[..16]).unwrap_err();
    assert!(matches!(err, grey::Error::InvalidArgument(_)), "{err}");
    cache.write_layer(layered, 0, &k0, &v0).unwrap();
    assert_eq!(cache.len(layered).unwrap(), 1);
    assert_eq!(cache.gather(layered, 0).unwrap(), cache.gather(whole, 0).unwrap());
    assert_eq!(cache.gather(layered, 1).unwrap(), cache.gather(whole, 1).unwrap());
}

#[test]
fn kv_cache_hadamard_k_gives_keys_back_unrotated() {
    let ctx = grey::Context::new().unwrap();
    let mut config = grey::KvConfig::new(1, 1, 32, 1 << 20);
    config.tokens_per_block = 4;
    config.window_tokens = u32::MAX;
    config.hadamard_k = true;
    let cache = ctx.kv_cache(0, config).unwrap();
    let k: Vec<f32> = (0..2 * 32).map(|i| ((i % 9) as f32) * 0.5).collect();
    let v: Vec<f32> = (0..2 * 32).map(|i| ((i % 5) as f32) * 0.25).collect();
    let seq = cache.sequence(0).unwrap();
    cache.append(seq, &[1, 2], &k, &v).unwrap();
    let (gk, gv) = cache.gather(seq, 0).unwrap();
    assert_eq!(gv, v, "V is not rotated");
    for (got, want) in gk.iter().zip(&k) {
        assert!((got - want).abs() < 0.03, "{got} vs {want}");
    }
    config.head_dim = 48;
    let err = ctx.kv_cache(0, config).err().expect("head_dim 48 refused");
    assert!(err.to_string().contains("power of two"), "{err}");
}

#[test]
fn kv_cache_attends_with_queries_and_output_in_buffers() {
    let ctx = grey::Context::new().unwrap();
    let mut config = grey::KvConfig::new(1, 2, 32, 1 << 20);
    config.tokens_per_block = 8;
    config.window_tokens = 8;
    let cache = ctx.kv_cache(0, config).unwrap();
    let seq = cache.sequence(0).unwrap();
    let tokens: Vec<i32> = (0..19).collect();
    let k: Vec<f32> = (0..19 * 2 * 32).map(|i| ((i % 11) as f32) * 0.125 - 0.5).collect();
    let v: Vec<f32> = (0..19 * 2 * 32).map(|i| ((i % 13) as f32) * 0.25).collect();
    cache.append(seq, &tokens, &k, &v).unwrap();
    let q: Vec<f32> = (0..4 * 32).map(|i| ((i % 9) as f32) * 0.1).collect();
    let want = cache.attend(0, 4, &[seq], &q).unwrap();
    let bytes: Vec<u8> = q.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut queries = ctx.buffer(0, bytes.len() as u64 + 8).unwrap();
    let mut output = ctx.buffer(0, bytes.len() as u64 + 8).unwrap();
    queries.write(8, &bytes).unwrap();
    cache.attend_buffer(0, 4, &[seq], &queries, 8, &mut output, 0).unwrap();
    let mut got = vec![0u8; bytes.len()];
    output.read(0, &mut got).unwrap();
    let got: Vec<f32> = got.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(got, want);
    let err = cache.attend_buffer(0, 4, &[seq], &queries, 16, &mut output, 0).unwrap_err();
    assert!(err.to_string().contains("queries: range"), "{err}");
    let err = cache.attend_buffer(0, 4, &[seq], &queries, 8, &mut output, 2).unwrap_err();
    assert!(err.to_string().contains("multiple of 4"), "{err}");
}

/// Attention queued on a stream gives `attend_buffer`'s output bit for bit once the stream is
/// synchronized, for both layers queued at once; refused calls, an unknown sequence among them, queue
/// nothing.
#[test]
fn kv_cache_attends_on_a_stream_as_with_buffers() {
    let ctx = grey::Context::new().unwrap();
    let mut config = grey::KvConfig::new(2, 2, 32, 1 << 20);
    config.tokens_per_block = 8;
    config.window_tokens = 8;
    let cache = ctx.kv_cache(0, config).unwrap();
    // Ragged sequences: quantized blocks, the window and a partly filled last block.
    let sequences: Vec<u64> = [1usize, 9, 30]
        .iter()
        .map(|&n| {
            let seq = cache.sequence(0).unwrap();
            let k: Vec<f32> = (0..2 * n * 2 * 32).map(|i| (((i + n) % 11) as f32) * 0.125 - 0.5).collect();
            let v: Vec<f32> = (0..2 * n * 2 * 32).map(|i| (((3 * i + n) % 13) as f32) * 0.25).collect();
            cache.append(seq, &vec![0; n], &k, &v).unwrap();
            seq
        })
        .collect();
    let q: Vec<u8> = (0..3 * 4 * 32).flat_map(|i| (((i % 9) as f32) * 0.1 - 0.3).to_le_bytes()).collect();
    let io = q.len() as u64;
    let mut queries = ctx.buffer(0, io).unwrap();
    queries.write(0, &q).unwrap();
    let mut expected = ctx.buffer(0, 2 * io).unwrap();
    let mut output = ctx.buffer(0, 2 * io).unwrap();
    // Made after the buffers, the stream is dropped before them, and its drop waits for its work: the
    // buffers outlive the queued attention, as attend_async's safety contract asks.
    let stream = ctx.stream(0).unwrap();
    for layer in 0..2u32 {
        let at = u64::from(layer) * io;
        cache.attend_buffer(layer, 4, &sequences, &queries, 0, &mut expected, at).unwrap();
        unsafe { cache.attend_async(layer, 4, &sequences, &queries, 0, &mut output, at, &stream) }.unwrap();
    }
    stream.synchronize().unwrap();
    let (mut want, mut got) = (vec![0u8; 2 * io as usize], vec![0u8; 2 * io as usize]);
    expected.read(0, &mut want).unwrap();
    output.read(0, &mut got).unwrap();
    assert_eq!(got, want);

    output.fill(0, 0xCD, io).unwrap();
    let unknown = [sequences[0], 12345, sequences[2]];
    let err = unsafe { cache.attend_async(0, 4, &unknown, &queries, 0, &mut output, 0, &stream) }.unwrap_err();
    assert!(matches!(err, grey::Error::NotFound(_)) && err.to_string().contains("sequence 12345 does not exist"), "{err}");
    let err = unsafe { cache.attend_async(0, 4, &sequences, &queries, 4, &mut output, 0, &stream) }.unwrap_err();
    assert!(err.to_string().contains("queries: range"), "{err}");
    let other = grey::Context::new().unwrap();
    let foreign = other.stream(0).unwrap();
    let err = unsafe { cache.attend_async(0, 4, &sequences, &queries, 0, &mut output, 0, &foreign) }.unwrap_err();
    assert!(matches!(err, grey::Error::InvalidArgument(_)) && err.to_string().contains("another context"), "{err}");
    stream.synchronize().unwrap();
    output.read(0, &mut got[..io as usize]).unwrap();
    assert!(got[..io as usize].iter().all(|&b| b == 0xCD), "a refused call wrote the output");
}

#[test]
fn kv_cache_appends_from_buffers() {
    let ctx = grey::Context::new().unwrap();
    let mut config = grey::KvConfig::new(2, 2, 32, 1 << 20);
    config.tokens_per_block = 4;
    config.window_tokens = 4;
    let by_array = ctx.kv_cache(0, config).unwrap();
    let by_buffer = ctx.kv_cache(0, config).unwrap();
    let count = 2 * 9 * 2 * 32;
    // BF16 halves of F32 values; the F32 values they stand for go to `append`.
    let halves: Vec<u16> = (0..2 * count).map(|i| ((((i % 23) as f32) * 0.375 - 4.0).to_bits() >> 16) as u16).collect();
    let floats: Vec<f32> = halves.iter().map(|&h| f32::from_bits(u32::from(h) << 16)).collect();
    let tokens: Vec<i32> = (1..10).collect();
    let (a, b) = (by_array.sequence(0).unwrap(), by_buffer.sequence(0).unwrap());
    by_array.append(a, &tokens, &floats[..count], &floats[count..]).unwrap();
    let bytes: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
    let mut input = ctx.buffer(0, bytes.len() as u64 + 2).unwrap();
    input.write(2, &bytes).unwrap();
    let values_at = 2 + 2 * count as u64;
    by_buffer.append_buffer(b, &tokens, grey::DType::BF16, &input, 2, &input, values_at).unwrap();
    for layer in 0..2 {
        assert_eq!(by_array.gather(a, layer).unwrap(), by_buffer.gather(b, layer).unwrap(), "layer {layer}");
    }

    input.write(values_at + 2 * 7, &0x7FC0u16.to_le_bytes()).unwrap(); // values[7]: NaN
    let fresh = by_buffer.sequence(1).unwrap();
    let err = by_buffer.append_buffer(fresh, &tokens, grey::DType::BF16, &input, 2, &input, values_at).unwrap_err();
    assert!(err.to_string().contains("values[7] is not finite"), "{err}");
    assert_eq!(by_buffer.len(fresh).unwrap(), 0);
    let err = by_buffer.append_buffer(fresh, &tokens, grey::DType::BF16, &input, 1, &input, values_at).unwrap_err();
    assert!(err.to_string().contains("multiple of 2"), "{err}");

    // A layer at a time: one reserved token, each layer's K (and, as V, the same) from the buffer.
    by_buffer.reserve(b, &[77]).unwrap();
    for layer in 0..2u32 {
        let at = 2 + 128 * u64::from(layer);
        by_buffer.write_layer_buffer(b, layer, 1, grey::DType::BF16, &input, at, &input, at).unwrap();
    }
    assert_eq!(by_buffer.len(b).unwrap(), 10);
}
