#!/usr/bin/env python3
"""Writes the hand-made seeds of the audit fuzz targets into tests/fuzz/corpus/<target>/, named by
their SHA-1 as libFuzzer names its own: the hostile classes of issue 22 (payloads nested past the limit,
repeated keys, forged-epoch tails, edited checkpoint hmac lines) next to what the fuzzer found itself.
Logs are sealed with the fuzz targets' fixed initial key, the bytes 0, 1, ..., 31, and match the
writer_tail target's three-record log. Deterministic; rerun after changing the formats:
    python3 tests/fuzz/make_seeds.py
"""

import hashlib
import hmac
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
K0 = bytes(range(32))


def mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def epoch_key(epoch: int) -> bytes:
    key = K0
    for _ in range(epoch):
        key = mac(key, b"grey-audit/v1/ratchet")
    return key


def record(sequence: int, epoch: int, previous: bytes, payload: bytes, seal_epoch=None, mac_bytes=None, rtype=b"t") -> bytes:
    body = struct.pack("<IIQQIHHI", 36 + len(rtype) + len(payload) + 64, 0x43455247, sequence, 10 + sequence, epoch,
                       len(rtype), 0, len(payload)) + rtype + payload + previous
    if mac_bytes is None:
        mac_bytes = mac(mac(epoch_key(epoch if seal_epoch is None else seal_epoch), b"grey-audit/v1/record"), body)
    return body + mac_bytes


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\0" + data).digest()


def base_log():
    """The writer_tail target's log: header (log id a5..a5, created 1) and records of epochs 0, 0, 1."""
    key_id = mac(K0, b"grey-audit/v1/key-id")[:16]
    head64 = b"GREYAUDT" + struct.pack("<II", 1, 96) + b"\xa5" * 16 + key_id + struct.pack("<QQ", 1, 0)
    header = head64 + mac(mac(K0, b"grey-audit/v1/header"), head64)
    records, previous = [], leaf(header)
    for i, epoch in enumerate((0, 0, 1)):
        r = record(i, epoch, previous, b'{"i":%d}' % i)
        records.append(r)
        previous = leaf(r)
    return header, records, previous


def write(target: str, data: bytes) -> None:
    directory = os.path.join(ROOT, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as out:
        out.write(data)


def json_seeds():
    nested = lambda depth, inner=b"": b"[" * depth + inner + b"]" * depth
    for data in (nested(64), nested(65), nested(63, b"{}"), nested(64, b"{}"), nested(1000),
                 b'{"a":' * 64 + b"1" + b"}" * 64, b'{"a":' * 65 + b"1" + b"}" * 65,
                 b'{"a":1,"a":2}', b'{"a":1,"\\u0061":2}', b'{"\\u00e9":1,"\xc3\xa9":2}', b'{"\\ud83d\\ude00":1,"\xf0\x9f\x98\x80":2}',
                 b'{"x":{"k":[],"k":null}}', b'[{"id":1},{"id":1}]', b'{"a":{"a":{"a":1}}}', b'{"":1,"":2}',
                 b"{" + b",".join(b'"k%d":0' % i for i in range(40)) + b',"k7":1}'):
        write("json_check", data)


def checkpoint_seeds():
    body = (b"grey-audit-checkpoint v2\nlog " + b"a5" * 16 + b"\nsize 3\nroot " + leaf(b"root").hex().encode() +
            b"\ntime 1700000000000000000\nepoch 1\n")
    hmac_line = b"hmac " + mac(b"k", body).hex().encode() + b"\n"
    signature = b"ed25519 " + b"00" * 64 + b"\n"
    edited = hmac_line[:-2] + (b"0" if hmac_line[-2:-1] != b"0" else b"1") + b"\n"
    for data in (body + hmac_line, body + hmac_line + signature, body + edited + signature,
                 body.replace(b" v2\n", b" v1\n") + hmac_line + signature, body + b"hmac " + b"0" * 64 + b"\n" + signature):
        write("checkpoint", data)


def record_reader_seeds():
    header, records, previous = base_log()
    log = header + b"".join(records)
    write("record_reader", log)
    for epoch, mac_bytes in ((2, b"\x5a" * 32), (1 + 1024, b"\x5a" * 32), (1 + 1025, b"\x5a" * 32),
                             ((1 << 20) + 1, b"\x5a" * 32), (0xFFFFFFFF, b"\x5a" * 32), (1, b"\x5a" * 32), (2, b"\0" * 32)):
        write("record_reader", log + record(3, epoch, previous, b"{}", mac_bytes=mac_bytes))
    write("record_reader", log + record(3, 1, previous, b"[" * 100 + b"]" * 100))
    write("record_reader", log + record(3, 1, previous, b'{"a":1,"a":2}'))
    write("record_reader", log + records[1])  # a replay


def writer_tail_seeds():
    """The first byte picks the mode: odd means the target fixes up sequence numbers and chain."""
    _, records, previous = base_log()
    for epoch in (2, 1, 0, 1 + 1024, 1 + 1025, 0xFFFFFFFF):
        write("writer_tail", b"\x01" + record(3, epoch, previous, b"{}", mac_bytes=b"\x5a" * 32))
    forged = record(3, 2, previous, b"{}", mac_bytes=b"\0" * 32)
    write("writer_tail", b"\x01" + forged)                  # torn: its MAC never reached the disk
    write("writer_tail", b"\x00" + forged[:50])             # torn: cut short
    write("writer_tail", b"\x00" + b"\0" * 64)              # blocks never written
    write("writer_tail", b"\x00" + records[1])              # a replay, raw
    genuine = record(3, 1, previous, b'{"ok":1}')
    write("writer_tail", b"\x00" + genuine)                 # a genuine record of the key's epoch
    write("writer_tail", b"\x00" + genuine + record(4, 2, leaf(genuine), b"{}", mac_bytes=b"\x5a" * 32))
    write("writer_tail", b"\x00" + record(3, 2, previous, b"{}"))  # a genuine later epoch: followed


if __name__ == "__main__":
    json_seeds()
    checkpoint_seeds()
    record_reader_seeds()
    writer_tail_seeds()
