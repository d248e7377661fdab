package grey_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"libgrey/grey"
	"libgrey/grey/capi"
)

func newContext(t *testing.T, opts ...grey.Option) *grey.Context {
	t.Helper()
	ctx, err := grey.NewContext(opts...)
	if err != nil {
		t.Fatalf("NewContext: %v", err)
	}
	t.Cleanup(func() { ctx.Close() })
	return ctx
}

// normalize round-trips through JSON so that Go values compare with greyctl's output, and drops the
// fields that change between two queries.
func normalize(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	delete(out, "memory_free_bytes")
	for _, section := range []string{"unavailable", "unavailable_states", "sources"} {
		if m, ok := out[section].(map[string]any); ok {
			delete(m, "memory_free_bytes")
		}
	}
	return out
}

func greyctl(t *testing.T) string {
	path := os.Getenv("GREYCTL")
	if path == "" {
		path = filepath.Join("..", "..", "build", "default", "bin", "greyctl")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("greyctl not found at %s (build the default preset or set GREYCTL): %v", path, err)
	}
	return path
}

func TestDevicesMatchGreyctl(t *testing.T) {
	out, err := exec.Command(greyctl(t), "--no-env", "detect", "--json").Output()
	if err != nil {
		t.Fatalf("greyctl: %v", err)
	}
	var report struct {
		Devices []map[string]any `json:"devices"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatal(err)
	}
	devices, err := newContext(t).Devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(devices) != len(report.Devices) {
		t.Fatalf("%d devices, greyctl has %d", len(devices), len(report.Devices))
	}
	for i, d := range devices {
		ours, theirs := normalize(t, d.ToMap()), normalize(t, report.Devices[i])
		if !reflect.DeepEqual(ours, theirs) {
			t.Errorf("device %d differs:\n ours   %v\n greyctl %v", i, ours, theirs)
		}
	}
}

func TestHostDevice(t *testing.T) {
	host, err := newContext(t).Device(0)
	if err != nil {
		t.Fatal(err)
	}
	if host.Backend != "host" || host.Type != "cpu" || host.Vendor != "cpu" {
		t.Errorf("host device: %+v", host)
	}
	if host.Name == "" || host.MemoryTotalBytes == 0 || host.ComputeUnits == 0 {
		t.Errorf("host device lacks name, memory or compute units: %+v", host)
	}
	uuid, ok := host.Field("uuid")
	if !ok || uuid.OK() || uuid.Value != nil || uuid.Reason == "" || uuid.State != "not_applicable" {
		t.Errorf("a CPU's uuid should be not_applicable with a reason: %+v", uuid)
	}
	if f, _ := host.Field("memory_total_bytes"); f.Unit != "bytes" || f.Source != "os" {
		t.Errorf("memory_total_bytes: %+v", f)
	}
}

func TestOutOfRangeDeviceIsAnErrorWithTheCMessage(t *testing.T) {
	ctx := newContext(t)
	n, err := ctx.DeviceCount()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ctx.Device(n + 5)
	if err == nil {
		t.Fatal("no error for an out-of-range device")
	}
	if !errors.Is(err, grey.ErrInvalidArgument) || errors.Is(err, grey.ErrNotFound) {
		t.Errorf("want ErrInvalidArgument, got %v", err)
	}
	if want := fmt.Sprintf("device index %d is out of range", n+5); !strings.Contains(err.Error(), want) {
		t.Errorf("message %q lacks %q", err, want)
	}
	var e *grey.Error
	if !errors.As(err, &e) || grey.Status(e.Status) != grey.StatusInvalidArgument || grey.StatusOf(err).String() != "invalid argument" {
		t.Errorf("error %#v", err)
	}
	if _, err := ctx.Telemetry(-1); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("negative index: %v", err)
	}
}

// The error message is read in C on the failing thread: goroutines hopping threads never mix them up.
func TestErrorsFromManyGoroutines(t *testing.T) {
	ctx := newContext(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				index := 1000 + g*1000 + i
				_, err := ctx.Device(index)
				if want := fmt.Sprintf("device index %d ", index); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
				runtime.Gosched()
			}
		}(g)
	}
	wg.Wait()
}

func TestStatusesHaveNames(t *testing.T) {
	for s := grey.StatusInvalidArgument; s <= grey.StatusInternal; s++ {
		if s.String() == "" || s.String() == grey.Status(0x7000).String() {
			t.Errorf("status %d has no name of its own: %q", s, s.String())
		}
	}
	if grey.StatusOf(nil) != grey.StatusOK || grey.StatusOf(errors.New("x")) != grey.StatusInternal {
		t.Error("StatusOf")
	}
}

func TestTelemetry(t *testing.T) {
	ctx := newContext(t)
	a, err := ctx.Telemetry(0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ctx.Telemetry(0)
	if err != nil {
		t.Fatal(err)
	}
	if a.TimestampNs == 0 || b.TimestampNs < a.TimestampNs {
		t.Errorf("timestamps %d then %d", a.TimestampNs, b.TimestampNs)
	}
	if _, ok := a.Field("power_draw_mw"); !ok {
		t.Error("telemetry lacks power_draw_mw")
	}
	if _, ok := a.ToMap()["unavailable"]; !ok {
		t.Error("ToMap lacks unavailable")
	}
}

func TestBackendsAndSearchPath(t *testing.T) {
	dir := t.TempDir()
	_, err := grey.NewContext(grey.WithBackends("host", "nosuchbackend"), grey.WithBackendDir(dir))
	var gerr *grey.Error
	if !errors.As(err, &gerr) || gerr.Status != int(grey.StatusUnsupported) ||
		!strings.Contains(gerr.Message, "backend 'nosuchbackend' is not available: requested, but no libgrey-backend-nosuchbackend.so") {
		t.Fatalf("a named backend that is not there: got %v, want an Unsupported error naming it", err)
	}
	ctx := newContext(t, grey.WithBackendsIfPresent("host", "nosuchbackend"), grey.WithBackendDir(dir))
	report, err := ctx.Backends()
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]string{}
	for _, b := range report {
		outcomes[b.Name] = b.Outcome
	}
	if outcomes["host"] != "loaded" || outcomes["nosuchbackend"] != "not_found" {
		t.Errorf("report %+v", report)
	}
	path, err := ctx.BackendSearchPath()
	if err != nil || len(path) == 0 || path[0] != dir {
		t.Errorf("search path %v (%v), want %s first", path, err, dir)
	}
}

func TestAnUntrustedBackendDirIsRefused(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	ctx := newContext(t, grey.WithBackends("host"), grey.WithBackendDir(shared), grey.WithLogLevel(grey.LogOff))
	dirs, err := ctx.PluginDirs()
	if err != nil || len(dirs) < 2 {
		t.Fatalf("plugin dirs %+v (%v)", dirs, err)
	}
	want := "directory '" + shared + "' is writable by group and others (mode 0777)"
	if dirs[0].Origin != "host" || dirs[0].State != "refused" || dirs[0].Path != shared || !strings.Contains(dirs[0].Reason, want) {
		t.Errorf("first plugin dir %+v, want refused: %s", dirs[0], want)
	}
	if last := dirs[len(dirs)-1]; last.Origin != "beside_library" || !strings.HasSuffix(last.Path, "/grey") {
		t.Errorf("last plugin dir %+v, want grey/ beside libgrey", last)
	}
}

func TestConfig(t *testing.T) {
	cfg, err := grey.NewConfig("aggressive")
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	if err := cfg.Set("memory.compression.algorithm", "zstd"); err != nil {
		t.Fatal(err)
	}
	if v, err := cfg.Get("memory.compression.algorithm"); err != nil || v != "zstd" {
		t.Errorf("get: %q %v", v, err)
	}
	if err := cfg.SetBool("safety.dry_run_default", true); err != nil {
		t.Fatal(err)
	}
	yaml, err := cfg.YAML()
	if err != nil || !strings.Contains(yaml, "dry_run_default: true") || len(yaml) < 256 {
		t.Errorf("yaml (%d bytes, %v)", len(yaml), err)
	}
	err = cfg.LoadString("memory:\n  compression:\n    algorithm: 7zip\n", "inline")
	if !errors.Is(err, grey.ErrConfig) || !strings.Contains(err.Error(), "inline:3") {
		t.Errorf("bad YAML: %v", err)
	}
	if err := cfg.Set("no.such.key", "1"); !errors.Is(err, grey.ErrConfig) {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := grey.NewConfig("nope"); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("unknown profile: %v", err)
	}
	if len(grey.ConfigKeys()) == 0 {
		t.Error("no config keys")
	}
	cfg.Close()
	if _, err := cfg.Get("memory.compression.algorithm"); !errors.Is(err, grey.ErrClosed) {
		t.Errorf("closed config: %v", err)
	}
}

func TestContextConfigFileAndView(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grey.yaml")
	if err := os.WriteFile(path, []byte("memory:\n  compression:\n    algorithm: none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, err := grey.NewContext(grey.WithConfigFile(path), grey.WithProfile("conservative"))
	if err != nil {
		t.Fatal(err)
	}
	view, err := ctx.Config()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := view.Get("memory.compression.algorithm"); v != "none" || err != nil {
		t.Errorf("view: %q %v", v, err)
	}
	if err := view.Set("memory.compression.algorithm", "lz4"); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("a view must be read-only: %v", err)
	}
	ctx.Close()
	if _, err := view.Get("memory.compression.algorithm"); !errors.Is(err, grey.ErrClosed) {
		t.Errorf("view after close: %v", err)
	}
	if _, err := ctx.Devices(); !errors.Is(err, grey.ErrClosed) {
		t.Errorf("closed context: %v", err)
	}
	if err := ctx.Close(); err != nil {
		t.Error(err)
	}
}

func TestBuffers(t *testing.T) {
	ctx := newContext(t)
	buf, err := ctx.NewBuffer(0, 16)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := buf.Size(); n != 16 || err != nil {
		t.Errorf("size %d %v", n, err)
	}
	if err := buf.Fill(0xAB, 0, 16); err != nil {
		t.Fatal(err)
	}
	if _, err := buf.WriteAt([]byte("grey"), 4); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	if _, err := buf.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	want := append(append(bytes.Repeat([]byte{0xAB}, 4), "grey"...), bytes.Repeat([]byte{0xAB}, 8)...)
	if !bytes.Equal(got, want) {
		t.Errorf("read %x, want %x", got, want)
	}
	other, err := ctx.NewBuffer(0, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.CopyFrom(buf, 0, 4, 4); err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 4)
	if _, err := other.ReadAt(part, 0); err != nil || string(part) != "grey" {
		t.Errorf("copy: %q %v", part, err)
	}
	if _, err := buf.WriteAt(make([]byte, 17), 0); !errors.Is(err, grey.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "outside the buffer") {
		t.Errorf("overflowing write: %v", err)
	}
	if _, err := buf.ReadAt(part, -1); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("negative offset: %v", err)
	}
	if _, err := ctx.NewBuffer(0, 0); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("empty buffer: %v", err)
	}
	buf.Close()
	if _, err := buf.ReadAt(part, 0); !errors.Is(err, grey.ErrClosed) {
		t.Errorf("closed buffer: %v", err)
	}
	ctx.Close() // frees `other`
	if _, err := other.Size(); !errors.Is(err, grey.ErrClosed) {
		t.Errorf("buffer of a closed context: %v", err)
	}
	other.Close()
}

func TestFinalizersFreeForgottenHandles(t *testing.T) {
	for i := 0; i < 20; i++ {
		ctx, err := grey.NewContext()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ctx.NewBuffer(0, 1<<16); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
}

func TestVersion(t *testing.T) {
	var major, minor, patch uint32
	if _, err := fmt.Sscanf(grey.Version(), "%d.%d.%d", &major, &minor, &patch); err != nil {
		t.Fatal(err)
	}
	if grey.VersionNumber() != major<<16|minor<<8|patch || grey.BuildRevision() == "" {
		t.Errorf("version %s / %#x", grey.Version(), grey.VersionNumber())
	}
}

// The raw layer follows grey.h's text buffer protocol: a nil buffer asks for the length.
func TestRawTextProtocol(t *testing.T) {
	handle := []uintptr{0}
	if err := capi.Grey_config_create("balanced", handle); err != nil {
		t.Fatal(err)
	}
	cfg := capi.SwigcptrGrey_config(handle[0])
	defer capi.Grey_config_destroy(cfg)
	length := []uint64{0}
	err := capi.Grey_config_get(cfg, "memory.compression.algorithm", nil, length)
	if !errors.Is(err, grey.ErrBufferTooSmall) || length[0] != uint64(len("lz4")) {
		t.Fatalf("size query: %v, length %d", err, length[0])
	}
	buffer := make([]byte, length[0]+1)
	if err := capi.Grey_config_get(cfg, "memory.compression.algorithm", buffer, length); err != nil ||
		string(buffer[:length[0]]) != "lz4" {
		t.Errorf("get: %q %v", buffer, err)
	}
}

// WithBackends("cuda") fails whenever `greyctl detect --backend cuda` does (here, without a CUDA driver:
// an Unsupported error, "backend 'cuda' is not available: ..."), never giving a context without it.
func TestWithBackendsFailsAsGreyctlDetectDoes(t *testing.T) {
	out, err := exec.Command(greyctl(t), "--no-env", "--log-level", "OFF", "detect", "--backend", "cuda", "--json").Output()
	if err == nil {
		t.Skip("the CUDA backend is available on this machine")
	}
	var report struct {
		Error struct {
			Class    string `json:"class"`
			ExitCode int    `json:"exit_code"`
			Message  string `json:"message"`
		} `json:"error"`
	}
	if jsonErr := json.Unmarshal(out, &report); jsonErr != nil || report.Error.Class != "unavailable" || report.Error.ExitCode != 4 ||
		!strings.HasPrefix(report.Error.Message, "backend 'cuda' is not available: ") {
		t.Fatalf("greyctl detect --backend cuda: %v, %s", jsonErr, out)
	}
	ctx, err := grey.NewContext(grey.WithBackends("cuda"))
	var gerr *grey.Error
	if !errors.As(err, &gerr) || gerr.Status != int(grey.StatusUnsupported) || !strings.HasPrefix(gerr.Message, "backend 'cuda' is not available: ") {
		if ctx != nil {
			ctx.Close()
		}
		t.Fatalf("WithBackends(\"cuda\"): got %v, want an Unsupported error as greyctl gives", err)
	}
}
