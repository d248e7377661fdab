//! Streams, events and an async quantization: one stream uploads a tensor, a second waits for it through
//! an event, quantizes it to q4_0 in four row blocks, checksums and reads the result back, all before
//! one synchronize; then a NaN input fails at synchronize with the synchronous call's message.
//! `cargo run [-- DEVICE]` in this directory.
//!
//! DEVICE (default 0, the host) is the device the streams run on. The input is the synthetic 256 x 512
//! tensor of samples/rust/quantize; every async sample in samples/ prints the same lines.
use grey::{Calibration, Context, DType, Error, TensorRef};

const ROWS: u64 = 256;
const COLS: u64 = 512;
const BLOCKS: u64 = 4;

/// An LCG whose values are exact in f32, so every language makes the same tensor.
fn synthetic(n: usize) -> Vec<f32> {
    let mut state: u32 = 12345;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            ((state >> 8) as f32 / 16777216.0 - 0.5) / 16.0
        })
        .collect()
}

fn run(device: u32) -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::builder().build()?;
    let shape = [ROWS, COLS];
    let block_shape = [ROWS / BLOCKS, COLS];
    let mut values = synthetic((ROWS * COLS) as usize);
    let expected = grey::quantize(TensorRef::f32(&values, &shape), "q4_0", Calibration::Rtn)?;
    let block_bytes = grey::quant_size(&block_shape, "q4_0")?;
    let plain_bytes = ROWS * COLS * 4;
    let packed_bytes = expected.data.len() as u64;

    // Host memory the streams use after the calls return: pinned where the device can pin.
    let mut host = ctx.host_memory(device, (plain_bytes + packed_bytes) as usize)?;
    for (bytes, v) in host.as_mut_slice().chunks_exact_mut(4).zip(&values) {
        bytes.copy_from_slice(&v.to_ne_bytes());
    }
    let plain = ctx.buffer(device, plain_bytes)?;
    let quantized = ctx.buffer(device, packed_bytes)?;
    let upload = ctx.stream(device)?;
    let work = ctx.stream(device)?;
    let uploaded = ctx.event(device)?;
    let mut checksum = 0u64;
    let (source, packed) = host.as_mut_slice().split_at_mut(plain_bytes as usize);
    // Safety: the host memory, `checksum` and the buffers outlive the synchronizes below, and nothing
    // touches them before.
    unsafe {
        upload.write_async(&plain, 0, source)?;
        uploaded.record(&upload)?;
        work.wait(&uploaded)?;
        for i in 0..BLOCKS {
            work.quantize_async(
                &plain,
                i * plain_bytes / BLOCKS,
                DType::F32,
                &block_shape,
                "q4_0",
                &quantized,
                i * block_bytes,
            )?;
        }
        work.checksum_async(&quantized, 0, packed_bytes, &mut checksum)?;
        work.read_async(&quantized, 0, packed)?;
    }
    work.synchronize()?;
    upload.synchronize()?;
    if &packed[..] != expected.data.as_slice() {
        return Err("the async quantization differs from the synchronous one".into());
    }
    println!("async input: synthetic [{}, {}] F32", ROWS, COLS);
    println!(
        "async q4_0: {} quantizations of [{}, {}] on 2 streams, {} bytes, checksum {:016x}, equal to the synchronous call",
        BLOCKS,
        ROWS / BLOCKS,
        COLS,
        packed_bytes,
        checksum
    );

    // A NaN input: the failure arrives at synchronize, in the words of the synchronous call.
    values[5] = f32::NAN;
    source[20..24].copy_from_slice(&f32::NAN.to_ne_bytes());
    unsafe { upload.write_async(&plain, 0, source)? };
    upload.synchronize()?;
    let synchronous = grey::quantize(TensorRef::f32(&values, &shape), "q4_0", Calibration::Rtn);
    unsafe {
        work.quantize_async(&plain, 0, DType::F32, &block_shape, "q4_0", &quantized, 0)?;
    }
    match (synchronous, work.synchronize()) {
        (Err(Error::InvalidArgument(expected)), Err(Error::InvalidArgument(got))) if got == expected => {
            println!("async nan: refused at synchronize with the synchronous call's message")
        }
        (synchronous, later) => {
            return Err(format!(
                "a NaN input gave {:?} at synchronize, {:?} synchronously",
                later,
                synchronous.err()
            )
            .into())
        }
    }
    Ok(())
}

fn main() {
    let device = match std::env::args().nth(1).map(|d| d.parse::<u32>()) {
        None => 0,
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            eprintln!("async: DEVICE must be a number: {}", e);
            std::process::exit(2);
        }
    };
    if let Err(err) = run(device) {
        eprintln!("async: {}", err);
        std::process::exit(1);
    }
}
