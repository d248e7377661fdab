//! Keeps a signed audit log: generates keys, appends three records, writes a checkpoint, then verifies
//! the log and the checkpoint with the verifier key and prints the verdict. `cargo run [-- DIR]` in
//! this directory.
//!
//! The files (audit.key, audit.key.writer, audit.log, checkpoint-1) go to DIR, which must not hold
//! them yet (keys are never overwritten); without DIR, to a temporary directory removed at the end.
use std::path::{Path, PathBuf};

/// A fresh directory under the system's temporary directory, removed with its files on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let base = std::env::temp_dir();
        for attempt in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let dir = base.join(format!(
                "grey-audit-sample-{}-{}-{}",
                std::process::id(),
                nanos,
                attempt
            ));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "no free temporary name",
        ))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(dir: &Path) -> grey::Result<bool> {
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (verifier, writer) = (file("audit.key"), file("audit.key.writer"));
    let (log_path, checkpoint) = (file("audit.log"), file("checkpoint-1"));
    grey::audit_keygen(&grey::KeygenOptions {
        verifier_key: &verifier,
        writer_key: Some(&writer),
        ..Default::default()
    })?;
    {
        let log = grey::AuditLog::open(&log_path, &writer)?;
        for step in 0..3 {
            let payload = format!(r#"{{"step":{},"language":"rust"}}"#, step);
            if let Some(sequence) = log.append("sample.step", &payload)? {
                println!("appended record {}", sequence);
            }
        }
        log.checkpoint(&checkpoint)?;
    } // closed here, before it is verified
    let report = grey::audit_verify(&log_path, &verifier, &[&checkpoint], None)?;
    println!(
        "verify: cause {}, records {}, head {}, root {}, log_id {}",
        report.cause,
        report.records,
        grey::hex(&report.head_hash),
        grey::hex(&report.root_hash),
        grey::hex(&report.log_id)
    );
    Ok(report.intact())
}

fn main() {
    let result = match std::env::args().nth(1) {
        Some(dir) => std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| run(Path::new(&dir)).map_err(|e| e.to_string())),
        None => TempDir::new()
            .map_err(|e| e.to_string())
            .and_then(|tmp| run(&tmp.0).map_err(|e| e.to_string())),
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(err) => {
            eprintln!("audit: {}", err);
            std::process::exit(1);
        }
    }
}
