use grey::{Context, Error};

#[test]
fn streams_order_work_and_events_order_streams() {
    let ctx = Context::builder().backends(&["host"]).build().unwrap();
    let size = 1usize << 16;
    let buffer = ctx.buffer(0, size as u64).unwrap();
    let copy = ctx.buffer(0, size as u64).unwrap();
    let mut host = ctx.host_memory(0, size).unwrap();
    for (i, b) in host.as_mut_slice().iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    let producer = ctx.stream(0).unwrap();
    let consumer = ctx.stream(0).unwrap();
    let ready = ctx.event(0).unwrap();
    let mut out = vec![0u8; size];
    let mut sum = 0u64;
    unsafe {
        producer.write_async(&buffer, 0, host.as_slice()).unwrap();
        producer
            .copy_async(&copy, 0, &buffer, 0, size as u64)
            .unwrap();
        producer.fill_async(&copy, 0, 0x5A, 16).unwrap();
    }
    ready.record(&producer).unwrap();
    consumer.wait(&ready).unwrap();
    unsafe {
        consumer.read_async(&copy, 0, &mut out).unwrap();
        consumer
            .checksum_async(&copy, 0, size as u64, &mut sum)
            .unwrap();
    }
    consumer.synchronize().unwrap();
    let mut want = host.as_slice().to_vec();
    want[..16].fill(0x5A);
    assert_eq!(out, want);
    let expected = want.iter().enumerate().fold(0u64, |acc, (i, &b)| {
        acc.wrapping_add(
            (b as u64 + 1).wrapping_mul(
                (i as u64)
                    .wrapping_mul(0x9E3779B97F4A7C15)
                    .wrapping_add(0xD6E8FEB86659FD93),
            ),
        )
    });
    assert_eq!(sum, expected);
    assert!(ready.query().unwrap());
    assert_eq!(ready.elapsed_ms(&ready).unwrap(), 0.0);
    assert!(consumer.query().unwrap());
}

#[test]
fn streams_refuse_bad_input() {
    let ctx = Context::builder().backends(&["host"]).build().unwrap();
    let buffer = ctx.buffer(0, 64).unwrap();
    let stream = ctx.stream(0).unwrap();
    let data = [0u8; 100];
    match unsafe { stream.write_async(&buffer, 0, &data) } {
        Err(Error::InvalidArgument(message)) => {
            assert!(message.contains("lies outside the buffer"), "{}", message)
        }
        other => panic!("an out-of-range write: {:?}", other),
    }
    let never = ctx.event(0).unwrap();
    assert!(matches!(
        never.synchronize(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(ctx.stream(99), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        ctx.host_memory(0, 0),
        Err(Error::InvalidArgument(_))
    ));
    stream.synchronize().unwrap();
}

#[test]
fn quantize_async_gives_the_synchronous_bytes_and_nan_at_synchronize() {
    let ctx = Context::builder().backends(&["host"]).build().unwrap();
    let shape = [4u64, 256];
    let mut values: Vec<f32> = (0..1024).map(|i| (i % 97) as f32 * 0.125 - 4.0).collect();
    let want = grey::quantize(
        grey::TensorRef::f32(&values, &shape),
        "q4_0",
        grey::Calibration::Rtn,
    )
    .unwrap();
    let source = ctx.buffer(0, 4096).unwrap();
    let destination = ctx.buffer(0, want.data.len() as u64).unwrap();
    let stream = ctx.stream(0).unwrap();
    let plain: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut got = vec![0u8; want.data.len()];
    unsafe {
        stream.write_async(&source, 0, &plain).unwrap();
        stream
            .quantize_async(&source, 0, grey::DType::F32, &shape, "q4_0", &destination, 0)
            .unwrap();
        stream.read_async(&destination, 0, &mut got).unwrap();
    }
    stream.synchronize().unwrap();
    assert_eq!(got, want.data);
    values[10] = f32::NAN;
    let bad: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    unsafe {
        stream.write_async(&source, 0, &bad).unwrap();
        stream
            .quantize_async(&source, 0, grey::DType::F32, &shape, "q4_0", &destination, 0)
            .unwrap();
    }
    match stream.synchronize() {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("element 10 is NaN"), "{message}"),
        other => panic!("synchronize after a NaN input: {other:?}"),
    }
}

#[test]
fn host_streams_have_no_native_handle() {
    let ctx = Context::builder().backends(&["host"]).build().unwrap();
    let stream = ctx.stream(0).unwrap();
    match stream.native_handle() {
        Err(Error::Unsupported(message)) => assert!(message.contains("no native streams"), "{message}"),
        other => panic!("native_handle on the host device: {other:?}"),
    }
}

#[test]
fn host_device_has_no_native_stream_to_wrap() {
    let ctx = Context::builder().backends(&["host"]).build().unwrap();
    let wrapped = unsafe { ctx.wrap_stream(0, grey::MemoryKind::CudaDevice, 1) };
    match wrapped {
        Err(Error::Unsupported(message)) => assert!(message.contains("device 0 of backend 'host' has no native streams to wrap"), "{message}"),
        other => panic!("wrap_stream on the host device: {:?}", other.map(|_| ())),
    }
}

#[test]
fn map_async_maps_a_raw_buffer_at_once_and_refuses_a_foreign_stream() {
    let ctx = Context::builder().backends(&["host"]).build().unwrap();
    let data = b"layer by layer through the working set";
    let mut buffer = ctx.buffer(0, data.len() as u64).unwrap();
    buffer.write(0, data).unwrap();
    let stream = ctx.stream(0).unwrap();
    let mapping = unsafe { stream.map_async(&buffer, false) }.unwrap();
    stream.synchronize().unwrap();
    assert_ne!(mapping.address, 0);
    assert_eq!(mapping.host_bytes().unwrap(), &data[..]);
    let direct = buffer.map().unwrap();
    assert_eq!(direct.address, mapping.address);
    drop(direct);
    drop(mapping);
    let other = Context::builder().backends(&["host"]).build().unwrap();
    let foreign = other.stream(0).unwrap();
    let err = unsafe { foreign.map_async(&buffer, false) }.err().unwrap();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("another context"), "{err}");
}
