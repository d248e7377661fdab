import json
import os

import pytest

import grey


def test_append_checkpoint_verify(tmp_path, keys):
    verifier, writer = keys
    log_path, checkpoint = tmp_path / "audit.log", tmp_path / "cp-1"
    with grey.AuditLog(log_path, writer) as log:
        assert [log.append("run", {"step": i, "loss": 1.0 / (i + 1)}) for i in range(3)] == [0, 1, 2]
        assert log.append("note", '{"text": "raw JSON text is kept as it is"}') == 3
        log.checkpoint(checkpoint)
        info = log.info()
        assert (info.records, info.pending, info.epoch) == (4, 0, 0)
        report = log.verify(verifier, [checkpoint])
    assert report.intact and report.cause == "intact" and report.records == 4
    assert report.first_bad_record is None and report.bad_checkpoint is None
    assert report.head_hash == info.head_hash and report.log_id == info.log_id and len(report.root_hash) == 32
    d = report.to_dict()
    assert d["head_hash"] == info.head_hash.hex() and d["intact"] is True and d["records"] == 4
    assert grey.audit_verify(log_path, verifier, [checkpoint]) == report

    records = grey.audit_records(log_path)
    assert [r["type"] for r in records] == ["run", "run", "run", "note"]
    assert records[1]["payload"] == {"loss": 0.5, "step": 1}
    assert [r["sequence"] for r in grey.audit_records(log_path, start=2, max_records=1)] == [2]


def test_tampering_is_found(tmp_path, keys):
    verifier, writer = keys
    log_path = tmp_path / "audit.log"
    with grey.AuditLog(log_path, writer) as log:
        for i in range(3):
            log.append("run", {"value": 1000 + i})
    data = bytearray(log_path.read_bytes())
    at = data.index(b"1001")
    data[at:at + 4] = b"9001"
    log_path.write_bytes(bytes(data))
    report = grey.audit_verify(log_path, verifier)
    assert not report.intact and report.cause == "modified"
    assert report.first_bad_record == 1 and report.records == 1 and report.first_bad_offset > 0
    assert report.detail


def test_group_commit_and_proofs(tmp_path, keys):
    verifier, writer = keys
    log_path = tmp_path / "audit.log"
    with grey.AuditLog(log_path, writer, durability="group", group_records=1000, group_ms=60000) as log:
        assert log.append("run", {"i": 0}) is None  # queued
        assert log.info().pending == 1
        log.flush()
        assert log.info().records == 1
        for i in range(1, 5):
            log.append("run", {"i": i})
        log.checkpoint(tmp_path / "cp-5")
        artifact_id = log.proof_write(tmp_path / "proofs", {"figure": "rel_rmse", "value": 0.0123})
    assert len(artifact_id) == 16
    artifact = tmp_path / "proofs" / f"{artifact_id}.json"
    assert json.loads(artifact.read_text()) == {"figure": "rel_rmse", "value": 0.0123}
    assert grey.sha256_file(artifact).hex().startswith(artifact_id)
    proof = grey.proof_verify(log_path, verifier, artifact)
    assert proof.verified and proof.record == 5 and proof.log.intact and proof.sha256 == grey.sha256_file(artifact)

    inclusion = tmp_path / "inclusion.proof"
    inclusion.write_text(grey.audit_prove_inclusion(log_path, 2, 5))
    grey.audit_check_proof(inclusion, tmp_path / "cp-5")  # holds: returns
    consistency = grey.audit_prove_consistency(log_path, 2, 5)
    assert consistency
    with pytest.raises(grey.InvalidArgument):
        grey.audit_prove_inclusion(log_path, 7, 5)

    artifact.write_text('{"figure": "rel_rmse", "value": 0.0001}')
    edited = grey.proof_verify(log_path, verifier, artifact)
    assert not edited.verified and edited.record is None and edited.log.intact


def test_append_batch(tmp_path, keys):
    verifier, writer = keys
    log_path = tmp_path / "audit.log"
    with grey.AuditLog(log_path, writer, epoch_records=10) as log:
        assert log.append("single", {}) == 0
        assert log.append_batch([("run", {"i": i}) for i in range(3)] + [("note", '{"raw":true}'), ("empty", None)]) == 1
        assert log.append_batch([]) is None
        with pytest.raises(grey.InvalidArgument, match=r"^entry 1: payload is not valid JSON"):
            log.append_batch([("run", {"i": 3}), ("run", "{not json")])
        with pytest.raises(grey.InvalidArgument, match="entry 0: record types starting with 'grey.'"):
            log.append_batch([("grey.proof", {})])
        with pytest.raises(grey.InvalidArgument, match="longer than a key epoch"):
            log.append_batch([("run", {})] * 11)
        assert log.info().records == 6  # nothing of the refused batches
        # A batch that would outlast epoch 0 (10 records) starts epoch 1 instead.
        assert log.append_batch([("late", {"i": i}) for i in range(5)]) == 6
    records = grey.audit_records(log_path)
    assert [r["type"] for r in records] == ["single", "run", "run", "run", "note", "empty"] + ["late"] * 5
    assert records[4]["payload"] == {"raw": True} and records[5]["payload"] == {}
    assert [r["epoch"] for r in records] == [0] * 6 + [1] * 5
    for threads in (0, 1, 3):
        report = grey.audit_verify(log_path, verifier, threads=threads)
        assert report.intact and report.records == 11 and report.last_epoch == 1
    with pytest.raises(grey.InvalidArgument, match="at most 256"):
        grey.audit_verify(log_path, verifier, threads=257)

    second_verifier, second_writer = tmp_path / "second.key", tmp_path / "second.key.writer"
    grey.audit_keygen(second_verifier, second_writer)
    with grey.AuditLog(tmp_path / "group.log", second_writer, durability="group", group_records=4) as log:
        assert log.append_batch([("g", {"i": i}) for i in range(10)]) is None  # queued
        log.flush()
        assert log.info().records == 10
    assert grey.audit_verify(tmp_path / "group.log", second_verifier).records == 10


def test_audit_errors(tmp_path, keys):
    verifier, writer = keys
    with pytest.raises(grey.InvalidArgument):
        grey.audit_keygen(verifier)  # refuses to overwrite
    with pytest.raises(ValueError, match="both"):
        grey.audit_keygen(tmp_path / "k", ed25519_private=tmp_path / "p")
    with pytest.raises(ValueError, match="durability"):
        grey.AuditLog(tmp_path / "a.log", writer, durability="sometimes")
    os.chmod(writer, 0o644)
    with pytest.raises(grey.PermissionDenied):
        grey.AuditLog(tmp_path / "a.log", writer)
    os.chmod(writer, 0o600)
    log = grey.AuditLog(tmp_path / "a.log", writer)
    with pytest.raises(grey.InvalidArgument, match="grey."):
        log.append("grey.mine", {})  # the "grey." prefix is reserved
    with pytest.raises(grey.InvalidArgument):
        log.append("bad type!", {})
    log.close()
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.append("run", {})
    with pytest.raises(grey.NotFound):
        grey.audit_verify(tmp_path / "missing.log", verifier)


def test_signed_checkpoints(tmp_path):
    verifier, writer = tmp_path / "k", tmp_path / "k.writer"
    private, public = tmp_path / "k.ed25519", tmp_path / "k.ed25519.pub"
    grey.audit_keygen(verifier, writer, ed25519_private=private, ed25519_public=public)
    with grey.AuditLog(tmp_path / "a.log", writer, signing_key=private) as log:
        log.append("run", {"ok": True})
        log.checkpoint(tmp_path / "cp")
    assert grey.audit_verify(tmp_path / "a.log", verifier, [tmp_path / "cp"], public_key=public).intact


def test_to_dict_is_greyctl_json(tmp_path, keys, greyctl):
    """One vocabulary: greyctl's --json documents and the bindings' to_dict() are equal, key for key and
    null for null, for an intact log, a tampered one, and a proof artifact."""
    import json
    import subprocess

    verifier, writer = keys
    log_path = tmp_path / "audit.log"
    with grey.AuditLog(log_path, writer) as log:
        for i in range(3):
            log.append("run", {"value": 1000 + i})
        artifact_id = log.proof_write(tmp_path, {"results": {"x": 1}})

    def greyctl_json(*args):
        out = subprocess.run([str(greyctl), "--no-env", *args, "--json"], capture_output=True, text=True)
        return out.returncode, json.loads(out.stdout)

    assert greyctl_json("audit", "verify", "--log", str(log_path), "--key", str(verifier)) == \
        (0, grey.audit_verify(log_path, verifier).to_dict())
    artifact = tmp_path / f"{artifact_id}.json"
    assert greyctl_json("proof", "verify", str(artifact), "--log", str(log_path), "--key", str(verifier)) == \
        (0, grey.proof_verify(log_path, verifier, artifact).to_dict())

    data = bytearray(log_path.read_bytes())
    at = data.index(b"1001")
    data[at:at + 4] = b"9001"
    log_path.write_bytes(bytes(data))
    code, document = greyctl_json("audit", "verify", "--log", str(log_path), "--key", str(verifier))
    assert code == 1 and document == grey.audit_verify(log_path, verifier).to_dict()
    assert document["first_bad_record"] == 1 and isinstance(document["first_bad_offset"], int)
