package grey_test

// Strings holding a NUL byte never reach libgrey cut short: C reads a const char* only up to its first
// NUL, so "a.safetensors\x00/x" would open a.safetensors and a record type "t1\x00x" would be stored as
// "t1". capi's string typemap refuses them with a *capi.Error of GREY_ERROR_INVALID_ARGUMENT naming the
// parameter, without calling the library. The parameters and members checked here are read from grey.h
// (bindings/tools/greyh.py), so one that grey.h gains fails this test until it is listed below.

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"libgrey/grey"
	"libgrey/grey/capi"
)

// headerStrings is every const char* parameter and struct member of grey.h, by function and struct.
func headerStrings(t *testing.T) (parameters, members map[string][]string) {
	t.Helper()
	out, err := exec.Command("python3", "../tools/greyh.py", "strings", "../../include/grey.h").Output()
	if err != nil {
		t.Fatalf("greyh.py strings: %v", err)
	}
	var parsed struct{ Parameters, Members map[string][]string }
	if err := json.Unmarshal(out, &parsed); err != nil {
		t.Fatal(err)
	}
	if len(parsed.Parameters["grey_model_create"]) != 1 || len(parsed.Members["grey_audit_options"]) == 0 {
		t.Fatalf("greyh.py found too little in grey.h: %s", out)
	}
	return parsed.Parameters, parsed.Members
}

// refused checks that err is the refusal of a string whose NUL is at byte 1, by `where`.
func refused(t *testing.T, err error, where string) {
	t.Helper()
	var e *grey.Error
	if !errors.As(err, &e) || !errors.Is(err, grey.ErrInvalidArgument) ||
		!strings.HasPrefix(e.Message, where+" holds a NUL byte (at byte 1)") {
		t.Errorf("want %q refused, got %v", where, err)
	}
}

// Placeholders for the arguments that are not under test: the call is refused before it runs.
var (
	noConfig = capi.SwigcptrGrey_config(0)
	noWriter = capi.SwigcptrGrey_model_writer(0)
	noLog    = capi.SwigcptrGrey_audit_log(0)
	noBatch  = capi.SwigcptrGrey_audit_batch(0)
)

func handle() []uintptr             { return []uintptr{0} }
func length() []uint64              { return []uint64{0} }
func buffer() []byte                { return make([]byte, 64) }
func digest() []byte                { return make([]byte, 32) }
func tensor() capi.Grey_tensor_desc { return capi.NewGrey_tensor_desc() }

// stringCalls calls each grey.h function that takes strings, with s as those strings in order.
var stringCalls = map[string]func(s []string) error{
	"grey_config_create":             func(s []string) error { return capi.Grey_config_create(s[0], handle()) },
	"grey_config_load_file":          func(s []string) error { return capi.Grey_config_load_file(noConfig, s[0]) },
	"grey_config_load_string":        func(s []string) error { return capi.Grey_config_load_string(noConfig, s[0], s[1]) },
	"grey_config_set":                func(s []string) error { return capi.Grey_config_set(noConfig, s[0], s[1]) },
	"grey_config_get":                func(s []string) error { return capi.Grey_config_get(noConfig, s[0], buffer(), length()) },
	"grey_model_create":                func(s []string) error { return capi.Grey_model_create(s[0], handle()) },
	"grey_model_writer_set_metadata": func(s []string) error { return capi.Grey_model_writer_set_metadata(noWriter, s[0], s[1]) },
	"grey_model_writer_add_tensor": func(s []string) error {
		return capi.Grey_model_writer_add_tensor(noWriter, s[0], tensor(), 0, buffer())
	},
	"grey_model_writer_write": func(s []string) error { return capi.Grey_model_writer_write(noWriter, s[0]) },
	"grey_model_writer_declare_tensor": func(s []string) error {
		return capi.Grey_model_writer_declare_tensor(noWriter, s[0], tensor(), 0, length())
	},
	"grey_model_writer_open": func(s []string) error {
		return capi.Grey_model_writer_open(noWriter, s[0], capi.NewGrey_model_write_options())
	},
	"grey_quant_params_from_name": func(s []string) error { return capi.Grey_quant_params_from_name(s[0], capi.NewGrey_quant_params()) },
	"grey_model_quantize": func(s []string) error {
		return capi.Grey_model_quantize(s[0], s[1], s[2], capi.NewGrey_model_quant_options(), handle())
	},
	"grey_model_dequantize": func(s []string) error {
		return capi.Grey_model_dequantize(s[0], s[1], capi.NewGrey_model_dequant_options())
	},
	"grey_audit_append":     func(s []string) error { return capi.Grey_audit_append(noLog, s[0], s[1], length()) },
	"grey_audit_checkpoint": func(s []string) error { return capi.Grey_audit_checkpoint(noLog, s[0]) },
	"grey_audit_batch_add":  func(s []string) error { return capi.Grey_audit_batch_add(noBatch, s[0], s[1]) },
	"grey_audit_records_json": func(s []string) error {
		return capi.Grey_audit_records_json(s[0], 0, 0, buffer(), length())
	},
	"grey_audit_prove_inclusion": func(s []string) error {
		return capi.Grey_audit_prove_inclusion(s[0], 0, 1, buffer(), length())
	},
	"grey_audit_prove_consistency": func(s []string) error {
		return capi.Grey_audit_prove_consistency(s[0], 0, 1, buffer(), length())
	},
	"grey_audit_check_proof": func(s []string) error { return capi.Grey_audit_check_proof(s[0], s[1], s[2], s[3]) },
	"grey_audit_checkpoint_read": func(s []string) error {
		return capi.Grey_audit_checkpoint_read(s[0], capi.NewGrey_audit_checkpoint_info())
	},
	"grey_audit_sha256_file": func(s []string) error { return capi.Grey_audit_sha256_file(s[0], digest()) },
	"grey_proof_write": func(s []string) error {
		return capi.Grey_proof_write(noLog, s[0], s[1], buffer(), length())
	},
	"grey_governor_emergency_stop": func(s []string) error {
		return capi.Grey_governor_emergency_stop(capi.SwigcptrGrey_governor(0), s[0])
	},
	"grey_workload_kind_from_name": func(s []string) error { return capi.Grey_workload_kind_from_name(s[0], []int{0}) },
	"grey_kv_precision_from_name":  func(s []string) error { return capi.Grey_kv_precision_from_name(s[0], []int{0}) },
	"grey_kv_runtime_from_name":    func(s []string) error { return capi.Grey_kv_runtime_from_name(s[0], []int{0}) },
	"grey_plan_create": func(s []string) error {
		return capi.Grey_plan_create(capi.SwigcptrGrey_context(0), s[0], capi.NewGrey_workload(), s[1], handle())
	},
	"grey_plan_load": func(s []string) error { return capi.Grey_plan_load(s[0], handle()) },
	"grey_plan_check_llama_cpp_overrides": func(s []string) error {
		return capi.Grey_plan_check_llama_cpp_overrides(capi.SwigcptrGrey_plan(0), s[0], 0)
	},
	"grey_proof_verify": func(s []string) error {
		return capi.Grey_proof_verify(s[0], s[1], s[2], capi.NewGrey_proof_report(), capi.NewGrey_audit_report())
	},
}

// structUses makes each grey.h struct with string members and passes it to a function that takes it.
type structUse struct {
	make func() any
	use  func(v any) error
}

var structUses = map[string]structUse{
	"grey_context_options": {func() any { return capi.NewGrey_context_options() },
		func(v any) error { return capi.Grey_context_create(v.(capi.Grey_context_options), handle()) }},
	"grey_field_desc": {func() any { return capi.NewGrey_field_desc() },
		func(v any) error { return capi.Grey_field_describe(0, v.(capi.Grey_field_desc)) }},
	"grey_model_tensor": {func() any { return capi.NewGrey_model_tensor() },
		func(v any) error {
			return capi.Grey_model_tensor_get(capi.SwigcptrGrey_model(0), 0, v.(capi.Grey_model_tensor))
		}},
	"grey_plan_tensor": {func() any { return capi.NewGrey_plan_tensor() },
		func(v any) error {
			return capi.Grey_plan_tensor_get(capi.SwigcptrGrey_plan(0), 0, v.(capi.Grey_plan_tensor))
		}},
	"grey_audit_options": {func() any { return capi.NewGrey_audit_options() },
		func(v any) error { return capi.Grey_audit_log_create(v.(capi.Grey_audit_options), handle()) }},
	"grey_tenant_options": {func() any { return capi.NewGrey_tenant_options() },
		func(v any) error {
			return capi.Grey_tenant_create(capi.SwigcptrGrey_governor(0), v.(capi.Grey_tenant_options), handle())
		}},
	"grey_model_quant_options": {func() any { return capi.NewGrey_model_quant_options() },
		func(v any) error {
			return capi.Grey_model_quantize("in.safetensors", "", "int8", v.(capi.Grey_model_quant_options), handle())
		}},
	"grey_audit_keygen_options": {func() any { return capi.NewGrey_audit_keygen_options() },
		func(v any) error { return capi.Grey_audit_keygen(v.(capi.Grey_audit_keygen_options)) }},
	"grey_audit_verify_options": {func() any { return capi.NewGrey_audit_verify_options() },
		func(v any) error {
			return capi.Grey_audit_verify(v.(capi.Grey_audit_verify_options), capi.NewGrey_audit_report())
		}},
}

// chdir runs the rest of the test in dir (not in parallel with others).
func chdir(t *testing.T, dir string) {
	t.Helper()
	previous, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chdir(previous) })
}

// inTempDir runs the test from an empty directory, where a cut path would point, and checks that
// nothing was created there.
func inTempDir(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	chdir(t, dir)
	t.Cleanup(func() {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("files were created: %v", entries)
		}
	})
}

// forEachListed runs `run` for each function or struct that grey.h gives strings to, with its entry
// in table; it fails for one the table lacks, and for an entry grey.h no longer has.
func forEachListed[V any](t *testing.T, header map[string][]string, table map[string]V, tableName string,
	run func(name string, texts []string, entry V)) {
	t.Helper()
	for name, texts := range header {
		entry, ok := table[name]
		if !ok {
			t.Errorf("%s has strings %v in grey.h: add it to %s", name, texts, tableName)
			continue
		}
		run(name, texts, entry)
	}
	for name := range table {
		if _, ok := header[name]; !ok {
			t.Errorf("%s has %s, which has no string in grey.h", tableName, name)
		}
	}
}

func TestEveryStringParameterRefusesANulByte(t *testing.T) {
	parameters, _ := headerStrings(t)
	inTempDir(t)
	forEachListed(t, parameters, stringCalls, "stringCalls", func(function string, names []string, call func([]string) error) {
		for i, name := range names {
			s := make([]string, len(names))
			for j := range s {
				s[j] = "ok"
			}
			s[i] = "x\x00y"
			refused(t, call(s), function+": "+name)
		}
	})
}

func TestEveryStringMemberRefusesANulByte(t *testing.T) {
	_, members := headerStrings(t)
	inTempDir(t)
	forEachListed(t, members, structUses, "structUses", func(structName string, names []string, uses structUse) {
		for _, member := range names {
			v := uses.make()
			setter := reflect.ValueOf(v).MethodByName("Set" + strings.ToUpper(member[:1]) + member[1:])
			if !setter.IsValid() {
				t.Errorf("%s has no setter for %s", structName, member)
				continue
			}
			setter.Call([]reflect.Value{reflect.ValueOf("x\x00y")}) // cannot fail: the call using it does
			err := uses.use(v)
			if !errors.Is(err, grey.ErrInvalidArgument) || !strings.Contains(err.Error(), "."+member+" holds a NUL byte (at byte 1)") {
				t.Errorf("%s.%s = \"x\\x00y\": want the call refused naming the member, got %v", structName, member, err)
			}
		}
	})
}

func TestARefusedMemberSetAgainIsAccepted(t *testing.T) {
	dir := t.TempDir()
	chdir(t, dir)
	options := capi.NewGrey_audit_verify_options()
	defer capi.DeleteGrey_audit_verify_options(options)
	report := capi.NewGrey_audit_report()
	defer capi.DeleteGrey_audit_report(report)
	options.SetKey_path(filepath.Join(dir, "audit.key"))
	options.SetLog_path("l\x00audit.log")
	refused(t, capi.Grey_audit_verify(options, report), "grey_audit_verify: options.log_path")
	options.SetLog_path(filepath.Join(dir, "audit.log")) // the files do not exist: now libgrey says so
	if err := capi.Grey_audit_verify(options, report); err == nil || strings.Contains(err.Error(), "NUL") {
		t.Errorf("want libgrey's own error, got %v", err)
	}
	refused(t, capi.Grey_swig_audit_verify_add_checkpoint(options, "x\x00y"), "grey_swig_audit_verify_add_checkpoint: path")
	if options.GetCheckpoint_count() != 0 {
		t.Errorf("a refused checkpoint was added")
	}
}

// ---- package grey: a representative of every kind of string it passes on -----------------------

func TestModelPathWithANulByteIsRefusedNotCut(t *testing.T) {
	chdir(t, t.TempDir())
	w, err := grey.NewModelWriter("safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.AddTensor("w", grey.Float32Tensor(make([]float32, 4), 4), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("a.safetensors"); err != nil {
		t.Fatal(err)
	}
	m, err := grey.OpenModel("a.safetensors\x00/x") // a.safetensors exists: it must not be opened
	if err == nil {
		m.Close()
	}
	if err == nil || !strings.HasPrefix(err.Error(), "grey_model_create: path holds a NUL byte (at byte 13)") {
		t.Errorf("got %v", err)
	}
	refused(t, w.AddTensor("w\x00x", grey.Float32Tensor(make([]float32, 4), 4), 0), "grey_model_writer_add_tensor: name")
	refused(t, w.SetMetadata("k\x00x", "v"), "grey_model_writer_set_metadata: key")
	refused(t, w.Write("o\x00x"), "grey_model_writer_write: path")
}

func TestAuditStringsWithANulByteAreRefused(t *testing.T) {
	dir, verifier, writer := keys(t)
	chdir(t, dir) // where the cut paths would point
	log, err := grey.OpenAuditLog(filepath.Join(dir, "audit.log"), writer)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	_, err = log.Append("t\x00x", map[string]any{"step": 1})
	refused(t, err, "grey_audit_append: type")
	_, err = log.Append("t", []byte("{\x00}"))
	refused(t, err, "grey_audit_append: payload")
	_, err = log.Append("t", "{\x00}")
	refused(t, err, "grey_audit_append: payload")
	refused(t, log.Checkpoint("c\x00x"), "grey_audit_checkpoint: out_path")
	_, err = log.AppendBatch([]grey.AuditEntry{{Type: "t", Payload: "{}"}, {Type: "t\x00x", Payload: "{}"}})
	refused(t, err, "grey_audit_batch_add: type")
	_, err = log.AppendBatch([]grey.AuditEntry{{Type: "t", Payload: "{\x00}"}})
	refused(t, err, "grey_audit_batch_add: payload")
	_, err = log.ProofWrite(dir, "{\x00}")
	refused(t, err, "grey_proof_write: artifact_json")
	_, err = grey.AuditVerify(log.Path, verifier, []string{"c\x00x"}, "")
	refused(t, err, "grey_swig_audit_verify_add_checkpoint: path")
	_, err = grey.AuditVerify("l\x00x", verifier, nil, "")
	refused(t, err, "grey_audit_verify: options.log_path")
	_, err = grey.OpenAuditLog("l\x00x", writer)
	refused(t, err, "grey_audit_log_create: options.log_path")
	refused(t, grey.AuditKeygen(grey.KeygenOptions{VerifierKey: filepath.Join(dir, "k"), WriterKey: "w\x00x"}),
		"grey_audit_keygen: options.writer_key_path")
	refused(t, grey.AuditCheckProof("p", "c", "o\x00x", ""), "grey_audit_check_proof: old_checkpoint_path")
	_, err = grey.SHA256File("f\x00x")
	refused(t, err, "grey_audit_sha256_file: path")
	if info, err := log.Info(); err != nil || info.Records != 0 {
		t.Errorf("records after refused appends: %+v %v", info, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("files were created: %v", entries)
	}
}

func TestPayloadsKeepNulCharactersBothWays(t *testing.T) {
	dir, _, writer := keys(t)
	logPath := filepath.Join(dir, "audit.log")
	log, err := grey.OpenAuditLog(logPath, writer)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if _, err := log.Append("t", map[string]any{"text": "x\x00y"}); err != nil { // JSON writes \u0000
		t.Fatal(err)
	}
	records, err := grey.AuditRecords(logPath, 0, 0)
	if err != nil || len(records) != 1 || records[0]["payload"].(map[string]any)["text"] != "x\x00y" {
		t.Errorf("records: %v %v", records, err)
	}
}

func TestConfigContextAndQuantStringsWithANulByteAreRefused(t *testing.T) {
	inTempDir(t)
	_, err := grey.NewConfig("b\x00x")
	refused(t, err, "grey_config_create: profile")
	cfg, err := grey.NewConfig("")
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	refused(t, cfg.Set("memory.compression.algorithm", "z\x00x"), "grey_config_set: value")
	_, err = cfg.Get("m\x00x")
	refused(t, err, "grey_config_get: key")
	refused(t, cfg.LoadString("a\x00x", ""), "grey_config_load_string: yaml")
	_, err = grey.NewContext(grey.WithBackends("h\x00x"))
	refused(t, err, "grey_context_create: options.backends")
	_, err = grey.NewContext(grey.WithProfile("b\x00x"))
	refused(t, err, "grey_context_create: options.profile")
	_, err = grey.QuantParamsFromName("q\x00x")
	refused(t, err, "grey_quant_params_from_name: name")
	_, err = grey.Quantize(grey.Float32Tensor(make([]float32, 32), 1, 32), "q\x00x", grey.CalibrationRTN)
	refused(t, err, "grey_quant_params_from_name: name")
}
