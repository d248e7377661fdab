// Strings holding a NUL byte never reach libgrey cut short: C reads a `const char*` only up to its
// first NUL, so "a.safetensors\0/x" would open a.safetensors. Every entry point of the crate that
// takes a string refuses one with `Error::Nul` naming the grey.h function and parameter; the crate
// makes its C strings in one place (`c_string` in src/lib.rs), which the last test checks.
mod common;

use common::TempDir;
use grey::{
    Calibration, Config, Context, Error, KeygenOptions, ModelFormat, ModelWriter, TensorRef,
};

/// The refusal of a string whose NUL is at byte 1, by `place` ("grey_model_create: path").
fn refused<T>(result: grey::Result<T>, place: &str) {
    match result.map(|_| ()) {
        Err(Error::Nul(message)) => {
            assert!(
                message.starts_with(&format!("{place} holds a NUL byte (at byte 1)")),
                "{place}: {message}"
            );
            let invalid_argument = Error::InvalidArgument(String::new()).status();
            assert_eq!(Error::Nul(message).status(), invalid_argument);
        }
        other => panic!("{place}: want Error::Nul, got {other:?}"),
    }
}

const BAD: &str = "x\0y";

fn keygen<'a>(
    verifier_key: &'a str,
    writer_key: Option<&'a str>,
    ed25519: Option<(&'a str, &'a str)>,
) -> grey::Result<()> {
    grey::audit_keygen(&KeygenOptions {
        verifier_key,
        writer_key,
        ed25519,
    })
}

#[test]
fn model_and_quant_strings_with_a_nul_byte_are_refused() {
    let dir = TempDir::new("strings-model");
    let values = vec![0.0f32; 32];
    let mut writer = ModelWriter::new(ModelFormat::Safetensors).unwrap();
    writer
        .add_tensor("w", TensorRef::f32(&values, &[32]), 0)
        .unwrap();
    writer.write(&dir.path("a.safetensors")).unwrap();
    // The file the cut path would name exists: it must not be opened.
    let cut = format!("{}\0/x", dir.path("a.safetensors"));
    match grey::Model::open(&cut) {
        Err(Error::Nul(m)) => {
            assert!(m.starts_with("grey_model_create: path holds a NUL byte (at byte "))
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    refused(grey::Model::open(BAD), "grey_model_create: path");
    refused(
        writer.add_tensor(BAD, TensorRef::f32(&values, &[32]), 0),
        "grey_model_writer_add_tensor: name",
    );
    refused(
        writer.set_metadata(BAD, "v"),
        "grey_model_writer_set_metadata: key",
    );
    refused(
        writer.set_metadata("k", BAD),
        "grey_model_writer_set_metadata: value",
    );
    refused(writer.write(BAD), "grey_model_writer_write: path");
    let mut streamed = ModelWriter::new(ModelFormat::Safetensors).unwrap();
    refused(
        streamed.declare_tensor(BAD, grey::DType::F32, &[32], 0),
        "grey_model_writer_declare_tensor: name",
    );
    refused(streamed.open(BAD, false), "grey_model_writer_open: path");
    refused(
        writer.declare_tensor(BAD, grey::DType::F32, &[32], 0),
        "grey_model_writer_declare_tensor: name",
    );
    refused(writer.open(BAD, false), "grey_model_writer_open: path");
    refused(
        writer.declare_tensor(BAD, grey::DType::F32, &[32], 0),
        "grey_model_writer_declare_tensor: name",
    );
    refused(writer.open(BAD, false), "grey_model_writer_open: path");
    refused(
        grey::QuantParams::from_name(BAD),
        "grey_quant_params_from_name: name",
    );
    refused(
        grey::quant_size(&[32], BAD),
        "grey_quant_params_from_name: name",
    );
    refused(
        grey::quantize(TensorRef::f32(&values, &[1, 32]), BAD, Calibration::Rtn),
        "grey_quant_params_from_name: name",
    );
}

#[test]
fn config_and_context_strings_with_a_nul_byte_are_refused() {
    refused(Config::new(Some(BAD)), "grey_config_create: profile");
    refused(Config::load(BAD, None), "grey_config_load_file: path");
    refused(
        Config::load("grey.yaml", Some(BAD)),
        "grey_config_create: profile",
    );
    let mut config = Config::new(None).unwrap();
    refused(config.load_file(BAD), "grey_config_load_file: path");
    refused(config.load_str(BAD, None), "grey_config_load_string: yaml");
    refused(
        config.load_str("{}", Some(BAD)),
        "grey_config_load_string: origin",
    );
    refused(config.set(BAD, "zstd"), "grey_config_set: key");
    refused(
        config.set("memory.compression.algorithm", BAD),
        "grey_config_set: value",
    );
    refused(config.get(BAD), "grey_config_get: key");
    refused(
        Context::builder().backends(&[BAD]).build(),
        "grey_context_create: options.backends",
    );
    refused(
        Context::builder().backend_dir(BAD).build(),
        "grey_context_create: options.backend_dir",
    );
    refused(
        Context::builder().config_file(BAD).build(),
        "grey_context_create: options.config_path",
    );
    refused(
        Context::builder().profile(BAD).build(),
        "grey_context_create: options.profile",
    );
    let ctx = Context::new().unwrap();
    refused(ctx.config().get(BAD), "grey_config_get: key");
}

#[test]
fn audit_strings_with_a_nul_byte_are_refused() {
    let dir = TempDir::new("strings-audit");
    refused(
        keygen(BAD, None, None),
        "grey_audit_keygen: options.verifier_key_path",
    );
    refused(
        keygen("v", Some(BAD), None),
        "grey_audit_keygen: options.writer_key_path",
    );
    refused(
        keygen("v", None, Some((BAD, "p"))),
        "grey_audit_keygen: options.ed25519_private_path",
    );
    refused(
        keygen("v", None, Some(("p", BAD))),
        "grey_audit_keygen: options.ed25519_public_path",
    );
    refused(
        grey::audit_verify(BAD, "k", &[], None),
        "grey_audit_verify: options.log_path",
    );
    refused(
        grey::audit_verify("l", BAD, &[], None),
        "grey_audit_verify: options.key_path",
    );
    refused(
        grey::audit_verify("l", "k", &["c", BAD], None),
        "grey_audit_verify: options.checkpoint_paths[1]",
    );
    refused(
        grey::audit_verify("l", "k", &[], Some(BAD)),
        "grey_audit_verify: options.public_key_path",
    );
    refused(
        grey::audit_records_json(BAD, 0, 0),
        "grey_audit_records_json: log_path",
    );
    refused(
        grey::audit_prove_inclusion(BAD, 0, 1),
        "grey_audit_prove_inclusion: log_path",
    );
    refused(
        grey::audit_prove_consistency(BAD, 0, 1),
        "grey_audit_prove_consistency: log_path",
    );
    refused(
        grey::audit_check_proof(BAD, "c", None, None),
        "grey_audit_check_proof: proof_path",
    );
    refused(
        grey::audit_check_proof("p", BAD, None, None),
        "grey_audit_check_proof: checkpoint_path",
    );
    refused(
        grey::audit_check_proof("p", "c", Some(BAD), None),
        "grey_audit_check_proof: old_checkpoint_path",
    );
    refused(
        grey::audit_check_proof("p", "c", None, Some(BAD)),
        "grey_audit_check_proof: public_key_path",
    );
    refused(
        grey::proof_verify(BAD, "k", "a"),
        "grey_proof_verify: log_path",
    );
    refused(
        grey::proof_verify("l", BAD, "a"),
        "grey_proof_verify: key_path",
    );
    refused(
        grey::proof_verify("l", "k", BAD),
        "grey_proof_verify: artifact_path",
    );
    refused(grey::sha256_file(BAD), "grey_audit_sha256_file: path");
    refused(
        grey::AuditLog::open(BAD, "k"),
        "grey_audit_log_create: options.log_path",
    );
    refused(
        grey::AuditLog::open("l", BAD),
        "grey_audit_log_create: options.key_path",
    );
    refused(
        grey::AuditLog::builder("l", "k").signing_key(BAD).open(),
        "grey_audit_log_create: options.signing_key_path",
    );
    assert!(dir.is_empty());

    let (verifier, writer) = (dir.path("audit.key"), dir.path("audit.key.writer"));
    keygen(&verifier, Some(&writer), None).unwrap();
    let log_path = dir.path("audit.log");
    let log = grey::AuditLog::open(&log_path, &writer).unwrap();
    refused(log.append(BAD, "{}"), "grey_audit_append: type");
    refused(log.append("t", "{\0}"), "grey_audit_append: payload");
    refused(
        log.append_batch(&[("t", "{}"), (BAD, "{}")]),
        "grey_audit_batch_add: type",
    );
    refused(
        log.append_batch(&[("t", "{\0}")]),
        "grey_audit_batch_add: payload",
    );
    refused(log.checkpoint(BAD), "grey_audit_checkpoint: out_path");
    refused(log.proof_write(BAD, "{}"), "grey_proof_write: directory");
    refused(
        log.proof_write(&dir.path("proofs"), BAD),
        "grey_proof_write: artifact_json",
    );
    assert_eq!(log.info().unwrap().records, 0); // libgrey was never called

    // A NUL inside a JSON string is written \u0000: stored, and read back, whole.
    assert_eq!(log.append("t", r#"{"text":"x\u0000y"}"#).unwrap(), Some(0));
    log.flush().unwrap();
    let records = grey::audit_records_json(&log_path, 0, 0).unwrap();
    assert!(records.contains(r#""text":"x\u0000y""#), "{records}");
}

#[test]
fn governor_strings_with_a_nul_byte_are_refused() {
    let ctx = Context::builder()
        .backends(&["host"])
        .build()
        .unwrap();
    let governor = grey::Governor::new(&ctx, 0).unwrap();
    refused(
        governor.tenant(BAD, 1.0, 0),
        "grey_tenant_create: options.name",
    );
    refused(
        governor.emergency_stop(BAD),
        "grey_governor_emergency_stop: reason",
    );
    assert!(!governor.state().unwrap().stopped); // libgrey was never called
    assert_eq!(governor.state().unwrap().tenant_count, 0);
}

/// Every C string the crate makes comes from `c_string` (CString::new, which refuses a NUL byte): no
/// other constructor, and none of those that cut at a NUL or skip the check.
#[test]
fn c_strings_are_made_in_one_place() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut constructors = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        for forbidden in [
            "from_vec_unchecked",
            "from_bytes_with_nul_unchecked",
            "from_bytes_until_nul",
            "as_ptr() as *const c_char",
            "as_ptr() as *const i8",
        ] {
            assert!(!text.contains(forbidden), "{name} uses {forbidden}");
        }
        let here = text.matches("CString::new(").count();
        assert!(
            here == 0 || name == "lib.rs",
            "{name} makes a CString itself: use c_string"
        );
        constructors += here;
    }
    assert_eq!(constructors, 1, "CString::new outside c_string in lib.rs");
}
