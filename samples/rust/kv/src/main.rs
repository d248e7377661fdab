//! The KV cache: a cache of int4 blocks behind a bf16 window, a 40-token prompt and three decode steps
//! appended to one sequence, a fork that grows on its own while the original is truncated, decode
//! attention over both (4 query heads on 2 KV heads), K/V gathered back and compared with what was
//! appended, and the cache's statistics. `cargo run` in this directory.
//!
//! K, V and queries come from the LCG of samples/rust/quantize, whose values are exact in f32, so every
//! kv sample in samples/ prints the same lines.
use grey::{Context, KvCache, KvConfig, KvFormat};

const LAYERS: u32 = 2;
const KV_HEADS: u32 = 2;
const HEAD_DIM: u32 = 64;
const QUERY_HEADS: u32 = 4;
const ROW: usize = (KV_HEADS * HEAD_DIM) as usize;

/// An LCG whose values are exact in f32, so every language makes the same values.
struct Synthetic {
    state: u32,
}

impl Synthetic {
    fn next(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.state = self.state.wrapping_mul(1664525).wrapping_add(1013904223);
                ((self.state >> 8) as f32 / 16777216.0 - 0.5) / 16.0
            })
            .collect()
    }
}

/// What a sequence was given: layer 0 of every token, `[token][kv_head][head_dim]`.
#[derive(Clone, Default)]
struct Appended {
    keys: Vec<f32>,
    values: Vec<f32>,
}

/// Appends `n` tokens (ids from `first_id`) with fresh K/V, `[layer][token][kv_head][head_dim]`, and
/// records layer 0.
fn append(cache: &KvCache, sequence: u64, first_id: i32, n: usize, synthetic: &mut Synthetic, record: &mut Appended) -> grey::Result<()> {
    let ids: Vec<i32> = (0..n).map(|i| first_id + ((i * 7919) % 30000) as i32).collect();
    let keys = synthetic.next(LAYERS as usize * n * ROW);
    let values = synthetic.next(LAYERS as usize * n * ROW);
    cache.append(sequence, &ids, &keys, &values)?;
    record.keys.extend_from_slice(&keys[..n * ROW]); // layer 0 is the first n rows
    record.values.extend_from_slice(&values[..n * ROW]);
    Ok(())
}

fn max_abs_difference(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0.0, f64::max)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::builder().build()?;
    let mut config = KvConfig::new(LAYERS, KV_HEADS, HEAD_DIM, 1 << 20);
    config.tokens_per_block = 16;
    config.window_tokens = 16;
    config.format = KvFormat::Int4;
    config.group_size = 32;
    let cache = ctx.kv_cache(0, config)?;
    println!(
        "kv cache: {LAYERS} layers, {KV_HEADS} KV heads, head_dim {HEAD_DIM}, blocks of {} tokens, the newest {} in bf16, older ones int4 (V groups of {})",
        config.tokens_per_block, config.window_tokens, config.group_size
    );

    let mut synthetic = Synthetic { state: 12345 };
    let mut a = Appended::default();
    let seq_a = cache.sequence(0)?;
    append(&cache, seq_a, 101, 40, &mut synthetic, &mut a)?; // the prompt
    for step in 0..3 {
        append(&cache, seq_a, 2000 + step, 1, &mut synthetic, &mut a)?;
    }
    println!("kv append: sequence A holds {} tokens (a 40-token prompt, then 3 decode steps)", cache.len(seq_a)?);

    let seq_b = cache.fork(seq_a)?;
    let mut b = a.clone();
    append(&cache, seq_b, 3000, 2, &mut synthetic, &mut b)?;
    cache.truncate(seq_a, 38)?;
    println!("kv fork: sequence B holds {} tokens (A's 43 and 2 of its own), A truncated to {}", cache.len(seq_b)?, cache.len(seq_a)?);

    let queries = synthetic.next(2 * (QUERY_HEADS * HEAD_DIM) as usize);
    let output = cache.attend(1, QUERY_HEADS, &[seq_a, seq_b], &queries)?;
    let (mut sum, mut squares) = (0.0f64, 0.0f64);
    for &x in &output {
        sum += x as f64;
        squares += x as f64 * x as f64;
    }
    println!("kv attend: layer 1, {QUERY_HEADS} query heads on {KV_HEADS} KV heads, batch of A and B: output sum {sum:.6}, sum of squares {squares:.6}");

    let (keys, values) = cache.gather(seq_b, 0)?;
    println!(
        "kv gather: B layer 0, {} tokens: largest difference from what was appended K {:.6}, V {:.6}",
        b.keys.len() / ROW,
        max_abs_difference(&keys, &b.keys),
        max_abs_difference(&values, &b.values)
    );

    let s = cache.stats()?;
    println!(
        "kv stats: {} sequences, {} tokens, {} blocks ({} quantized), {} bytes, {:.2} bytes per token, compression ratio {:.4}",
        s.sequences, s.tokens, s.blocks_used, s.blocks_compressed, s.bytes_used, s.bytes_per_token, s.compression_ratio
    );

    cache.free(seq_a)?;
    cache.free(seq_b)?;
    let s = cache.stats()?;
    println!("kv free: {} sequences, {} full blocks kept as cached prefixes", s.sequences, s.blocks_cached);
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("kv: {e}");
        std::process::exit(1);
    }
}
