"""Hostile payloads through the Python binding: refused with an exception, never a crash of the
interpreter (a 100,000-deep payload used to be accepted, and reading the log back then segfaulted)."""

import hashlib
import hmac
import struct

import pytest

import grey

DEEP = "[" * 100_000 + "]" * 100_000


def test_deep_and_repeated_key_payloads_are_refused(tmp_path, keys):
    _, writer = keys
    log_path = tmp_path / "audit.log"
    with grey.AuditLog(log_path, writer) as log:
        with pytest.raises(grey.InvalidArgument, match="deeper than 64 levels"):
            log.append("t", DEEP)
        with pytest.raises(grey.InvalidArgument, match="repeats the key"):
            log.append("t", '{"a": 1, "\\u0061": 2}')
        log.append("t", "[" * 64 + "]" * 64)
    expected = []
    for _ in range(63):
        expected = [expected]
    assert [r["payload"] for r in grey.audit_records(log_path)] == [expected]


def _seal(log_path, key_path, payload: bytes) -> None:
    """Appends a record sealed with the epoch-0 key, as an older libgrey (or any program holding the
    key) could have written it, in the log's format version (docs/audit-format.md): version 1 chains to
    and MACs the whole record, version 2 the record without its MAC, and MACs its leaf hash."""
    data = log_path.read_bytes()
    version = struct.unpack_from("<I", data, 8)[0]
    at, last = 96, data[:96]
    while at < len(data):
        length = struct.unpack_from("<I", data, at)[0]
        last, at = data[at:at + length], at + length
    sequence = struct.unpack_from("<Q", last, 8)[0] + 1
    key = bytes.fromhex(dict(line.split(" ", 1) for line in key_path.read_text().splitlines()[1:])["key"])
    record_key = hmac.new(key, b"grey-audit/v1/record", hashlib.sha256).digest()
    leaf = lambda record: hashlib.sha256(b"\0" + (record if version == 1 else record[:-32])).digest()
    body = struct.pack("<IIQQIHHI", 36 + 1 + len(payload) + 64, 0x43455247, sequence, 0, 0, 1, 0, len(payload))
    body += b"t" + payload + (leaf(last) if at > 96 else hashlib.sha256(b"\0" + last).digest())
    message = body if version == 1 else hashlib.sha256(b"\0" + body).digest()
    with open(log_path, "ab") as out:
        out.write(body + hmac.new(record_key, message, hashlib.sha256).digest())


def test_a_log_holding_a_deep_payload_reads_back(tmp_path, keys):
    verifier, writer = keys
    log_path = tmp_path / "audit.log"
    with grey.AuditLog(log_path, writer) as log:
        log.append("t", {"i": 0})
    _seal(log_path, verifier, DEEP.encode())
    _seal(log_path, verifier, b'{"a":1,"a":2}')
    assert grey.audit_verify(log_path, verifier).intact
    records = grey.audit_records(log_path)
    assert [r["payload"] for r in records] == [{"i": 0}, DEEP, '{"a":1,"a":2}']  # shown as text
