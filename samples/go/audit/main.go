// Command audit keeps a signed audit log: it generates keys, appends three records, writes a
// checkpoint, then verifies the log and the checkpoint with the verifier key and prints the verdict.
//
//	go run ./samples/go/audit [DIR]
//
// The files (audit.key, audit.key.writer, audit.log, checkpoint-1) go to DIR, which must not hold
// them yet (keys are never overwritten); without DIR, to a temporary directory removed at the end.
package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"libgrey/grey"
)

func run(dir string) (bool, error) {
	verifier, writer := filepath.Join(dir, "audit.key"), filepath.Join(dir, "audit.key.writer")
	logPath, checkpoint := filepath.Join(dir, "audit.log"), filepath.Join(dir, "checkpoint-1")
	if err := grey.AuditKeygen(grey.KeygenOptions{VerifierKey: verifier, WriterKey: writer}); err != nil {
		return false, err
	}
	log, err := grey.OpenAuditLog(logPath, writer)
	if err != nil {
		return false, err
	}
	for step := 0; step < 3; step++ {
		seq, err := log.Append("sample.step", map[string]any{"step": step, "language": "go"})
		if err != nil {
			log.Close()
			return false, err
		}
		fmt.Printf("appended record %d\n", seq)
	}
	err = log.Checkpoint(checkpoint)
	log.Close()
	if err != nil {
		return false, err
	}
	report, err := grey.AuditVerify(logPath, verifier, []string{checkpoint}, "")
	if err != nil {
		return false, err
	}
	fmt.Printf("verify: cause %s, records %d, head %s, root %s, log_id %s\n", report.Cause, report.Records,
		hex.EncodeToString(report.HeadHash[:]), hex.EncodeToString(report.RootHash[:]), hex.EncodeToString(report.LogID[:]))
	return report.Intact(), nil
}

func main() { os.Exit(exitCode()) }

// exitCode runs the sample; a function of its own so that the temporary directory's removal is
// deferred past the run but not past os.Exit.
func exitCode() int {
	dir := ""
	if len(os.Args) > 1 {
		dir = os.Args[1]
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, "audit:", err)
			return 1
		}
	} else {
		tmp, err := os.MkdirTemp("", "grey-audit-sample-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "audit:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	intact, err := run(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "audit:", err)
		return 1
	}
	if !intact {
		return 1
	}
	return 0
}
