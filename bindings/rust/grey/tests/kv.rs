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
