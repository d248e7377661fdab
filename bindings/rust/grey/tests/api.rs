use std::sync::{Arc, Mutex};

fn greyctl_path() -> String {
    std::env::var("GREYCTL").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../build/default/bin/greyctl"
        )
        .to_string()
    })
}

fn greyctl_json() -> String {
    let path = greyctl_path();
    let out = std::process::Command::new(&path)
        .args(["--no-env", "detect", "--json"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run greyctl at {} (build the default preset or set GREYCTL): {}",
                path, e
            )
        });
    assert!(out.status.success(), "greyctl failed");
    String::from_utf8(out.stdout).unwrap()
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn devices_agree_with_greyctl() {
    let json = greyctl_json();
    let ctx = grey::Context::new().unwrap();
    let devices = ctx.devices().unwrap();
    assert_eq!(
        devices.len(),
        json.matches("\"backend_device_index\"").count()
    );
    for d in &devices {
        assert!(json.contains(&format!("\"index\": {}", d.index)));
        assert!(
            json.contains(&format!("\"name\": {}", json_string(d.name().unwrap()))),
            "name of {:?}",
            d
        );
        assert!(json.contains(&format!(
            "\"memory_total_bytes\": {}",
            d.memory_total_bytes().unwrap()
        )));
        assert!(json.contains(&format!(
            "\"compute_units\": {}",
            d.compute_units().unwrap()
        )));
        assert!(json.contains(&format!("\"vendor\": \"{}\"", d.vendor)));
    }
}

#[test]
fn host_device_fields() {
    let ctx = grey::Context::new().unwrap();
    let host = ctx.device(0).unwrap();
    assert_eq!(
        (host.backend.as_str(), host.device_type, host.vendor),
        ("host", "cpu", "cpu")
    );
    assert!(host.memory_total_bytes().unwrap() > 0 && host.compute_units().unwrap() >= 1);
    let uuid = host.field("uuid").unwrap();
    assert_eq!((uuid.value.clone(), uuid.state), (None, "not_applicable"));
    assert!(!uuid.reason.is_empty());
    let mem = host.field("memory_total_bytes").unwrap();
    assert_eq!((mem.unit.as_str(), mem.source), ("bytes", "os"));
}

#[test]
fn out_of_range_device_is_an_err_with_the_c_message() {
    let ctx = grey::Context::new().unwrap();
    let n = ctx.device_count().unwrap();
    let err = ctx.device(n + 5).unwrap_err();
    match &err {
        grey::Error::InvalidArgument(message) => {
            assert!(
                message.contains(&format!("device index {} is out of range", n + 5)),
                "{}",
                message
            )
        }
        other => panic!("want InvalidArgument, got {:?}", other),
    }
    assert_eq!(err.status(), grey_sys::GREY_ERROR_INVALID_ARGUMENT as u32);
    assert_eq!(err.to_string(), err.message());
    assert!(matches!(
        ctx.telemetry(n),
        Err(grey::Error::InvalidArgument(_))
    ));
}

#[test]
fn telemetry_samples() {
    let ctx = grey::Context::new().unwrap();
    let a = ctx.telemetry(0).unwrap();
    let b = ctx.telemetry(0).unwrap();
    assert!(a.timestamp_ns > 0 && b.timestamp_ns >= a.timestamp_ns);
    assert!(a.field("power_draw_mw").is_some());
    let _ = a.throttle_reason_names();
}

#[test]
fn an_untrusted_backend_dir_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("grey-rust-shared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let ctx = grey::Context::builder()
        .backends(&["host"])
        .backend_dir(dir.to_str().unwrap())
        .log_level(grey::LogLevel::Off)
        .build()
        .unwrap();
    let dirs = ctx.plugin_dirs().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let first = &dirs[0];
    assert_eq!(
        (first.origin, first.state),
        ("host", "refused"),
        "{:?}",
        first
    );
    assert_eq!(first.path, dir.to_str().unwrap());
    let want = format!(
        "directory '{}' is writable by group and others (mode 0777)",
        dir.display()
    );
    assert!(first.reason.contains(&want), "{:?}", first);
    assert_eq!(dirs.last().unwrap().origin, "beside_library");
}

#[test]
fn backends_report_and_search_path() {
    let dir = std::env::temp_dir().join(format!("grey-rust-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = grey::Context::builder()
        .backends(&["host", "nosuchbackend"])
        .backend_dir(dir.to_str().unwrap())
        .build()
        .err()
        .expect("a named backend that is not there must fail the context");
    match missing {
        grey::Error::Unsupported(message) => assert!(
            message.contains("backend 'nosuchbackend' is not available: requested, but no libgrey-backend-nosuchbackend.so"),
            "{message}"
        ),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let ctx = grey::Context::builder()
        .backends_if_present(&["host", "nosuchbackend"])
        .backend_dir(dir.to_str().unwrap())
        .build()
        .unwrap();
    let report = ctx.backends().unwrap();
    let outcome = |name: &str| report.iter().find(|b| b.name == name).map(|b| b.outcome);
    assert_eq!(outcome("host"), Some("loaded"));
    assert_eq!(outcome("nosuchbackend"), Some("not_found"));
    assert_eq!(ctx.backend_search_path().unwrap()[0], dir.to_str().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn log_callback_receives_messages() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let ctx = grey::Context::builder()
        .log_level(grey::LogLevel::Debug)
        .log(move |level, message| sink.lock().unwrap().push((level, message.to_string())))
        .build()
        .unwrap();
    drop(ctx);
    let seen = seen.lock().unwrap();
    assert!(
        !seen.is_empty(),
        "a debug-level context logs its backend search"
    );
    assert!(seen.iter().all(|(level, _)| *level < grey::LogLevel::Off));
}

#[test]
fn config_values_and_errors() {
    let mut cfg = grey::Config::new(Some("aggressive")).unwrap();
    cfg.set("memory.compression.algorithm", "zstd").unwrap();
    assert_eq!(cfg.get("memory.compression.algorithm").unwrap(), "zstd");
    cfg.set("safety.dry_run_default", true).unwrap();
    assert!(cfg.to_yaml().unwrap().contains("dry_run_default: true"));
    let err = cfg
        .load_str(
            "memory:\n  compression:\n    algorithm: 7zip\n",
            Some("inline"),
        )
        .unwrap_err();
    assert!(
        matches!(&err, grey::Error::Config(m) if m.contains("inline:3")),
        "{:?}",
        err
    );
    assert!(matches!(
        cfg.set("no.such.key", 1),
        Err(grey::Error::Config(_))
    ));
    assert!(matches!(
        grey::Config::new(Some("nope")),
        Err(grey::Error::InvalidArgument(_))
    ));
    assert!(matches!(cfg.get("a\0b"), Err(grey::Error::Nul(_))));
    assert!(grey::config_keys().contains(&"memory.compression.algorithm".to_string()));
}

#[test]
fn context_config_file_and_view() {
    let path = std::env::temp_dir().join(format!("grey-rust-{}.yaml", std::process::id()));
    std::fs::write(&path, "memory:\n  compression:\n    algorithm: none\n").unwrap();
    let ctx = grey::Context::builder()
        .config_file(path.to_str().unwrap())
        .profile("conservative")
        .build()
        .unwrap();
    assert_eq!(
        ctx.config().get("memory.compression.algorithm").unwrap(),
        "none"
    );
    std::fs::remove_file(&path).unwrap();
    let cfg = grey::Config::load("/nonexistent/grey.yaml", None);
    assert!(cfg.is_err());
}

#[test]
fn buffers_round_trip_and_refuse_bad_ranges() {
    let ctx = grey::Context::new().unwrap();
    let mut buf = ctx.buffer(0, 16).unwrap();
    assert_eq!((buf.size().unwrap(), buf.device().unwrap()), (16, 0));
    buf.fill(0, 0xAB, 16).unwrap();
    buf.write(4, b"grey").unwrap();
    let mut out = [0u8; 16];
    buf.read(0, &mut out).unwrap();
    assert_eq!(
        &out[..],
        &[&[0xAB; 4][..], b"grey", &[0xAB; 8][..]].concat()[..]
    );
    let mut other = ctx.buffer(0, 8).unwrap();
    other.copy_from(0, &buf, 4, 4).unwrap();
    let mut part = [0u8; 4];
    other.read(0, &mut part).unwrap();
    assert_eq!(&part, b"grey");
    let err = buf.write(0, &[0u8; 17]).unwrap_err();
    assert!(
        matches!(&err, grey::Error::InvalidArgument(m) if m.contains("outside the buffer")),
        "{:?}",
        err
    );
    assert!(matches!(
        ctx.buffer(0, 0),
        Err(grey::Error::InvalidArgument(_))
    ));
    assert!(matches!(
        ctx.buffer(99, 8),
        Err(grey::Error::InvalidArgument(_))
    ));
}

#[test]
fn text_protocol_reports_the_size_it_needs() {
    let mut raw = std::ptr::null_mut();
    unsafe {
        assert_eq!(
            grey_sys::grey_config_create(std::ptr::null(), &mut raw),
            grey_sys::GREY_OK
        );
        let key = std::ffi::CString::new("memory.compression.algorithm").unwrap();
        let mut length = 0usize;
        let status =
            grey_sys::grey_config_get(raw, key.as_ptr(), std::ptr::null_mut(), 0, &mut length);
        assert_eq!((status, length), (grey_sys::GREY_ERROR_BUFFER_TOO_SMALL, 3));
        grey_sys::grey_config_destroy(raw);
    }
}

#[test]
fn version() {
    let parts: Vec<u32> = grey::version()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(
        grey::version_number(),
        parts[0] << 16 | parts[1] << 8 | parts[2]
    );
    assert!(!grey::build_revision().is_empty());
}

// `backends(&["cuda"])` fails whenever `greyctl detect --backend cuda` does (here, without a CUDA
// driver: Error::Unsupported, "backend 'cuda' is not available: ..."), never giving a context without it.
#[test]
fn a_named_backend_fails_as_greyctl_detect_does() {
    let out = std::process::Command::new(greyctl_path())
        .args(["--no-env", "--log-level", "OFF", "detect", "--backend", "cuda", "--json"])
        .output()
        .expect("greyctl runs");
    if out.status.success() {
        return; // the CUDA backend is available on this machine
    }
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(text.contains("\"class\": \"unavailable\"") && text.contains("backend 'cuda' is not available: "), "{text}");
    match grey::Context::builder().backends(&["cuda"]).build() {
        Err(grey::Error::Unsupported(message)) => assert!(message.starts_with("backend 'cuda' is not available: "), "{message}"),
        Err(other) => panic!("expected Unsupported, got {other:?}"),
        Ok(_) => panic!("a context without the cuda backend that was asked for"),
    }
}
