package grey

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strings"
	"unsafe"

	"libgrey/grey/capi"
)

// NoSequence is the sequence AuditLog.Append returns for a record queued for group commit.
const NoSequence = math.MaxUint64

// KeygenOptions names the key files AuditKeygen writes (mode 0600; existing files are refused).
type KeygenOptions struct {
	VerifierKey    string // required: keep it offline, it is what verifies the whole log
	WriterKey      string // optional: the key OpenAuditLog takes
	Ed25519Private string // optional, with Ed25519Public: a key pair for signing checkpoints
	Ed25519Public  string
}

// AuditKeygen generates a fresh key and writes the files o names.
func AuditKeygen(o KeygenOptions) error {
	if (o.Ed25519Private == "") != (o.Ed25519Public == "") {
		return &Error{Status: int(StatusInvalidArgument), Message: "grey: give both Ed25519 paths, or neither"}
	}
	raw := capi.NewGrey_audit_keygen_options()
	defer capi.DeleteGrey_audit_keygen_options(raw)
	raw.SetVerifier_key_path(o.VerifierKey)
	if o.WriterKey != "" {
		raw.SetWriter_key_path(o.WriterKey)
	}
	if o.Ed25519Private != "" {
		raw.SetEd25519(1)
		raw.SetEd25519_private_path(o.Ed25519Private)
		raw.SetEd25519_public_path(o.Ed25519Public)
	}
	return capi.Grey_audit_keygen(raw)
}

type auditOptions struct {
	signingKey   string
	group        bool
	groupRecords uint32
	groupMs      uint32
	epochRecords uint64
	epochSeconds uint64
}

// AuditOption configures OpenAuditLog.
type AuditOption func(*auditOptions)

// WithSigningKey signs checkpoints with the Ed25519 private key (PEM) at path.
func WithSigningKey(path string) AuditOption { return func(o *auditOptions) { o.signingKey = path } }

// WithGroupCommit queues records and writes them every records records or ms milliseconds, instead of
// syncing each append before it returns.
func WithGroupCommit(records, ms uint32) AuditOption {
	return func(o *auditOptions) { o.group, o.groupRecords, o.groupMs = true, records, ms }
}

// WithEpochs advances the key after records records or seconds seconds (0: never by that measure).
func WithEpochs(records, seconds uint64) AuditOption {
	return func(o *auditOptions) { o.epochRecords, o.epochSeconds = records, seconds }
}

// AuditLog is an audit log open for appending. Safe for concurrent use. Close flushes and closes it
// (a finalizer is the safety net).
type AuditLog struct {
	guarded[capi.Grey_audit_log]
	Path string
}

// OpenAuditLog opens (or creates) the log at logPath with the writer key at keyPath.
func OpenAuditLog(logPath, keyPath string, opts ...AuditOption) (*AuditLog, error) {
	o := auditOptions{groupRecords: 256, groupMs: 10, epochRecords: 10000, epochSeconds: 3600}
	for _, opt := range opts {
		opt(&o)
	}
	raw := capi.NewGrey_audit_options()
	defer capi.DeleteGrey_audit_options(raw)
	raw.SetLog_path(logPath)
	raw.SetKey_path(keyPath)
	if o.signingKey != "" {
		raw.SetSigning_key_path(o.signingKey)
	}
	if o.group {
		raw.SetDurability(capi.GREY_AUDIT_DURABILITY_GROUP)
	}
	raw.SetGroup_records(uint(o.groupRecords))
	raw.SetGroup_ms(uint(o.groupMs))
	raw.SetEpoch_records(o.epochRecords)
	raw.SetEpoch_seconds(o.epochSeconds)
	out := []uintptr{0}
	if err := capi.Grey_audit_log_create(raw, out); err != nil {
		return nil, err
	}
	l := &AuditLog{Path: logPath}
	l.set(capi.SwigcptrGrey_audit_log(out[0]))
	runtime.SetFinalizer(l, (*AuditLog).Close)
	return l, nil
}

// Close flushes what is queued and closes the log (call Flush first to see its errors). Safe to call
// more than once.
func (l *AuditLog) Close() error {
	l.close(capi.Grey_audit_log_destroy)
	runtime.SetFinalizer(l, nil)
	return nil
}

// jsonText is payload as JSON text: a string or []byte as it is, anything else through json.Marshal.
func jsonText(payload any) (string, error) {
	switch p := payload.(type) {
	case nil:
		return "{}", nil
	case string:
		return p, nil
	case []byte:
		return string(p), nil
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return "", &Error{Status: int(StatusInvalidArgument), Message: "grey: the payload is not JSON: " + err.Error()}
	}
	return string(data), nil
}

// Append adds a record of typ with a JSON payload (a string or []byte is taken as JSON text; anything
// else is marshalled). It returns the record's sequence number, or NoSequence when the record was
// queued for group commit.
func (l *AuditLog) Append(typ string, payload any) (uint64, error) {
	text, err := jsonText(payload)
	if err != nil {
		return 0, err
	}
	seq := []uint64{0}
	if err := l.with(func(h capi.Grey_audit_log) error { return capi.Grey_audit_append(h, typ, text, seq) }); err != nil {
		return 0, err
	}
	return seq[0], nil
}

// AuditEntry is one record of a batch: its type and its JSON payload (as Append takes them).
type AuditEntry struct {
	Type    string
	Payload any
}

// AppendBatch appends entries in one call: consecutive in the log, sealed with one key epoch and
// written at once, so that all of them reach the log or none does. A refused entry fails the call with
// an ErrInvalidArgument naming it by its index ("entry 3: ...") and appends none of them. It returns
// the first record's sequence number (durable, as after Append), or NoSequence when the batch was
// queued for group commit or was empty. A batch holds at most 64 MiB of records, and no more records
// than the log's epoch length.
func (l *AuditLog) AppendBatch(entries []AuditEntry) (uint64, error) {
	out := []uintptr{0}
	if err := capi.Grey_audit_batch_create(out); err != nil {
		return 0, err
	}
	batch := capi.SwigcptrGrey_audit_batch(out[0])
	defer capi.Grey_audit_batch_destroy(batch)
	for i, e := range entries {
		text, err := jsonText(e.Payload)
		if err != nil {
			return 0, &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: entry %d: %s", i, strings.TrimPrefix(err.(*Error).Message, "grey: "))}
		}
		if err := capi.Grey_audit_batch_add(batch, e.Type, text); err != nil {
			return 0, err
		}
	}
	first := []uint64{0}
	if err := l.with(func(h capi.Grey_audit_log) error { return capi.Grey_audit_append_batch(h, batch, first) }); err != nil {
		return 0, err
	}
	return first[0], nil
}

// Flush writes and syncs every queued record, and reports an error a background group commit met.
func (l *AuditLog) Flush() error {
	return l.with(func(h capi.Grey_audit_log) error { return capi.Grey_audit_flush(h) })
}

// Checkpoint flushes, then writes a signed checkpoint of the whole log to path. Keep it off this machine.
func (l *AuditLog) Checkpoint(path string) error {
	return l.with(func(h capi.Grey_audit_log) error { return capi.Grey_audit_checkpoint(h, path) })
}

// AuditLogInfo is the state of an open log.
type AuditLogInfo struct {
	Epoch          uint32
	Records        uint64
	Pending        uint64
	RecoveredBytes uint64
	LogID          [16]byte
	HeadHash       [32]byte
}

// bytesAt copies n bytes of a byte array member of a libgrey struct.
func bytesAt(p *byte, into []byte) { copy(into, unsafe.Slice(p, len(into))) }

// Info is the log's state now.
func (l *AuditLog) Info() (AuditLogInfo, error) {
	var info AuditLogInfo
	err := l.with(func(h capi.Grey_audit_log) error {
		raw := capi.NewGrey_audit_log_info()
		defer capi.DeleteGrey_audit_log_info(raw)
		if err := capi.Grey_audit_log_info_get(h, raw); err != nil {
			return err
		}
		info = AuditLogInfo{Epoch: uint32(raw.GetEpoch()), Records: raw.GetRecords(), Pending: raw.GetPending(),
			RecoveredBytes: raw.GetRecovered_bytes()}
		bytesAt(raw.GetLog_id(), info.LogID[:])
		bytesAt(raw.GetHead_hash(), info.HeadHash[:])
		return nil
	})
	return info, err
}

// Verify flushes, then verifies this log with the verifier key (see AuditVerify). Do not append from
// other goroutines meanwhile: a record being written shows as a malformed tail.
func (l *AuditLog) Verify(keyPath string, checkpoints []string, publicKey string, opts ...VerifyOption) (*AuditReport, error) {
	if err := l.Flush(); err != nil {
		return nil, err
	}
	return AuditVerify(l.Path, keyPath, checkpoints, publicKey, opts...)
}

// ProofWrite stores artifact (JSON text kept byte for byte, or a value to marshal) as
// <directory>/<id>.json, logs its SHA-256 in a grey.proof record, and returns the id.
func (l *AuditLog) ProofWrite(directory string, artifact any) (string, error) {
	text, err := jsonText(artifact)
	if err != nil {
		return "", err
	}
	var id string
	err = l.with(func(h capi.Grey_audit_log) error {
		var err error
		id, err = readText(func(b []byte, n []uint64) error { return capi.Grey_proof_write(h, directory, text, b, n) })
		return err
	})
	return id, err
}

// AuditReport is the verdict of a verification. Cause is "intact" or what was found ("modified",
// "deleted", "reordered", "inserted", "truncated", "resealed", "foreign_log", "forked", "malformed").
type AuditReport struct {
	Cause          string
	Records        uint64 // records that verified, in order, before the first bad one
	FirstBadRecord int64  // -1 when there is none
	FirstBadOffset uint64
	BadCheckpoint  int // -1 when there is none
	LastEpoch      uint32
	LogID          [16]byte
	HeadHash       [32]byte
	RootHash       [32]byte
	Detail         string
}

// Intact reports whether every record and checkpoint verified.
func (r *AuditReport) Intact() bool { return r.Cause == "intact" }

// ToMap is `greyctl audit verify --json`'s document: hashes in hex, and nil (null) for first_bad_record,
// first_bad_offset and bad_checkpoint when there is none.
func (r *AuditReport) ToMap() map[string]any {
	var firstBad, firstBadOffset, badCheckpoint any
	if r.FirstBadRecord >= 0 {
		firstBad, firstBadOffset = r.FirstBadRecord, r.FirstBadOffset
	}
	if r.BadCheckpoint >= 0 {
		badCheckpoint = r.BadCheckpoint
	}
	return map[string]any{"cause": r.Cause, "intact": r.Intact(), "records": r.Records,
		"first_bad_record": firstBad, "first_bad_offset": firstBadOffset, "bad_checkpoint": badCheckpoint,
		"last_epoch": r.LastEpoch, "log_id": hex.EncodeToString(r.LogID[:]), "head_hash": hex.EncodeToString(r.HeadHash[:]),
		"root_hash": hex.EncodeToString(r.RootHash[:]), "detail": r.Detail}
}

func newAuditReport(raw capi.Grey_audit_report) *AuditReport {
	r := &AuditReport{Cause: capi.Grey_audit_cause_name(raw.GetCause()), Records: raw.GetRecords(), FirstBadRecord: -1,
		FirstBadOffset: raw.GetFirst_bad_offset(), BadCheckpoint: -1, LastEpoch: uint32(raw.GetLast_epoch()),
		Detail: raw.GetDetail()}
	if r.Cause == "" {
		r.Cause = fmt.Sprintf("cause %d", int(raw.GetCause()))
	}
	if bad := raw.GetFirst_bad_record(); bad != math.MaxUint64 {
		r.FirstBadRecord = int64(bad)
	}
	if bad := raw.GetBad_checkpoint(); uint32(bad) != math.MaxUint32 {
		r.BadCheckpoint = int(bad)
	}
	bytesAt(raw.GetLog_id(), r.LogID[:])
	bytesAt(raw.GetHead_hash(), r.HeadHash[:])
	bytesAt(raw.GetRoot_hash(), r.RootHash[:])
	return r
}

// VerifyOption configures AuditVerify.
type VerifyOption func(capi.Grey_audit_verify_options)

// WithVerifyThreads hashes the log on n threads (0, the default: one per core; at most 256). The
// report is the same whatever their number.
func WithVerifyThreads(n uint32) VerifyOption {
	return func(o capi.Grey_audit_verify_options) { o.SetThreads(uint(n)) }
}

// AuditVerify verifies the whole log at logPath with the verifier key, and each checkpoint file
// against it (with publicKey, not "", their Ed25519 signatures too). The verdict is the report's
// Cause; an error means verification could not run (a missing file, a bad key file).
func AuditVerify(logPath, keyPath string, checkpoints []string, publicKey string, opts ...VerifyOption) (*AuditReport, error) {
	raw := capi.NewGrey_audit_verify_options()
	defer capi.DeleteGrey_audit_verify_options(raw)
	for _, opt := range opts {
		opt(raw)
	}
	raw.SetLog_path(logPath)
	raw.SetKey_path(keyPath)
	if publicKey != "" {
		raw.SetPublic_key_path(publicKey)
	}
	for _, c := range checkpoints {
		if err := capi.Grey_swig_audit_verify_add_checkpoint(raw, c); err != nil {
			return nil, err
		}
	}
	report := capi.NewGrey_audit_report()
	defer capi.DeleteGrey_audit_report(report)
	if err := capi.Grey_audit_verify(raw, report); err != nil {
		return nil, err
	}
	return newAuditReport(report), nil
}

// AuditRecords is the records from index from on (at most max; 0: all), each with "sequence",
// "time_ns", "epoch", "type", "payload" and "hash". Reads structure only: it proves nothing.
func AuditRecords(logPath string, from, max uint64) ([]map[string]any, error) {
	text, err := readText(func(b []byte, n []uint64) error { return capi.Grey_audit_records_json(logPath, from, max, b, n) })
	if err != nil {
		return nil, err
	}
	var records []map[string]any
	if err := json.Unmarshal([]byte(text), &records); err != nil {
		return nil, &Error{Status: int(StatusInternal), Message: "grey: libgrey's records are not JSON: " + err.Error()}
	}
	return records, nil
}

// AuditProveInclusion is an RFC 6962 inclusion proof of record index in the tree of the first treeSize records.
func AuditProveInclusion(logPath string, index, treeSize uint64) (string, error) {
	return readText(func(b []byte, n []uint64) error {
		return capi.Grey_audit_prove_inclusion(logPath, index, treeSize, b, n)
	})
}

// AuditProveConsistency is an RFC 6962 consistency proof between the trees of oldSize and newSize records.
func AuditProveConsistency(logPath string, oldSize, newSize uint64) (string, error) {
	return readText(func(b []byte, n []uint64) error {
		return capi.Grey_audit_prove_consistency(logPath, oldSize, newSize, b, n)
	})
}

// AuditCheckProof is nil when the proof file holds against the checkpoint (an inclusion proof) or
// between oldCheckpoint and checkpoint (a consistency proof; "" for none), and an ErrCorrupt with the
// reason when it does not. With publicKey (not "") the checkpoints' signatures are checked too.
func AuditCheckProof(proof, checkpoint, oldCheckpoint, publicKey string) error {
	return capi.Grey_audit_check_proof(proof, checkpoint, oldCheckpoint, publicKey)
}

// ProofReport is the verdict of ProofVerify: Verified when the log is intact and holds the artifact's
// exact SHA-256 in a grey.proof record (Record, else -1).
type ProofReport struct {
	Verified bool
	Record   int64
	SHA256   [32]byte
	Log      *AuditReport
}

// ToMap is `greyctl proof verify --json`'s document: the SHA-256 in hex, record nil when there is none.
func (r *ProofReport) ToMap() map[string]any {
	var record any
	if r.Record >= 0 {
		record = r.Record
	}
	return map[string]any{"verified": r.Verified, "record": record, "sha256": hex.EncodeToString(r.SHA256[:]), "log": r.Log.ToMap()}
}

// ProofVerify verifies the log and looks for a grey.proof record holding the artifact file's SHA-256.
func ProofVerify(logPath, keyPath, artifactPath string) (*ProofReport, error) {
	raw := capi.NewGrey_proof_report()
	defer capi.DeleteGrey_proof_report(raw)
	log := capi.NewGrey_audit_report()
	defer capi.DeleteGrey_audit_report(log)
	if err := capi.Grey_proof_verify(logPath, keyPath, artifactPath, raw, log); err != nil {
		return nil, err
	}
	r := &ProofReport{Verified: raw.GetVerified() != 0, Record: -1, Log: newAuditReport(log)}
	if record := raw.GetRecord(); record != math.MaxUint64 {
		r.Record = int64(record)
	}
	bytesAt(raw.GetSha256(), r.SHA256[:])
	return r, nil
}

// SHA256File is the SHA-256 of a file's contents.
func SHA256File(path string) ([32]byte, error) {
	var digest [32]byte
	err := capi.Grey_audit_sha256_file(path, digest[:])
	return digest, err
}
