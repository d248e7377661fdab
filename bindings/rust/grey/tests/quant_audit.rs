// Quantization, model files, the audit log and buffer mapping through the safe crate.
mod common;

use common::TempDir;
use grey::{Calibration, DType, Error, QuantParams, TensorRef};

const FORMATS: [&str; 12] = [
    "int8",
    "int8-token",
    "int4-g32",
    "int4-g64",
    "int4-g128",
    "int4-sym-g128",
    "fp8-e4m3",
    "fp8-e5m2",
    "nf4",
    "q8_0",
    "q4_0",
    "q4_1",
];

/// Deterministic values spread over [-0.5, 0.5), none repeated within a group.
fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

/// A verifier key and a writer key in `dir`.
fn keys(dir: &TempDir) -> (String, String) {
    let (verifier, writer) = (dir.path("audit.key"), dir.path("audit.key.writer"));
    grey::audit_keygen(&grey::KeygenOptions {
        verifier_key: &verifier,
        writer_key: Some(&writer),
        ..Default::default()
    })
    .unwrap();
    (verifier, writer)
}

#[test]
fn format_names_are_libgreys() {
    assert_eq!(grey::quant_formats(), FORMATS);
    for name in FORMATS {
        let p = QuantParams::from_name(name).unwrap();
        assert_eq!(p.calibration, Calibration::Rtn);
        assert_eq!(p.name(), Some(name));
        assert_eq!(p.with_calibration(Calibration::Mse).name(), Some(name));
    }
    let axis1 = QuantParams {
        axis: 1,
        ..QuantParams::from_name("int8").unwrap()
    };
    assert_eq!(axis1.name(), None);
}

#[test]
fn every_format_round_trips_and_measures_itself() {
    let x = values(64 * 256);
    let shape = [64u64, 256];
    for name in FORMATS {
        let q = grey::quantize(TensorRef::f32(&x, &shape), name, Calibration::Rtn).unwrap();
        assert_eq!(
            q.data.len() as u64,
            grey::quant_size(&shape, name).unwrap(),
            "{}",
            name
        );
        let r = &q.report;
        assert_eq!(r.bytes, q.data.len() as u64);
        assert_eq!(r.elements, 64 * 256);
        assert_eq!(r.bits_per_weight, 8.0 * r.bytes as f64 / r.elements as f64);
        assert!(r.rel_rmse > 0.0 && r.rel_rmse < 0.25, "{}: {:?}", name, r);
        let y = q.dequantize_f32().unwrap();
        let again =
            grey::quant_compare(TensorRef::f32(&x, &shape), TensorRef::f32(&y, &shape)).unwrap();
        assert_eq!(
            (again.rel_rmse, again.max_abs_err, again.sqnr_db),
            (r.rel_rmse, r.max_abs_err, r.sqnr_db)
        );
        assert_eq!(q.dequantize(DType::F32).unwrap().len(), x.len() * 4);
        assert_eq!(q.dequantize(DType::BF16).unwrap().len(), x.len() * 2);
    }
    let rtn = grey::quantize(TensorRef::f32(&x, &shape), "int4-g128", Calibration::Rtn).unwrap();
    let mse = grey::quantize(TensorRef::f32(&x, &shape), "int4-g128", Calibration::Mse).unwrap();
    assert_eq!(mse.report.calibration, Calibration::Mse);
    assert!(mse.report.rel_rmse <= rtn.report.rel_rmse);
}

#[test]
fn quantization_errors_carry_libgreys_messages() {
    let x = values(2 * 96);
    let shape = [2u64, 96];
    match grey::quantize(TensorRef::f32(&x, &shape), "int3", Calibration::Rtn) {
        Err(Error::InvalidArgument(m)) => assert_eq!(
            m,
            "unknown quantization format name 'int3'; valid names: int8, int8-token, int4-g32, int4-g64, \
             int4-g128, int4-sym-g128, fp8-e4m3, fp8-e5m2, nf4, q8_0, q4_0, q4_1"
        ),
        other => panic!("{:?}", other.map(|q| q.report)),
    }
    let short = values(2 * 48);
    match grey::quantize(TensorRef::f32(&short, &[2, 48]), "q4_0", Calibration::Rtn) {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.contains("innermost dimension 48 is not a multiple of 32"))
        }
        other => panic!("{:?}", other.map(|q| q.report)),
    }
    let bytes = [0u8; 8];
    assert!(matches!(
        grey::quantize(TensorRef::bytes(DType(4), &[8], &bytes), "int8", Calibration::Rtn),
        Err(Error::InvalidArgument(m)) if m.contains("F32, F16 or BF16")
    ));
    assert!(matches!(
        grey::quantize(
            TensorRef::bytes(DType::F32, &shape, &bytes),
            "int8",
            Calibration::Rtn
        ),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        grey::quant_compare(TensorRef::f32(&x, &shape), TensorRef::f32(&x[..2], &[2])),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(DType::from_name("BF16").unwrap(), DType::BF16);
    assert_eq!(DType::BF16.to_string(), "BF16");
    assert!(DType::from_name("F33").is_err());
}

#[test]
fn model_files_round_trip_and_their_tensors_quantize() {
    let dir = TempDir::new("model");
    let x = values(4 * 64);
    let path = dir.path("small.safetensors");
    let mut writer = grey::ModelWriter::new(grey::ModelFormat::Safetensors).unwrap();
    writer.set_metadata("origin", "cargo test").unwrap();
    writer
        .add_tensor("w", TensorRef::f32(&x, &[4, 64]), 0)
        .unwrap();
    writer.write(&path).unwrap();

    let model = grey::Model::open(&path).unwrap();
    assert_eq!(model.format().unwrap(), grey::ModelFormat::Safetensors);
    assert_eq!(model.len().unwrap(), 1);
    let t = model.get("w").unwrap().expect("tensor w");
    assert_eq!((t.dtype, t.shape.as_slice()), (DType::F32, &[4u64, 64][..]));
    assert_eq!(t.data, TensorRef::f32(&x, &[4, 64]).data);
    let from_file = grey::quantize(t.as_tensor(), "q4_1", Calibration::Rtn).unwrap();
    let from_memory =
        grey::quantize(TensorRef::f32(&x, &[4, 64]), "q4_1", Calibration::Rtn).unwrap();
    assert_eq!(from_file.data, from_memory.data);

    let gguf = dir.path("q.gguf");
    let mut w2 = grey::ModelWriter::new(grey::ModelFormat::Gguf).unwrap();
    w2.copy_metadata(&model).unwrap();
    let q8 = DType::from_name("Q8_0").unwrap();
    let q = grey::quantize(t.as_tensor(), "q8_0", Calibration::Rtn).unwrap();
    w2.add_tensor("w", TensorRef::bytes(q8, &q.shape, &q.data), 0)
        .unwrap();
    w2.write(&gguf).unwrap();
    let back = grey::Model::open(&gguf).unwrap();
    assert_eq!(back.format().unwrap(), grey::ModelFormat::Gguf);
    let bt = back.tensor(0).unwrap();
    assert_eq!((bt.dtype, bt.data), (q8, &q.data[..]));

    assert!(matches!(
        grey::Model::open(&dir.path("missing.gguf")),
        Err(Error::NotFound(_))
    ));
    std::fs::write(dir.path("junk.safetensors"), [0xffu8; 16]).unwrap();
    assert!(matches!(
        grey::Model::open(&dir.path("junk.safetensors")),
        Err(Error::Corrupt(_))
    ));
    assert!(matches!(
        w2.add_tensor("bad", TensorRef::bytes(q8, &[1, 32], &[0u8; 10]), 0),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn audit_log_append_checkpoint_verify_and_tampering() {
    let dir = TempDir::new("audit");
    let (verifier, writer) = keys(&dir);
    assert!(matches!(
        grey::audit_keygen(&grey::KeygenOptions {
            verifier_key: &verifier,
            ..Default::default()
        }),
        Err(Error::InvalidArgument(_))
    ));
    let log_path = dir.path("audit.log");
    let checkpoint = dir.path("cp-1");
    {
        let log = grey::AuditLog::open(&log_path, &writer).unwrap();
        for i in 0..3u64 {
            assert_eq!(
                log.append("run", &format!(r#"{{"value":{}}}"#, 1000 + i))
                    .unwrap(),
                Some(i)
            );
        }
        log.checkpoint(&checkpoint).unwrap();
        let info = log.info().unwrap();
        assert_eq!((info.records, info.pending), (3, 0));
        let report = log.verify(&verifier, &[&checkpoint], None).unwrap();
        assert!(report.intact(), "{:?}", report);
        assert_eq!(
            (
                report.records,
                report.first_bad_record,
                report.bad_checkpoint
            ),
            (3, None, None)
        );
        assert_eq!(
            (report.head_hash, report.log_id),
            (info.head_hash, info.log_id)
        );
        assert_eq!(grey::hex(&report.head_hash).len(), 64);
        assert!(matches!(
            log.append("grey.mine", "{}"),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(log.append("run", "{\0}"), Err(Error::Nul(_))));
        let id = log
            .proof_write(&dir.path("proofs"), r#"{"figure":"rel_rmse"}"#)
            .unwrap();
        let proof = grey::proof_verify(
            &log_path,
            &verifier,
            &dir.path(&format!("proofs/{}.json", id)),
        )
        .unwrap();
        assert!(proof.verified && proof.record == Some(3));
        assert_eq!(
            proof.sha256,
            grey::sha256_file(&dir.path(&format!("proofs/{}.json", id))).unwrap()
        );
    }
    let records = grey::audit_records_json(&log_path, 0, 0).unwrap();
    assert!(
        records.starts_with('[') && records.matches("\"type\"").count() == 4,
        "{}",
        records
    );
    let inclusion = dir.path("inclusion.proof");
    std::fs::write(
        &inclusion,
        grey::audit_prove_inclusion(&log_path, 1, 3).unwrap(),
    )
    .unwrap();
    grey::audit_check_proof(&inclusion, &checkpoint, None, None).unwrap();
    assert!(!grey::audit_prove_consistency(&log_path, 1, 3)
        .unwrap()
        .is_empty());

    let mut bytes = std::fs::read(&log_path).unwrap();
    let at = bytes.windows(4).position(|w| w == b"1001").unwrap();
    bytes[at..at + 4].copy_from_slice(b"9001");
    std::fs::write(&log_path, &bytes).unwrap();
    let report = grey::audit_verify(&log_path, &verifier, &[], None).unwrap();
    assert_eq!(
        (
            report.cause.as_str(),
            report.first_bad_record,
            report.records
        ),
        ("modified", Some(1), 1)
    );
    assert!(matches!(
        grey::audit_verify(&dir.path("missing.log"), &verifier, &[], None),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn batches_append_together_or_not_at_all() {
    let dir = TempDir::new("batch");
    let (verifier, writer) = keys(&dir);
    let log_path = dir.path("a.log");
    let log = grey::AuditLog::builder(&log_path, &writer)
        .epochs(10, 0)
        .open()
        .unwrap();
    assert_eq!(log.append("single", "{}").unwrap(), Some(0));
    let batch = [("run", r#"{"i":0}"#), ("run", r#"{"i":1}"#), ("note", "{}")];
    assert_eq!(log.append_batch(&batch).unwrap(), Some(1));
    assert_eq!(log.append_batch(&[]).unwrap(), None);
    match log.append_batch(&[("run", "{}"), ("run", "{not json")]) {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.starts_with("entry 1: payload is not valid JSON"), "{m}")
        }
        other => panic!("{:?}", other),
    }
    assert!(matches!(
        log.append_batch(&[("run", "{}"); 11]),
        Err(Error::InvalidArgument(_))
    ));
    // 4 + 7 records would outlast the epoch of 10: the key advances before the batch.
    assert_eq!(log.append_batch(&[("late", "{}"); 7]).unwrap(), Some(4));
    for threads in [0, 1, 3] {
        let report =
            grey::audit_verify_with_threads(&log_path, &verifier, &[], None, threads).unwrap();
        assert!(report.intact(), "{:?}", report);
        assert_eq!((report.records, report.last_epoch), (11, 1));
    }
    assert!(matches!(
        grey::audit_verify_with_threads(&log_path, &verifier, &[], None, 257),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn group_commit_queues_records() {
    let dir = TempDir::new("group");
    let (verifier, writer) = keys(&dir);
    let log = grey::AuditLog::builder(&dir.path("a.log"), &writer)
        .group_commit(1000, 60000)
        .open()
        .unwrap();
    assert_eq!(log.append("run", "{}").unwrap(), None);
    assert_eq!(log.info().unwrap().pending, 1);
    log.flush().unwrap();
    assert_eq!(log.info().unwrap().records, 1);
    assert_eq!(log.verify(&verifier, &[], None).unwrap().records, 1);
}

#[test]
fn a_mapping_is_the_buffers_own_memory() {
    let ctx = grey::Context::builder()
        .backends(&["host"])
        .build()
        .unwrap();
    let mut buf = ctx.buffer(0, 64).unwrap();
    buf.write(8, b"libgrey").unwrap();
    {
        let m = buf.map().unwrap();
        assert_eq!(
            (m.kind, m.size, m.vendor_device),
            (grey::MemoryKind::Host, 64, 0)
        );
        assert_eq!(&m.host_bytes().unwrap()[8..15], b"libgrey");
        let again = buf.map().unwrap(); // mappings nest
        assert_eq!(again.address, m.address);
    } // both unmapped here
    buf.write(0, b"x").unwrap(); // &mut again: no mapping is left
    let m = buf.map().unwrap();
    assert_eq!(m.host_bytes().unwrap()[0], b'x');
}

#[test]
fn streamed_writer_gives_the_bytes_of_the_one_shot_writer() {
    let dir = TempDir::new("stream");
    let x = values(2 * 32);
    let one_shot = dir.path("one-shot.safetensors");
    let mut writer = grey::ModelWriter::new(grey::ModelFormat::Safetensors).unwrap();
    writer
        .add_tensor("w", TensorRef::f32(&x, &[2, 32]), 0)
        .unwrap();
    writer.write(&one_shot).unwrap();

    let streamed = dir.path("streamed.safetensors");
    let bytes = TensorRef::f32(&x, &[2, 32]).data.to_vec();
    let mut s = grey::ModelWriter::new(grey::ModelFormat::Safetensors).unwrap();
    assert_eq!(s.declare_tensor("w", DType::F32, &[2, 32], 0).unwrap(), 0);
    s.open(&streamed, false).unwrap();
    s.write_tensor(0, &bytes[..100]).unwrap();
    assert!(matches!(s.finish(), Err(Error::InvalidArgument(_))));
    s.write_tensor(0, &bytes[100..]).unwrap();
    assert!(!std::path::Path::new(&streamed).exists());
    s.finish().unwrap();
    assert_eq!(
        std::fs::read(&streamed).unwrap(),
        std::fs::read(&one_shot).unwrap()
    );

    let mut again = grey::ModelWriter::new(grey::ModelFormat::Safetensors).unwrap();
    again.declare_tensor("w", DType::F32, &[2, 32], 0).unwrap();
    assert!(matches!(again.open(&streamed, false), Err(Error::Io(_))));

    let model = grey::Model::open(&streamed).unwrap();
    model.evict(0).unwrap();
    assert_eq!(model.tensor(0).unwrap().data, &bytes[..]);
}
