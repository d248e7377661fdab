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
