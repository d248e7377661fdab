// grey::quantize_model and grey::dequantize_model: the policy's reasons in the report, its overrides,
// the errors, and the round trip back to full precision.
mod common;

use common::TempDir;
use grey::{
    Calibration, DType, Error, Model, ModelFormat, ModelQuantOptions, ModelWriter, TensorRef,
};

const TENSORS: [(&str, &[u64]); 6] = [
    ("embed_tokens.weight", &[16, 64]),
    ("conv_in.weight", &[8, 3, 3, 3]),
    ("layers.0.q.weight", &[64, 64]),
    ("layers.0.norm.weight", &[64]),
    ("layers.0.out.weight", &[32, 64]),
    ("conv_out.weight", &[4, 8, 1, 1]),
];

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7 + seed) % 23) as f32 - 11.0) / 16.0)
        .collect()
}

fn write_model(path: &str) {
    let mut writer = ModelWriter::new(ModelFormat::Safetensors).unwrap();
    for (i, (name, shape)) in TENSORS.iter().enumerate() {
        let n = shape.iter().product::<u64>() as usize;
        let v = values(n, i);
        writer
            .add_tensor(name, TensorRef::f32(&v, shape), 0)
            .unwrap();
    }
    writer.write(path).unwrap();
}

#[test]
fn report_lists_every_tensor_with_its_reason() {
    let dir = TempDir::new("model-quant-report");
    let model = dir.path("m.safetensors");
    write_model(&model);
    let report =
        grey::quantize_model(&model, None, "int4-g64", &ModelQuantOptions::default()).unwrap();
    for expected in [
        r#""name": "layers.0.q.weight",
      "format": "int4-g64""#,
        r#""name": "embed_tokens.weight""#,
        r#""reason": "embedding (critical layer)""#,
        r#""reason": "first convolution (critical layer)""#,
        r#""reason": "last convolution (critical layer)""#,
        r#""reason": "one-dimensional (bias or norm)""#,
    ] {
        assert!(report.contains(expected), "{expected} not in {report}");
    }
    let options = ModelQuantOptions {
        calibration: Calibration::Mse,
        keep: vec![r"\.out\.".into()],
        quantize: vec!["^embed".into()],
        formats: vec![("^layers".into(), "int8".into())],
        ..Default::default()
    };
    let overridden = grey::quantize_model(&model, None, "int4-g64", &options).unwrap();
    assert!(
        overridden.contains(r#""reason": "matches keep pattern '\\.out\\.'""#),
        "{overridden}"
    );
    assert!(
        overridden.contains(
            r#""name": "layers.0.q.weight",
      "format": "int8""#
        ),
        "{overridden}"
    );
    assert!(
        !overridden.contains("embedding (critical layer)"),
        "{overridden}"
    );
}

#[test]
fn bad_patterns_and_empty_runs_are_errors() {
    let dir = TempDir::new("model-quant-errors");
    let model = dir.path("m.safetensors");
    write_model(&model);
    let bad = ModelQuantOptions {
        keep: vec!["(".into()],
        ..Default::default()
    };
    match grey::quantize_model(&model, None, "int8", &bad) {
        Err(Error::InvalidArgument(m)) => assert!(
            m.contains("keep pattern '(' is not a valid regular expression"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    let out = dir.path("out.safetensors");
    let empty = ModelQuantOptions {
        keep: vec!["^layers".into()],
        ..Default::default()
    };
    match grey::quantize_model(&model, Some(&out), "int8", &empty) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("nothing to quantize"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(!std::path::Path::new(&out).exists());
    let allowed = ModelQuantOptions {
        keep: vec!["^layers".into()],
        allow_empty: true,
        ..Default::default()
    };
    assert!(grey::quantize_model(&model, Some(&out), "int8", &allowed)
        .unwrap()
        .contains(r#""tensors": []"#));
}

#[test]
fn dequantize_round_trip() {
    let dir = TempDir::new("model-dequant");
    let model = dir.path("m.safetensors");
    write_model(&model);
    let (quantized, restored) = (dir.path("q.gguf"), dir.path("r.safetensors"));
    let all = ModelQuantOptions {
        quantize_critical: true,
        ..Default::default()
    };
    grey::quantize_model(&model, Some(&quantized), "int8", &all).unwrap();
    grey::dequantize_model(&quantized, &restored, DType::F32, false).unwrap();
    let back = Model::open(&restored).unwrap();
    for (i, (name, shape)) in TENSORS.iter().enumerate() {
        let v = values(shape.iter().product::<u64>() as usize, i);
        let t = back.get(name).unwrap().unwrap();
        assert_eq!(&t.shape, shape);
        let expected: Vec<u8> = if shape.len() >= 2 {
            grey::quantize(TensorRef::f32(&v, shape), "int8", Calibration::Rtn)
                .unwrap()
                .dequantize(DType::F32)
                .unwrap()
        } else {
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        };
        assert_eq!(t.data, &expected[..], "{name}");
    }
    match grey::dequantize_model(&model, &dir.path("x.safetensors"), DType::F32, false) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("nothing to dequantize"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn progress_reports_every_tensor_and_stops() {
    use std::cell::RefCell;
    let dir = TempDir::new("model-quant-progress");
    let model = dir.path("m.safetensors");
    write_model(&model);
    let calls = RefCell::new(Vec::new());
    let record = |done: u64, total: u64, name: &str| {
        calls.borrow_mut().push((done, total, name.to_string()));
        false
    };
    let options = ModelQuantOptions {
        progress: Some(&record),
        ..Default::default()
    };
    let quantized = dir.path("q.safetensors");
    grey::quantize_model(&model, Some(&quantized), "int4-g32", &options).unwrap();
    let sizes: Vec<u64> = TENSORS.iter().map(|(_, s)| 4 * s.iter().product::<u64>()).collect();
    let total: u64 = sizes.iter().sum();
    let mut want = vec![(0, total, String::new())];
    let mut done = 0;
    for ((name, _), size) in TENSORS.iter().zip(&sizes) {
        done += size;
        want.push((done, total, name.to_string()));
    }
    assert_eq!(*calls.borrow(), want);

    // true stops the call (Error::Cancelled) and nothing is written; a panic stops it too.
    let stop = |_: u64, _: u64, name: &str| name == "layers.0.q.weight";
    let stopped = dir.path("stopped.safetensors");
    let options = ModelQuantOptions {
        progress: Some(&stop),
        ..Default::default()
    };
    match grey::quantize_model(&model, Some(&stopped), "int4-g32", &options) {
        Err(Error::Cancelled(message)) => assert!(message.contains("cancelled by the progress callback"), "{message}"),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(!std::path::Path::new(&stopped).exists());
    let panics = |_: u64, _: u64, _: &str| -> bool { panic!("a bug in the callback") };
    let restored = dir.path("r.safetensors");
    assert!(matches!(
        grey::dequantize_model_with_progress(&quantized, &restored, DType::F32, false, Some(&panics)),
        Err(Error::Cancelled(_))
    ));
    assert!(!std::path::Path::new(&restored).exists());
}
