"""The signed audit log: grey.audit_keygen, grey.AuditLog, grey.audit_verify and proofs.

See docs/audit-format.md for the bytes and docs/security.md for what the log promises.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Union

from . import capi
from ._util import HandleOwner, enum_names, read_text

PathLike = Union[str, "os.PathLike[str]"]

_DURABILITY = {name: value for value, name in enum_names("GREY_AUDIT_DURABILITY_").items()}
# GREY_AUDIT_NO_RECORD and GREY_AUDIT_NO_CHECKPOINT are UINT64_MAX and UINT32_MAX, which SWIG cannot read.
_NO_RECORD = (1 << 64) - 1
_NO_CHECKPOINT = (1 << 32) - 1


def _path(p: Optional[PathLike]) -> Optional[str]:
    return None if p is None else os.fspath(p)


def _json_text(value: Any, **dumps: Any) -> Union[str, bytes]:
    """JSON text kept as given (str, or bytes-like as UTF-8), or `value` serialised by json.dumps."""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return json.dumps(value, **dumps)


def audit_keygen(verifier_key: PathLike, writer_key: Optional[PathLike] = None, *,
                 ed25519_private: Optional[PathLike] = None, ed25519_public: Optional[PathLike] = None) -> None:
    """Writes a fresh verifier key (keep it offline) and, when `writer_key` is given, the writer key
    grey.AuditLog opens; both mode 0600. With `ed25519_private` and `ed25519_public`, also an Ed25519 key
    pair for signing checkpoints. Refuses to overwrite a file (grey.InvalidArgument)."""
    if (ed25519_private is None) != (ed25519_public is None):
        raise ValueError("give both ed25519_private and ed25519_public, or neither")
    options = capi.grey_audit_keygen_options()
    options.verifier_key_path = os.fspath(verifier_key)
    options.writer_key_path = _path(writer_key)
    if ed25519_private is not None:
        options.ed25519 = 1
        options.ed25519_private_path = _path(ed25519_private)
        options.ed25519_public_path = _path(ed25519_public)
    capi.grey_audit_keygen(options)


@dataclass(frozen=True)
class AuditReport:
    """The verdict of grey_audit_verify. ``cause`` is "intact" or what was found ("modified", "deleted",
    "reordered", "inserted", "truncated", "resealed", "foreign_log", "forked", "malformed");
    ``first_bad_record`` and ``bad_checkpoint`` are None when there is none. Hashes and the log id are
    bytes. to_dict() is ``greyctl audit verify --json``'s document: hashes in hex, and None (null) for
    ``first_bad_record``, ``first_bad_offset`` and ``bad_checkpoint`` when there is none."""

    cause: str
    records: int
    first_bad_record: Optional[int]
    first_bad_offset: int
    bad_checkpoint: Optional[int]
    last_epoch: int
    log_id: bytes
    head_hash: bytes
    root_hash: bytes
    detail: str

    @property
    def intact(self) -> bool:
        return self.cause == "intact"

    @classmethod
    def _from_raw(cls, raw: Any) -> "AuditReport":
        name = capi.grey_audit_cause_name(raw.cause)
        return cls(str(name) if name is not None else str(raw.cause), int(raw.records),
                   None if raw.first_bad_record == _NO_RECORD else int(raw.first_bad_record),
                   int(raw.first_bad_offset), None if raw.bad_checkpoint == _NO_CHECKPOINT else int(raw.bad_checkpoint),
                   int(raw.last_epoch), bytes(raw.log_id), bytes(raw.head_hash), bytes(raw.root_hash), str(raw.detail))

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "intact": self.intact, "records": self.records,
                "first_bad_record": self.first_bad_record,
                "first_bad_offset": None if self.first_bad_record is None else self.first_bad_offset,
                "bad_checkpoint": self.bad_checkpoint, "last_epoch": self.last_epoch, "log_id": self.log_id.hex(),
                "head_hash": self.head_hash.hex(), "root_hash": self.root_hash.hex(), "detail": self.detail}


@dataclass(frozen=True)
class AuditLogInfo:
    """The state of an open log (grey_audit_log_info)."""

    epoch: int
    records: int
    pending: int
    recovered_bytes: int
    log_id: bytes
    head_hash: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "records": self.records, "pending": self.pending,
                "recovered_bytes": self.recovered_bytes, "log_id": self.log_id.hex(), "head_hash": self.head_hash.hex()}


@dataclass(frozen=True)
class ProofReport:
    """The verdict of grey_proof_verify: ``verified`` when the log is intact and holds the artifact's
    exact SHA-256 in a grey.proof record (``record``, else None)."""

    verified: bool
    record: Optional[int]
    sha256: bytes
    log: AuditReport

    def to_dict(self) -> dict[str, Any]:
        return {"verified": self.verified, "record": self.record, "sha256": self.sha256.hex(), "log": self.log.to_dict()}


def audit_verify(log_path: PathLike, key_path: PathLike, checkpoints: Iterable[PathLike] = (),
                 public_key: Optional[PathLike] = None, *, threads: int = 0) -> AuditReport:
    """Verifies the whole log with the verifier key, and each checkpoint file against it (with
    `public_key`, each checkpoint's Ed25519 signature too). The verdict is the report's ``cause``; an
    error is raised only when verification could not run (a missing file, a bad key file). `threads`
    hash the log (0: one per core, at most 256); the report is the same whatever their number."""
    options = capi.grey_audit_verify_options()
    options.log_path = os.fspath(log_path)
    options.key_path = os.fspath(key_path)
    options.public_key_path = _path(public_key)
    options.threads = threads
    for checkpoint in checkpoints:
        capi.grey_swig_audit_verify_add_checkpoint(options, os.fspath(checkpoint))
    raw = capi.grey_audit_report()
    capi.grey_audit_verify(options, raw)
    return AuditReport._from_raw(raw)


def audit_records(log_path: PathLike, start: int = 0, max_records: int = 0) -> list[dict[str, Any]]:
    """The records from index `start` on (at most `max_records`; 0: all) as dicts with "sequence",
    "time_ns", "epoch", "type", "payload" and "hash". Reads structure only: it proves nothing."""
    return json.loads(read_text(capi.grey_audit_records_json, os.fspath(log_path), start, max_records))


def audit_prove_inclusion(log_path: PathLike, index: int, tree_size: int) -> str:
    """An RFC 6962 inclusion proof of record `index` in the tree of the first `tree_size` records."""
    return read_text(capi.grey_audit_prove_inclusion, os.fspath(log_path), index, tree_size)


def audit_prove_consistency(log_path: PathLike, old_size: int, new_size: int) -> str:
    """An RFC 6962 consistency proof between the trees of the first `old_size` and `new_size` records."""
    return read_text(capi.grey_audit_prove_consistency, os.fspath(log_path), old_size, new_size)


def audit_check_proof(proof_path: PathLike, checkpoint_path: PathLike, old_checkpoint_path: Optional[PathLike] = None,
                      public_key: Optional[PathLike] = None) -> None:
    """Returns when the proof holds against the checkpoint(s); raises grey.Corrupt, with the reason, when not."""
    capi.grey_audit_check_proof(os.fspath(proof_path), os.fspath(checkpoint_path), _path(old_checkpoint_path),
                                _path(public_key))


def proof_verify(log_path: PathLike, key_path: PathLike, artifact_path: PathLike) -> ProofReport:
    """Verifies the log and looks for a grey.proof record holding the artifact file's SHA-256."""
    raw = capi.grey_proof_report()
    log = capi.grey_audit_report()
    capi.grey_proof_verify(os.fspath(log_path), os.fspath(key_path), os.fspath(artifact_path), raw, log)
    return ProofReport(bool(raw.verified), None if raw.record == _NO_RECORD else int(raw.record), bytes(raw.sha256),
                       AuditReport._from_raw(log))


def sha256_file(path: PathLike) -> bytes:
    """The SHA-256 of a file's contents."""
    return bytes(capi.grey_audit_sha256_file(os.fspath(path)))


class AuditLog(HandleOwner):
    """An audit log open for appending: ``with grey.AuditLog(log, key) as log: log.append("run", {...})``.

    `key_path` is a writer key (grey.audit_keygen's `writer_key`); the library advances it in place at
    every epoch. `durability` is "every_record" (each append is written and synced before it returns)
    or "group" (group commit: every `group_records` records or `group_ms` milliseconds). A
    `signing_key` (Ed25519, PEM) signs checkpoints. Thread-safe; close() (or ``with``) flushes and
    closes it, and so does the garbage collector as a safety net.
    """

    def __init__(self, log_path: PathLike, key_path: PathLike, *, signing_key: Optional[PathLike] = None,
                 durability: str = "every_record", group_records: int = 256, group_ms: int = 10,
                 epoch_records: int = 10000, epoch_seconds: int = 3600) -> None:
        options = capi.grey_audit_options()
        try:
            options.durability = _DURABILITY[durability]
        except KeyError:
            raise ValueError(f"unknown durability {durability!r}; expected one of {sorted(_DURABILITY)}") from None
        options.log_path = os.fspath(log_path)
        options.key_path = os.fspath(key_path)
        options.signing_key_path = _path(signing_key)
        options.group_records = group_records
        options.group_ms = group_ms
        options.epoch_records = epoch_records
        options.epoch_seconds = epoch_seconds
        # close() flushes what is queued and closes the log (call flush() first to see its errors).
        self._own(capi.grey_audit_log_create(options), capi.grey_audit_log_destroy)
        self.path = os.fspath(log_path)

    def append(self, type: str, payload: Any = None) -> Optional[int]:
        """Appends a record of `type` with a JSON payload: a str or bytes is taken as JSON text, anything
        else is serialised with json.dumps (None: {}). Returns the record's sequence number, or None
        when it was queued for group commit. A type or payload holding a NUL byte raises
        grey.InvalidArgument (C would store it cut short; inside JSON strings, write it as \\u0000)."""
        if payload is None:
            payload = {}
        text = _json_text(payload, separators=(",", ":"), sort_keys=True)
        sequence = capi.grey_audit_append(self._get_handle(), type, text)
        return None if sequence == _NO_RECORD else int(sequence)

    def append_batch(self, records: Iterable[tuple[str, Any]]) -> Optional[int]:
        """Appends `records`, (type, payload) pairs with payloads as append() takes them, in one call:
        consecutive in the log, sealed with one key epoch and written at once, so that all of them
        reach the log or none does. A refused record raises grey.InvalidArgument naming it by its index
        ("entry 3: ...") and appends none of them. Returns the first record's sequence number (durable,
        as after append()), or None when the batch was queued for group commit or was empty. A batch
        holds at most 64 MiB of records, and no more records than the log's epoch_records."""
        batch = capi.grey_audit_batch_create()
        try:
            for type, payload in records:
                text = _json_text({} if payload is None else payload, separators=(",", ":"), sort_keys=True)
                capi.grey_audit_batch_add(batch, type, text)
            first = capi.grey_audit_append_batch(self._get_handle(), batch)
        finally:
            capi.grey_audit_batch_destroy(batch)
        return None if first == _NO_RECORD else int(first)

    def flush(self) -> None:
        """Writes and syncs every queued record; raises what a background group commit met."""
        capi.grey_audit_flush(self._get_handle())

    def checkpoint(self, path: PathLike) -> None:
        """Flushes, then writes a signed checkpoint of the whole log to `path`. Keep it off this machine."""
        capi.grey_audit_checkpoint(self._get_handle(), os.fspath(path))

    def info(self) -> AuditLogInfo:
        raw = capi.grey_audit_log_info()
        capi.grey_audit_log_info_get(self._get_handle(), raw)
        return AuditLogInfo(int(raw.epoch), int(raw.records), int(raw.pending), int(raw.recovered_bytes),
                            bytes(raw.log_id), bytes(raw.head_hash))

    def verify(self, key_path: PathLike, checkpoints: Iterable[PathLike] = (),
               public_key: Optional[PathLike] = None, *, threads: int = 0) -> AuditReport:
        """Flushes, then verifies this log with the verifier key (grey.audit_verify). Do not append from
        other threads meanwhile: a record being written shows as a malformed tail."""
        self.flush()
        return audit_verify(self.path, key_path, checkpoints, public_key, threads=threads)

    def proof_write(self, directory: PathLike, artifact: Any) -> str:
        """Stores `artifact` (a dict, or JSON text as str or bytes, kept byte for byte) as
        ``<directory>/<id>.json``, logs its SHA-256 in a grey.proof record, and returns the id."""
        text = _json_text(artifact, indent=2, sort_keys=True)
        return read_text(capi.grey_proof_write, self._get_handle(), os.fspath(directory), text)

    def __repr__(self) -> str:
        return "<grey.AuditLog closed>" if self.closed else f"<grey.AuditLog {self.path!r}>"
