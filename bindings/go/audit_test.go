package grey_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"libgrey/grey"
)

func keys(t *testing.T) (dir, verifier, writer string) {
	t.Helper()
	dir = t.TempDir()
	verifier, writer = filepath.Join(dir, "audit.key"), filepath.Join(dir, "audit.key.writer")
	if err := grey.AuditKeygen(grey.KeygenOptions{VerifierKey: verifier, WriterKey: writer}); err != nil {
		t.Fatal(err)
	}
	return dir, verifier, writer
}

func TestAuditAppendCheckpointVerify(t *testing.T) {
	dir, verifier, writer := keys(t)
	logPath, checkpoint := filepath.Join(dir, "audit.log"), filepath.Join(dir, "cp-1")
	log, err := grey.OpenAuditLog(logPath, writer)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	for i := 0; i < 3; i++ {
		seq, err := log.Append("run", map[string]any{"step": i})
		if err != nil || seq != uint64(i) {
			t.Fatalf("append %d: %d %v", i, seq, err)
		}
	}
	if seq, err := log.Append("note", `{"text":"kept as it is"}`); err != nil || seq != 3 {
		t.Fatalf("append text: %d %v", seq, err)
	}
	if err := log.Checkpoint(checkpoint); err != nil {
		t.Fatal(err)
	}
	info, err := log.Info()
	if err != nil || info.Records != 4 || info.Pending != 0 {
		t.Fatalf("info %+v %v", info, err)
	}
	report, err := log.Verify(verifier, []string{checkpoint}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !report.Intact() || report.Records != 4 || report.FirstBadRecord != -1 || report.BadCheckpoint != -1 ||
		report.HeadHash != info.HeadHash || report.LogID != info.LogID {
		t.Errorf("report %+v, info %+v", report, info)
	}
	// The keys and nulls of `greyctl audit verify --json`.
	if m := report.ToMap(); m["cause"] != "intact" || len(m["root_hash"].(string)) != 64 || len(m["head_hash"].(string)) != 64 ||
		m["first_bad_record"] != nil || m["first_bad_offset"] != nil || m["bad_checkpoint"] != nil {
		t.Errorf("ToMap %v", m)
	}
	records, err := grey.AuditRecords(logPath, 1, 2)
	if err != nil || len(records) != 2 || records[0]["type"] != "run" || records[1]["sequence"] != float64(2) {
		t.Errorf("records %v %v", records, err)
	}

	proof := filepath.Join(dir, "inclusion.proof")
	text, err := grey.AuditProveInclusion(logPath, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(proof, []byte(text), 0o644)
	if err := grey.AuditCheckProof(proof, checkpoint, "", ""); err != nil {
		t.Errorf("inclusion proof: %v", err)
	}
	if _, err := grey.AuditProveConsistency(logPath, 1, 4); err != nil {
		t.Errorf("consistency proof: %v", err)
	}
}

func TestAuditTamperingAndProofArtifacts(t *testing.T) {
	dir, verifier, writer := keys(t)
	logPath := filepath.Join(dir, "audit.log")
	log, err := grey.OpenAuditLog(logPath, writer, grey.WithGroupCommit(1000, 60000))
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := log.Append("run", map[string]int{"value": 1000}); err != nil || seq != grey.NoSequence {
		t.Fatalf("queued append: %d %v", seq, err)
	}
	log.Append("run", map[string]int{"value": 1001})
	id, err := log.ProofWrite(filepath.Join(dir, "proofs"), map[string]any{"figure": "rel_rmse", "value": 0.0123})
	if err != nil || len(id) != 16 {
		t.Fatalf("proof write: %q %v", id, err)
	}
	log.Close()
	if _, err := log.Append("run", nil); !errors.Is(err, grey.ErrClosed) {
		t.Errorf("closed log: %v", err)
	}
	artifact := filepath.Join(dir, "proofs", id+".json")
	proof, err := grey.ProofVerify(logPath, verifier, artifact)
	if err != nil || !proof.Verified || proof.Record != 2 || !proof.Log.Intact() {
		t.Fatalf("proof verify %+v %v", proof, err)
	}
	digest, err := grey.SHA256File(artifact)
	if err != nil || digest != proof.SHA256 {
		t.Errorf("sha256 %x vs %x (%v)", digest, proof.SHA256, err)
	}

	data, _ := os.ReadFile(logPath)
	at := bytes.Index(data, []byte("1001"))
	copy(data[at:], "9001")
	os.WriteFile(logPath, data, 0o640)
	report, err := grey.AuditVerify(logPath, verifier, nil, "")
	if err != nil || report.Cause != "modified" || report.FirstBadRecord != 1 || report.Records != 1 || report.Detail == "" {
		t.Errorf("tampered: %+v %v", report, err)
	}
}

func TestAuditAppendBatch(t *testing.T) {
	dir, verifier, writer := keys(t)
	logPath := filepath.Join(dir, "audit.log")
	log, err := grey.OpenAuditLog(logPath, writer, grey.WithEpochs(10, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if _, err := log.Append("single", nil); err != nil {
		t.Fatal(err)
	}
	entries := []grey.AuditEntry{
		{Type: "run", Payload: map[string]any{"i": 0}},
		{Type: "run", Payload: map[string]any{"i": 1}},
		{Type: "note", Payload: `{"raw":true}`},
	}
	if first, err := log.AppendBatch(entries); err != nil || first != 1 {
		t.Fatalf("AppendBatch: %d %v", first, err)
	}
	if first, err := log.AppendBatch(nil); err != nil || first != grey.NoSequence {
		t.Fatalf("empty batch: %d %v", first, err)
	}
	_, err = log.AppendBatch([]grey.AuditEntry{{Type: "run", Payload: nil}, {Type: "run", Payload: "{not json"}})
	if !errors.Is(err, grey.ErrInvalidArgument) || !strings.Contains(err.Error(), "entry 1: payload is not valid JSON") {
		t.Errorf("bad entry: %v", err)
	}
	_, err = log.AppendBatch([]grey.AuditEntry{{Type: "run", Payload: nil}, {Type: "run", Payload: func() {}}})
	if !errors.Is(err, grey.ErrInvalidArgument) || !strings.Contains(err.Error(), "entry 1: the payload is not JSON") {
		t.Errorf("unmarshallable entry: %v", err)
	}
	late := make([]grey.AuditEntry, 7) // 4 + 7 records would outlast the epoch of 10: the key advances first
	for i := range late {
		late[i] = grey.AuditEntry{Type: "late", Payload: map[string]any{"i": i}}
	}
	if first, err := log.AppendBatch(late); err != nil || first != 4 {
		t.Fatalf("late batch: %d %v", first, err)
	}
	for _, threads := range []uint32{0, 1, 3} {
		report, err := log.Verify(verifier, nil, "", grey.WithVerifyThreads(threads))
		if err != nil || !report.Intact() || report.Records != 11 || report.LastEpoch != 1 {
			t.Errorf("threads %d: %+v %v", threads, report, err)
		}
	}
	if _, err := grey.AuditVerify(logPath, verifier, nil, "", grey.WithVerifyThreads(257)); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("257 threads: %v", err)
	}
	records, err := grey.AuditRecords(logPath, 0, 0)
	if err != nil || len(records) != 11 || records[3]["type"] != "note" || records[4]["epoch"] != float64(1) || records[3]["epoch"] != float64(0) {
		t.Errorf("records %v %v", records, err)
	}
}

func TestAuditErrors(t *testing.T) {
	dir, verifier, writer := keys(t)
	if err := grey.AuditKeygen(grey.KeygenOptions{VerifierKey: verifier}); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("overwrite: %v", err)
	}
	os.Chmod(writer, 0o644)
	if _, err := grey.OpenAuditLog(filepath.Join(dir, "a.log"), writer); !errors.Is(err, grey.ErrPermissionDenied) {
		t.Errorf("loose key: %v", err)
	}
	os.Chmod(writer, 0o600)
	log, err := grey.OpenAuditLog(filepath.Join(dir, "a.log"), writer)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if _, err := log.Append("grey.mine", nil); !errors.Is(err, grey.ErrInvalidArgument) || !strings.Contains(err.Error(), "grey.") {
		t.Errorf("reserved type: %v", err)
	}
	if _, err := log.Append("run", make(chan int)); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("unmarshallable payload: %v", err)
	}
	if _, err := grey.AuditVerify(filepath.Join(dir, "missing.log"), verifier, nil, ""); !errors.Is(err, grey.ErrNotFound) {
		t.Errorf("missing log: %v", err)
	}
}

func TestBufferMapIsTheBuffersMemory(t *testing.T) {
	ctx := newContext(t, grey.WithBackends("host"))
	buf, err := ctx.NewBuffer(0, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	buf.WriteAt([]byte("libgrey"), 8)
	m, err := buf.Map()
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != grey.MemoryHost || m.Size != 64 || m.VendorDevice != 0 || m.Address == 0 {
		t.Errorf("mapping %+v", m)
	}
	if err := m.Unmap(); err != nil {
		t.Fatal(err)
	}
	m.Unmap() // a second Unmap of the same mapping is a no-op
	m2, _ := buf.Map()
	defer m2.Unmap()
	if m2.Address != m.Address {
		t.Errorf("the address moved")
	}
}
