//! The signed audit log: [`audit_keygen`], [`AuditLog`], [`audit_verify`] and proofs. See
//! docs/audit-format.md for the bytes and docs/security.md for what the log promises.

use crate::{
    c_string, c_string_or_null, chars, check, ptr_or_null as ptr, read_text, sys, text, Result,
};
use std::os::raw::c_char;
use std::ptr::NonNull;

/// Lower-case hex of `bytes`, for printing hashes and ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{:02x}", b)).collect()
}

/// The key files [`audit_keygen`] writes (mode 0600; existing files are refused).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeygenOptions<'a> {
    /// Required: keep it offline, it is what verifies the whole log.
    pub verifier_key: &'a str,
    /// The key [`AuditLog::open`] takes.
    pub writer_key: Option<&'a str>,
    /// An Ed25519 key pair for signing checkpoints: (private, public).
    pub ed25519: Option<(&'a str, &'a str)>,
}

/// Generates a fresh key and writes the files `options` names.
pub fn audit_keygen(options: &KeygenOptions<'_>) -> Result<()> {
    const F: &str = "grey_audit_keygen";
    let verifier = c_string(F, "options.verifier_key_path", options.verifier_key)?;
    let writer = c_string_or_null(F, "options.writer_key_path", options.writer_key)?;
    let private = c_string_or_null(
        F,
        "options.ed25519_private_path",
        options.ed25519.map(|k| k.0),
    )?;
    let public = c_string_or_null(
        F,
        "options.ed25519_public_path",
        options.ed25519.map(|k| k.1),
    )?;
    let mut raw = versioned!(sys::grey_audit_keygen_options);
    raw.verifier_key_path = verifier.as_ptr();
    raw.writer_key_path = ptr(&writer);
    raw.ed25519 = options.ed25519.is_some() as u32;
    raw.ed25519_private_path = ptr(&private);
    raw.ed25519_public_path = ptr(&public);
    check(unsafe { sys::grey_audit_keygen(&raw) })
}

/// The verdict of a verification. `cause` is "intact" or what was found ("modified", "deleted",
/// "reordered", "inserted", "truncated", "resealed", "foreign_log", "forked", "malformed").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub cause: String,
    /// Records that verified, in order, before the first bad one.
    pub records: u64,
    pub first_bad_record: Option<u64>,
    pub first_bad_offset: u64,
    pub bad_checkpoint: Option<u32>,
    pub last_epoch: u32,
    pub log_id: [u8; 16],
    pub head_hash: [u8; 32],
    pub root_hash: [u8; 32],
    pub detail: String,
}

impl AuditReport {
    /// Every record and checkpoint verified.
    pub fn intact(&self) -> bool {
        self.cause == "intact"
    }

    fn from_raw(raw: &sys::grey_audit_report) -> AuditReport {
        let name = unsafe { text(sys::grey_audit_cause_name(raw.cause)) };
        AuditReport {
            cause: if name.is_empty() {
                format!("cause {}", raw.cause)
            } else {
                name
            },
            records: raw.records,
            first_bad_record: (raw.first_bad_record != u64::MAX).then_some(raw.first_bad_record),
            first_bad_offset: raw.first_bad_offset,
            bad_checkpoint: (raw.bad_checkpoint != sys::GREY_AUDIT_NO_CHECKPOINT)
                .then_some(raw.bad_checkpoint),
            last_epoch: raw.last_epoch,
            log_id: raw.log_id,
            head_hash: raw.head_hash,
            root_hash: raw.root_hash,
            detail: chars(&raw.detail),
        }
    }
}

/// Verifies the whole log at `log_path` with the verifier key, and each checkpoint file against it
/// (with `public_key`, their Ed25519 signatures too). The verdict is the report's `cause`; an `Err`
/// means verification could not run (a missing file, a bad key file).
pub fn audit_verify(
    log_path: &str,
    key_path: &str,
    checkpoints: &[&str],
    public_key: Option<&str>,
) -> Result<AuditReport> {
    audit_verify_with_threads(log_path, key_path, checkpoints, public_key, 0)
}

/// [`audit_verify`] on `threads` threads (0: one per core; at most 256). The report is the same
/// whatever their number.
pub fn audit_verify_with_threads(
    log_path: &str,
    key_path: &str,
    checkpoints: &[&str],
    public_key: Option<&str>,
    threads: u32,
) -> Result<AuditReport> {
    const F: &str = "grey_audit_verify";
    let log = c_string(F, "options.log_path", log_path)?;
    let key = c_string(F, "options.key_path", key_path)?;
    let public = c_string_or_null(F, "options.public_key_path", public_key)?;
    let paths = checkpoints
        .iter()
        .enumerate()
        .map(|(i, p)| c_string(F, &format!("options.checkpoint_paths[{i}]"), p))
        .collect::<Result<Vec<_>>>()?;
    let pointers: Vec<*const c_char> = paths.iter().map(|p| p.as_ptr()).collect();
    let mut options = versioned!(sys::grey_audit_verify_options);
    options.log_path = log.as_ptr();
    options.key_path = key.as_ptr();
    options.public_key_path = ptr(&public);
    options.threads = threads;
    options.checkpoint_count = pointers.len() as u32;
    options.checkpoint_paths = if pointers.is_empty() {
        std::ptr::null()
    } else {
        pointers.as_ptr()
    };
    let mut report = versioned!(sys::grey_audit_report);
    check(unsafe { sys::grey_audit_verify(&options, &mut report) })?;
    Ok(AuditReport::from_raw(&report))
}

/// The records from index `from` on (at most `max_records`; 0: all) as a JSON array of
/// {"sequence","time_ns","epoch","type","payload","hash"}. Reads structure only: it proves nothing.
pub fn audit_records_json(log_path: &str, from: u64, max_records: u64) -> Result<String> {
    let log = c_string("grey_audit_records_json", "log_path", log_path)?;
    read_text(|b, n, len| unsafe {
        sys::grey_audit_records_json(log.as_ptr(), from, max_records, b, n, len)
    })
}

/// An RFC 6962 inclusion proof of record `index` in the tree of the first `tree_size` records.
pub fn audit_prove_inclusion(log_path: &str, index: u64, tree_size: u64) -> Result<String> {
    let log = c_string("grey_audit_prove_inclusion", "log_path", log_path)?;
    read_text(|b, n, len| unsafe {
        sys::grey_audit_prove_inclusion(log.as_ptr(), index, tree_size, b, n, len)
    })
}

/// An RFC 6962 consistency proof between the trees of the first `old_size` and `new_size` records.
pub fn audit_prove_consistency(log_path: &str, old_size: u64, new_size: u64) -> Result<String> {
    let log = c_string("grey_audit_prove_consistency", "log_path", log_path)?;
    read_text(|b, n, len| unsafe {
        sys::grey_audit_prove_consistency(log.as_ptr(), old_size, new_size, b, n, len)
    })
}

/// `Ok` when the proof file holds against `checkpoint` (inclusion) or between `old_checkpoint` and
/// `checkpoint` (consistency); `Error::Corrupt` with the reason when it does not.
pub fn audit_check_proof(
    proof: &str,
    checkpoint: &str,
    old_checkpoint: Option<&str>,
    public_key: Option<&str>,
) -> Result<()> {
    const F: &str = "grey_audit_check_proof";
    let (p, c) = (
        c_string(F, "proof_path", proof)?,
        c_string(F, "checkpoint_path", checkpoint)?,
    );
    let old = c_string_or_null(F, "old_checkpoint_path", old_checkpoint)?;
    let public = c_string_or_null(F, "public_key_path", public_key)?;
    check(unsafe { sys::grey_audit_check_proof(p.as_ptr(), c.as_ptr(), ptr(&old), ptr(&public)) })
}

/// The verdict of [`proof_verify`]: `verified` when the log is intact and holds the artifact's exact
/// SHA-256 in a grey.proof record (`record`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofReport {
    pub verified: bool,
    pub record: Option<u64>,
    pub sha256: [u8; 32],
    pub log: AuditReport,
}

/// Verifies the log and looks for a grey.proof record holding the artifact file's SHA-256.
pub fn proof_verify(log_path: &str, key_path: &str, artifact_path: &str) -> Result<ProofReport> {
    let (log, key, artifact) = (
        c_string("grey_proof_verify", "log_path", log_path)?,
        c_string("grey_proof_verify", "key_path", key_path)?,
        c_string("grey_proof_verify", "artifact_path", artifact_path)?,
    );
    let mut raw = versioned!(sys::grey_proof_report);
    let mut log_report = versioned!(sys::grey_audit_report);
    check(unsafe {
        sys::grey_proof_verify(log.as_ptr(), key.as_ptr(), artifact.as_ptr(), &mut raw, &mut log_report)
    })?;
    Ok(ProofReport {
        verified: raw.verified != 0,
        record: (raw.record != u64::MAX).then_some(raw.record),
        sha256: raw.sha256,
        log: AuditReport::from_raw(&log_report),
    })
}

/// The SHA-256 of a file's contents.
pub fn sha256_file(path: &str) -> Result<[u8; 32]> {
    let c_path = c_string("grey_audit_sha256_file", "path", path)?;
    let mut digest = [0u8; 32];
    check(unsafe { sys::grey_audit_sha256_file(c_path.as_ptr(), digest.as_mut_ptr()) })?;
    Ok(digest)
}

/// The state of an open log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogInfo {
    pub epoch: u32,
    pub records: u64,
    pub pending: u64,
    pub recovered_bytes: u64,
    pub log_id: [u8; 16],
    pub head_hash: [u8; 32],
}

/// Options for [`AuditLog`]: `AuditLog::builder(log, key).group_commit(256, 10).open()?`.
#[derive(Debug, Clone)]
pub struct AuditLogBuilder {
    log_path: String,
    key_path: String,
    signing_key: Option<String>,
    group: Option<(u32, u32)>,
    epochs: (u64, u64),
}

impl AuditLogBuilder {
    /// Signs checkpoints with the Ed25519 private key (PEM) at `path`.
    pub fn signing_key(mut self, path: &str) -> Self {
        self.signing_key = Some(path.to_string());
        self
    }
    /// Queues records and writes them every `records` records or `ms` milliseconds, instead of
    /// syncing each append before it returns.
    pub fn group_commit(mut self, records: u32, ms: u32) -> Self {
        self.group = Some((records, ms));
        self
    }
    /// Advances the key after `records` records or `seconds` seconds (0: never by that measure).
    pub fn epochs(mut self, records: u64, seconds: u64) -> Self {
        self.epochs = (records, seconds);
        self
    }

    pub fn open(self) -> Result<AuditLog> {
        const F: &str = "grey_audit_log_create";
        let log = c_string(F, "options.log_path", &self.log_path)?;
        let key = c_string(F, "options.key_path", &self.key_path)?;
        let signing = c_string_or_null(F, "options.signing_key_path", self.signing_key.as_deref())?;
        let mut options = versioned!(sys::grey_audit_options);
        options.durability = if self.group.is_some() {
            sys::GREY_AUDIT_DURABILITY_GROUP
        } else {
            sys::GREY_AUDIT_DURABILITY_EVERY_RECORD
        };
        options.log_path = log.as_ptr();
        options.key_path = key.as_ptr();
        options.signing_key_path = ptr(&signing);
        let (records, ms) = self.group.unwrap_or((256, 10));
        options.group_records = records;
        options.group_ms = ms;
        options.epoch_records = self.epochs.0;
        options.epoch_seconds = self.epochs.1;
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_audit_log_create(&options, &mut raw) })?;
        Ok(AuditLog {
            raw: NonNull::new(raw).expect("grey_audit_log_create returned OK and NULL"),
            path: self.log_path,
        })
    }
}

/// An audit log open for appending; flushed and closed on drop. Thread-safe (grey.h), so it may be
/// shared between threads.
pub struct AuditLog {
    raw: NonNull<sys::grey_audit_log>,
    path: String,
}

unsafe impl Send for AuditLog {}
unsafe impl Sync for AuditLog {}

impl AuditLog {
    /// Opens (or creates) the log at `log_path` with the writer key at `key_path`, every record synced.
    pub fn open(log_path: &str, key_path: &str) -> Result<AuditLog> {
        AuditLog::builder(log_path, key_path).open()
    }

    pub fn builder(log_path: &str, key_path: &str) -> AuditLogBuilder {
        AuditLogBuilder {
            log_path: log_path.to_string(),
            key_path: key_path.to_string(),
            signing_key: None,
            group: None,
            epochs: (10000, 3600),
        }
    }

    /// The log file's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Appends a record of `record_type` with a JSON `payload`. Returns its sequence number, or None
    /// when it was queued for group commit.
    pub fn append(&self, record_type: &str, payload_json: &str) -> Result<Option<u64>> {
        let t = c_string("grey_audit_append", "type", record_type)?;
        let p = c_string("grey_audit_append", "payload", payload_json)?;
        let mut sequence = 0;
        check(unsafe {
            sys::grey_audit_append(self.raw.as_ptr(), t.as_ptr(), p.as_ptr(), &mut sequence)
        })?;
        Ok((sequence != u64::MAX).then_some(sequence))
    }

    /// Appends `records`, (type, JSON payload) pairs, in one call: consecutive in the log, sealed with
    /// one key epoch and written at once, so that all of them reach the log or none does. A refused
    /// record fails the call with `Error::InvalidArgument` naming it by its index ("entry 3: ...") and
    /// appends none of them. Returns the first record's sequence number (durable, as after
    /// [`AuditLog::append`]), or None when the batch was queued for group commit or was empty. A batch
    /// holds at most 64 MiB of records, and no more records than the log's epoch length.
    pub fn append_batch(&self, records: &[(&str, &str)]) -> Result<Option<u64>> {
        const F: &str = "grey_audit_batch_add";
        let batch = Batch::new()?;
        for (record_type, payload_json) in records {
            let t = c_string(F, "type", record_type)?;
            let p = c_string(F, "payload", payload_json)?;
            check(unsafe { sys::grey_audit_batch_add(batch.0.as_ptr(), t.as_ptr(), p.as_ptr()) })?;
        }
        let mut first = 0;
        check(unsafe {
            sys::grey_audit_append_batch(self.raw.as_ptr(), batch.0.as_ptr(), &mut first)
        })?;
        Ok((first != u64::MAX).then_some(first))
    }

    /// Writes and syncs every queued record; reports an error a background group commit met.
    pub fn flush(&self) -> Result<()> {
        check(unsafe { sys::grey_audit_flush(self.raw.as_ptr()) })
    }

    /// Flushes, then writes a signed checkpoint of the whole log to `path`. Keep it off this machine.
    pub fn checkpoint(&self, path: &str) -> Result<()> {
        let c_path = c_string("grey_audit_checkpoint", "out_path", path)?;
        check(unsafe { sys::grey_audit_checkpoint(self.raw.as_ptr(), c_path.as_ptr()) })
    }

    pub fn info(&self) -> Result<AuditLogInfo> {
        let mut raw = versioned!(sys::grey_audit_log_info);
        check(unsafe { sys::grey_audit_log_info_get(self.raw.as_ptr(), &mut raw) })?;
        Ok(AuditLogInfo {
            epoch: raw.epoch,
            records: raw.records,
            pending: raw.pending,
            recovered_bytes: raw.recovered_bytes,
            log_id: raw.log_id,
            head_hash: raw.head_hash,
        })
    }

    /// Flushes, then verifies this log with the verifier key ([`audit_verify`]). Do not append from other
    /// threads meanwhile: a record being written shows as a malformed tail.
    pub fn verify(
        &self,
        key_path: &str,
        checkpoints: &[&str],
        public_key: Option<&str>,
    ) -> Result<AuditReport> {
        self.flush()?;
        audit_verify(&self.path, key_path, checkpoints, public_key)
    }

    /// Stores `artifact_json` (kept byte for byte) as `<directory>/<id>.json`, logs its SHA-256 in a
    /// grey.proof record, and returns the id.
    pub fn proof_write(&self, directory: &str, artifact_json: &str) -> Result<String> {
        let d = c_string("grey_proof_write", "directory", directory)?;
        let a = c_string("grey_proof_write", "artifact_json", artifact_json)?;
        read_text(|b, n, len| unsafe {
            sys::grey_proof_write(self.raw.as_ptr(), d.as_ptr(), a.as_ptr(), b, n, len)
        })
    }
}

/// The records of one [`AuditLog::append_batch`] call, freed when it returns.
struct Batch(NonNull<sys::grey_audit_batch>);

impl Batch {
    fn new() -> Result<Batch> {
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::grey_audit_batch_create(&mut raw) })?;
        Ok(Batch(
            NonNull::new(raw).expect("grey_audit_batch_create returned OK and NULL"),
        ))
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        unsafe { sys::grey_audit_batch_destroy(self.0.as_ptr()) }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        unsafe { sys::grey_audit_log_destroy(self.raw.as_ptr()) }
    }
}
