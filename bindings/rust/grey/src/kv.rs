//! The KV cache: paged, quantized keys and values of many sequences, with prefix sharing and decode
//! attention on what is stored (docs/kv.md). Host device only for now.

use crate::{check, Buffer, Context, DType, Result, Stream};
use grey_sys as sys;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// The form of blocks older than the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvFormat {
    Int8,
    Int4,
    Int2,
    Fp8E4m3,
}

/// A cache's shape and policy; `KvConfig::new` gives the defaults of `GREY_KV_CACHE_CONFIG_INIT`.
#[derive(Debug, Clone, Copy)]
pub struct KvConfig {
    pub layers: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub tokens_per_block: u32,
    /// Tokens kept in bf16; `u32::MAX` keeps all.
    pub window_tokens: u32,
    pub format: KvFormat,
    pub group_size: u32,
    pub capacity_bytes: u64,
    /// Rotate K before quantizing (`GREY_KV_HADAMARD_K`; head_dim a power of two).
    pub hadamard_k: bool,
}

impl KvConfig {
    pub fn new(layers: u32, kv_heads: u32, head_dim: u32, capacity_bytes: u64) -> Self {
        KvConfig { layers, kv_heads, head_dim, tokens_per_block: 16, window_tokens: 128, format: KvFormat::Int4, group_size: 32, capacity_bytes, hadamard_k: false }
    }
}

/// What a cache holds (grey_kv_stats).
pub type KvStats = sys::grey_kv_stats;

/// A KV cache borrowed from its context, freed on drop. Calls are serialised by the cache.
pub struct KvCache<'ctx> {
    raw: NonNull<sys::grey_kv_cache>,
    config: KvConfig,
    context: PhantomData<&'ctx Context>,
}

unsafe impl Send for KvCache<'_> {}
unsafe impl Sync for KvCache<'_> {}

impl Context {
    /// A new KV cache on `device` (the host device).
    pub fn kv_cache(&self, device: u32, config: KvConfig) -> Result<KvCache<'_>> {
        let raw_config = sys::grey_kv_cache_config {
            struct_size: std::mem::size_of::<sys::grey_kv_cache_config>() as u32,
            layers: config.layers,
            kv_heads: config.kv_heads,
            head_dim: config.head_dim,
            tokens_per_block: config.tokens_per_block,
            window_tokens: config.window_tokens,
            window_dtype: sys::GREY_DTYPE_BF16,
            format: match config.format {
                KvFormat::Int8 => sys::GREY_KV_INT8,
                KvFormat::Int4 => sys::GREY_KV_INT4,
                KvFormat::Int2 => sys::GREY_KV_INT2,
                KvFormat::Fp8E4m3 => sys::GREY_KV_FP8_E4M3,
            },
            group_size: config.group_size,
            flags: if config.hadamard_k { sys::GREY_KV_HADAMARD_K } else { 0 },
            capacity_bytes: config.capacity_bytes,
        };
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_kv_cache_create(self.raw(), device, &raw_config, &mut raw) })?;
        Ok(KvCache { raw: NonNull::new(raw).expect("grey_kv_cache_create returned OK and NULL"), config, context: PhantomData })
    }
}

impl KvCache<'_> {
    /// A new empty sequence of tenant `salt`.
    pub fn sequence(&self, salt: u64) -> Result<u64> {
        let mut id = 0;
        check(unsafe { sys::grey_kv_sequence_create(self.raw.as_ptr(), salt, &mut id) })?;
        Ok(id)
    }

    /// A copy-on-write fork of `sequence`.
    pub fn fork(&self, sequence: u64) -> Result<u64> {
        let mut id = 0;
        check(unsafe { sys::grey_kv_sequence_fork(self.raw.as_ptr(), sequence, &mut id) })?;
        Ok(id)
    }

    pub fn truncate(&self, sequence: u64, tokens: u64) -> Result<()> {
        check(unsafe { sys::grey_kv_sequence_truncate(self.raw.as_ptr(), sequence, tokens) })
    }

    pub fn free(&self, sequence: u64) -> Result<()> {
        check(unsafe { sys::grey_kv_sequence_free(self.raw.as_ptr(), sequence) })
    }

    pub fn len(&self, sequence: u64) -> Result<u64> {
        let mut n = 0;
        check(unsafe { sys::grey_kv_sequence_length(self.raw.as_ptr(), sequence, &mut n) })?;
        Ok(n)
    }

    /// Appends `tokens` with their K and V of every layer, `[layer][token][kv_head][head_dim]`.
    pub fn append(&self, sequence: u64, tokens: &[i32], keys: &[f32], values: &[f32]) -> Result<()> {
        if keys.len() != values.len() {
            return Err(crate::Error::InvalidArgument("keys and values differ in length".into()));
        }
        let n = u32::try_from(tokens.len()).map_err(|_| crate::Error::InvalidArgument("too many tokens".into()))?;
        check(unsafe {
            sys::grey_kv_append(self.raw.as_ptr(), sequence, tokens.as_ptr(), n, sys::GREY_DTYPE_F32, keys.as_ptr().cast(),
                                values.as_ptr().cast(), std::mem::size_of_val(keys) as u64)
        })
    }

    /// `append` with K and V, `[layer][token][kv_head][head_dim]` of `dtype` (F32, F16 or BF16), in buffers
    /// of the cache's device at the given byte offsets (multiples of the dtype's size), where they are
    /// read. A NaN or infinity fails naming it, and appends nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn append_buffer(
        &self,
        sequence: u64,
        tokens: &[i32],
        dtype: DType,
        keys: &Buffer<'_>,
        keys_offset: u64,
        values: &Buffer<'_>,
        values_offset: u64,
    ) -> Result<()> {
        let n = u32::try_from(tokens.len()).map_err(|_| crate::Error::InvalidArgument("too many tokens".into()))?;
        let kv_bytes = self.input_bytes(u64::from(self.config.layers) * u64::from(n), dtype)?;
        check(unsafe {
            sys::grey_kv_append_buffer(self.raw.as_ptr(), sequence, tokens.as_ptr(), n, dtype.0, keys.raw(), keys_offset, values.raw(),
                                       values_offset, kv_bytes)
        })
    }

    /// Reserves `tokens` positions at the end of `sequence` for a model that computes its layers one
    /// after another; their K and V then go in a layer at a time with [`KvCache::write_layer`]. Returns
    /// how many leading tokens were found whole in the prefix cache (their K/V are already stored).
    pub fn reserve(&self, sequence: u64, tokens: &[i32]) -> Result<u32> {
        let n = u32::try_from(tokens.len()).map_err(|_| crate::Error::InvalidArgument("too many tokens".into()))?;
        let mut cached = 0u32;
        check(unsafe { sys::grey_kv_reserve(self.raw.as_ptr(), sequence, tokens.as_ptr(), n, &mut cached) })?;
        Ok(cached)
    }

    /// Writes `layer` of the reserved tokens, `[token][kv_head][head_dim]` each; the last layer written
    /// commits them to the sequence.
    pub fn write_layer(&self, sequence: u64, layer: u32, keys: &[f32], values: &[f32]) -> Result<()> {
        if keys.len() != values.len() {
            return Err(crate::Error::InvalidArgument("keys and values differ in length".into()));
        }
        check(unsafe {
            sys::grey_kv_write_layer(self.raw.as_ptr(), sequence, layer, sys::GREY_DTYPE_F32, keys.as_ptr().cast(), values.as_ptr().cast(),
                                     std::mem::size_of_val(keys) as u64)
        })
    }

    /// `write_layer` with K and V, `[token][kv_head][head_dim]` of `dtype` for the `tokens` reserved
    /// tokens, in buffers of the cache's device, taken as [`KvCache::append_buffer`] takes them.
    #[allow(clippy::too_many_arguments)]
    pub fn write_layer_buffer(
        &self,
        sequence: u64,
        layer: u32,
        tokens: u32,
        dtype: DType,
        keys: &Buffer<'_>,
        keys_offset: u64,
        values: &Buffer<'_>,
        values_offset: u64,
    ) -> Result<()> {
        let kv_bytes = self.input_bytes(u64::from(tokens), dtype)?;
        check(unsafe {
            sys::grey_kv_write_layer_buffer(self.raw.as_ptr(), sequence, layer, dtype.0, keys.raw(), keys_offset, values.raw(), values_offset,
                                            kv_bytes)
        })
    }

    /// The bytes of K (or of V) of `rows` token rows of `dtype` (2 bytes a value for the half types;
    /// libgrey refuses the others).
    fn input_bytes(&self, rows: u64, dtype: DType) -> Result<u64> {
        let size = if dtype == DType::F16 || dtype == DType::BF16 { 2 } else { 4 };
        rows.checked_mul(u64::from(self.config.kv_heads) * u64::from(self.config.head_dim) * size)
            .ok_or_else(|| crate::Error::InvalidArgument("the K/V size overflows 64 bits".into()))
    }

    /// Decode attention of `layer` for `sequences`; `queries` is `[batch][query_heads][head_dim]`.
    pub fn attend(&self, layer: u32, query_heads: u32, sequences: &[u64], queries: &[f32]) -> Result<Vec<f32>> {
        let (params, batch) = attend_call(layer, query_heads, sequences)?;
        let mut out = vec![0f32; queries.len()];
        check(unsafe {
            sys::grey_kv_attend(self.raw.as_ptr(), &params, sequences.as_ptr(), batch, queries.as_ptr(), out.as_mut_ptr(),
                                std::mem::size_of_val(queries) as u64)
        })?;
        Ok(out)
    }

    /// `attend` with the queries and the output in buffers of the cache's device, where they stay: f32
    /// `[batch][query_heads][head_dim]` at the given byte offsets (multiples of 4). The output is
    /// written when it returns.
    #[allow(clippy::too_many_arguments)]
    pub fn attend_buffer(
        &self,
        layer: u32,
        query_heads: u32,
        sequences: &[u64],
        queries: &Buffer<'_>,
        queries_offset: u64,
        output: &mut Buffer<'_>,
        output_offset: u64,
    ) -> Result<()> {
        let (params, batch) = attend_call(layer, query_heads, sequences)?;
        let io_bytes = self.attend_io_bytes(query_heads, sequences)?;
        check(unsafe {
            sys::grey_kv_attend_buffer(self.raw.as_ptr(), &params, sequences.as_ptr(), batch, queries.raw(), queries_offset, output.raw(),
                                       output_offset, io_bytes)
        })
    }

    /// [`KvCache::attend_buffer`] queued on `stream` (a stream of the cache's context and device) behind
    /// the work already there: it returns once the work is queued, and `output` is written when the
    /// stream reaches it, in order with the stream's other work (another library's, on a stream from
    /// [`Context::wrap_stream`]) without a wait on the host. What each sequence holds is taken at the
    /// call: tokens appended later are not attended to, and the cache keeps the blocks the work reads
    /// until the stream has passed it (dropping the cache waits for it). Argument errors, an unknown
    /// sequence among them, are returned here with nothing queued; a failure of the work is returned by
    /// [`Stream::synchronize`]. `output` is borrowed mutably, as by `attend_buffer`, so that nothing
    /// else borrows it (a [`Mapping`](crate::Mapping) of it, say) when the work is queued; the borrow
    /// ends when the call returns, so the rest is the caller's promise below.
    ///
    /// # Safety
    /// As for the stream's other async calls: `queries` and `output` must stay alive until the stream
    /// reaches the work ([`Stream::synchronize`], or an [`Event`](crate::Event) recorded after this
    /// call); dropping the stream waits for its work, so a stream dropped before the buffers is enough.
    /// Until then `queries` must not be written, nor `output` read, written or mapped, other than by
    /// work queued after this call on the same stream. No host memory is used after the call returns:
    /// `sequences` is read during it.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn attend_async(
        &self,
        layer: u32,
        query_heads: u32,
        sequences: &[u64],
        queries: &Buffer<'_>,
        queries_offset: u64,
        output: &mut Buffer<'_>,
        output_offset: u64,
        stream: &Stream<'_>,
    ) -> Result<()> {
        let (params, batch) = attend_call(layer, query_heads, sequences)?;
        let io_bytes = self.attend_io_bytes(query_heads, sequences)?;
        check(sys::grey_kv_attend_async(self.raw.as_ptr(), &params, sequences.as_ptr(), batch, queries.raw(), queries_offset, output.raw(),
                                        output_offset, io_bytes, stream.raw()))
    }

    /// The bytes of the queries (and of the output) of an attention call: f32
    /// `[sequences][query_heads][head_dim]`.
    fn attend_io_bytes(&self, query_heads: u32, sequences: &[u64]) -> Result<u64> {
        (sequences.len() as u64)
            .checked_mul(u64::from(query_heads) * u64::from(self.config.head_dim) * 4)
            .ok_or_else(|| crate::Error::InvalidArgument("the query size overflows 64 bits".into()))
    }

    /// The stored K and V of `layer` of `sequence`, dequantized, `[token][kv_head][head_dim]`.
    pub fn gather(&self, sequence: u64, layer: u32) -> Result<(Vec<f32>, Vec<f32>)> {
        let n = self.len(sequence)? as usize * self.config.kv_heads as usize * self.config.head_dim as usize;
        let (mut k, mut v) = (vec![0f32; n], vec![0f32; n]);
        check(unsafe { sys::grey_kv_gather(self.raw.as_ptr(), sequence, layer, k.as_mut_ptr(), v.as_mut_ptr(), (n * 4) as u64) })?;
        Ok((k, v))
    }

    pub fn stats(&self) -> Result<KvStats> {
        let mut stats: KvStats = unsafe { std::mem::zeroed() };
        stats.struct_size = std::mem::size_of::<KvStats>() as u32;
        check(unsafe { sys::grey_kv_cache_stats_get(self.raw.as_ptr(), &mut stats) })?;
        Ok(stats)
    }
}

/// The parameters and batch size of an attention call on `layer` (no sliding window, the default scale).
fn attend_call(layer: u32, query_heads: u32, sequences: &[u64]) -> Result<(sys::grey_kv_attend_params, u32)> {
    let params = sys::grey_kv_attend_params {
        struct_size: std::mem::size_of::<sys::grey_kv_attend_params>() as u32,
        layer,
        query_heads,
        sliding_window: 0,
        scale: 0.0,
        reserved0: 0,
    };
    let batch = u32::try_from(sequences.len()).map_err(|_| crate::Error::InvalidArgument("batch too large".into()))?;
    Ok((params, batch))
}

impl Drop for KvCache<'_> {
    fn drop(&mut self) {
        unsafe { sys::grey_kv_cache_destroy(self.raw.as_ptr()) }
    }
}
