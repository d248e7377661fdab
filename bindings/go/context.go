package grey

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"

	"libgrey/grey/capi"
)

// LogLevel is a grey_log_level: messages below a context's level are dropped.
type LogLevel int

const (
	LogDebug   LogLevel = 0
	LogInfo    LogLevel = 1
	LogWarning LogLevel = 2
	LogError   LogLevel = 3
	LogOff     LogLevel = 4
)

type options struct {
	backends   []string
	optional   bool
	backendDir string
	configPath string
	profile    string
	env        bool
	logLevel   LogLevel
}

// Option configures NewContext.
type Option func(*options)

// WithBackends loads only the named backends ("cuda", "hip", ...); the host backend is always there.
// NewContext then fails (StatusUnsupported, "backend 'cuda' is not available: ...") if one does not load.
func WithBackends(names ...string) Option {
	return func(o *options) { o.backends, o.optional = names, false }
}

// WithBackendsIfPresent loads only the named backends that are there; the others are only reported by
// Backends.
func WithBackendsIfPresent(names ...string) Option {
	return func(o *options) { o.backends, o.optional = names, true }
}

// WithBackendDir searches dir for plugins before every other place, if it can be trusted (see PluginDirs).
func WithBackendDir(dir string) Option { return func(o *options) { o.backendDir = dir } }

// WithConfigFile overlays the YAML file at path on the profile.
func WithConfigFile(path string) Option { return func(o *options) { o.configPath = path } }

// WithProfile picks "conservative", "balanced" (the default) or "aggressive".
func WithProfile(profile string) Option { return func(o *options) { o.profile = profile } }

// WithEnvOverrides applies GREY_* environment variables; without it the environment is never read.
func WithEnvOverrides() Option { return func(o *options) { o.env = true } }

// WithLogLevel sets the level of messages libgrey writes to stderr (default LogWarning).
func WithLogLevel(level LogLevel) Option { return func(o *options) { o.logLevel = level } }

// Context is a libgrey context: configuration, backends and devices. Safe for concurrent use. Close
// it when done (a finalizer closes a forgotten one); closing frees every buffer it still owns.
type Context struct {
	mu      sync.RWMutex
	handle  capi.Grey_context
	buffers map[uintptr]struct{}
	streams map[uintptr]struct{}
}

// NewContext loads the configuration, then the backends, then enumerates devices.
func NewContext(opts ...Option) (*Context, error) {
	o := options{logLevel: LogWarning}
	for _, opt := range opts {
		opt(&o)
	}
	raw := capi.NewGrey_context_options()
	defer capi.DeleteGrey_context_options(raw)
	raw.SetLog_level(capi.Grey_log_level(o.logLevel))
	// Empty strings stay NULL: "not given".
	if len(o.backends) > 0 {
		raw.SetBackends(strings.Join(o.backends, ","))
		if !o.optional {
			raw.SetRequire_backends(1)
		}
	}
	if o.backendDir != "" {
		raw.SetBackend_dir(o.backendDir)
	}
	if o.configPath != "" {
		raw.SetConfig_path(o.configPath)
	}
	if o.profile != "" {
		raw.SetProfile(o.profile)
	}
	if o.env {
		raw.SetApply_env_overrides(1)
	}
	out := []uintptr{0}
	if err := capi.Grey_context_create(raw, out); err != nil {
		return nil, err
	}
	c := &Context{handle: capi.SwigcptrGrey_context(out[0]), buffers: map[uintptr]struct{}{}, streams: map[uintptr]struct{}{}}
	runtime.SetFinalizer(c, (*Context).Close)
	return c, nil
}

// Close destroys the context and every buffer it still owns. Safe to call more than once.
func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handle == nil {
		return nil
	}
	// Streams first: destroying one waits for its work, which may use the buffers.
	for st := range c.streams {
		capi.Grey_stream_destroy(capi.SwigcptrGrey_stream(st))
	}
	c.streams = nil
	for b := range c.buffers {
		capi.Grey_buffer_destroy(capi.SwigcptrGrey_buffer(b))
	}
	c.buffers = nil
	capi.Grey_context_destroy(c.handle)
	c.handle = nil
	runtime.SetFinalizer(c, nil)
	return nil
}

// with runs f on the live handle, holding the context open for the call.
func (c *Context) with(f func(capi.Grey_context) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.handle == nil {
		return ErrClosed
	}
	return f(c.handle)
}

func deviceIndex(index int) (uint, error) {
	if index < 0 || index > math.MaxUint32 {
		return 0, &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: device index %d is out of range", index)}
	}
	return uint(index), nil
}

// DeviceCount is the number of devices across all loaded backends (the host CPU is always one).
func (c *Context) DeviceCount() (int, error) {
	n := []uint32{0}
	err := c.with(func(h capi.Grey_context) error { return capi.Grey_device_count(h, n) })
	return int(n[0]), err
}

// Device is the specification of device index.
func (c *Context) Device(index int) (*DeviceSpec, error) {
	d, err := deviceIndex(index)
	if err != nil {
		return nil, err
	}
	var spec *DeviceSpec
	err = c.with(func(h capi.Grey_context) error {
		raw := capi.NewGrey_device_spec()
		defer capi.DeleteGrey_device_spec(raw)
		if err := capi.Grey_device_spec_get(h, d, raw); err != nil {
			return err
		}
		fields, err := readFields(h, d, raw.Swigcptr(), groupSpec)
		if err != nil {
			return err
		}
		spec = newDeviceSpec(index, raw, fields)
		return nil
	})
	return spec, err
}

// Devices is every device, in index order.
func (c *Context) Devices() ([]*DeviceSpec, error) {
	n, err := c.DeviceCount()
	if err != nil {
		return nil, err
	}
	devices := make([]*DeviceSpec, 0, n)
	for i := 0; i < n; i++ {
		d, err := c.Device(i)
		if err != nil {
			return nil, err
		}
		devices = append(devices, d)
	}
	return devices, nil
}

// Telemetry samples device index now.
func (c *Context) Telemetry(index int) (*Telemetry, error) {
	d, err := deviceIndex(index)
	if err != nil {
		return nil, err
	}
	var t *Telemetry
	err = c.with(func(h capi.Grey_context) error {
		raw := capi.NewGrey_device_telemetry()
		defer capi.DeleteGrey_device_telemetry(raw)
		if err := capi.Grey_device_telemetry_get(h, d, raw); err != nil {
			return err
		}
		fields, err := readFields(h, d, raw.Swigcptr(), groupTelemetry)
		if err != nil {
			return err
		}
		t = &Telemetry{Index: index, TimestampNs: raw.GetTimestamp_ns(), Fields: fields}
		return nil
	})
	return t, err
}

// BackendInfo is one backend candidate the loader considered. Outcome is "loaded", "skipped",
// "failed" or "not_found"; Reason says why.
type BackendInfo struct {
	Name        string
	Path        string
	Outcome     string
	Reason      string
	DeviceCount int
}

// Backends is the loader's report: every candidate, loaded or not, in the order considered.
func (c *Context) Backends() ([]BackendInfo, error) {
	var report []BackendInfo
	err := c.with(func(h capi.Grey_context) error {
		n := []uint32{0}
		if err := capi.Grey_backend_candidate_count(h, n); err != nil {
			return err
		}
		raw := capi.NewGrey_backend_info()
		defer capi.DeleteGrey_backend_info(raw)
		for i := uint32(0); i < n[0]; i++ {
			if err := capi.Grey_backend_info_get(h, uint(i), raw); err != nil {
				return err
			}
			report = append(report, BackendInfo{raw.GetName(), raw.GetPath(), known(capi.Grey_backend_outcome_name(raw.GetOutcome())), raw.GetReason(),
				int(raw.GetDevice_count())})
		}
		return nil
	})
	return report, err
}

// PluginDir is one directory of the plugin search path and the loader's verdict on it. Origin is
// "host" (WithBackendDir), "environment" (GREY_BACKEND_DIR) or "beside_library" (grey/ beside the file
// holding libgrey); State is "searched", "missing", "refused" (someone other than root or this user
// could have written there) or "duplicate"; Reason says why, naming the path at fault.
type PluginDir struct {
	Path     string
	RealPath string
	Origin   string
	State    string
	Reason   string
}

// PluginDirs is every directory on the plugin search path, in order, searched or not.
func (c *Context) PluginDirs() ([]PluginDir, error) {
	var dirs []PluginDir
	err := c.with(func(h capi.Grey_context) error {
		n := []uint32{0}
		if err := capi.Grey_plugin_dir_count(h, n); err != nil {
			return err
		}
		raw := capi.NewGrey_plugin_dir_info()
		defer capi.DeleteGrey_plugin_dir_info(raw)
		for i := uint32(0); i < n[0]; i++ {
			if err := capi.Grey_plugin_dir_info_get(h, uint(i), raw); err != nil {
				return err
			}
			dirs = append(dirs, PluginDir{raw.GetPath(), raw.GetReal_path(), known(capi.Grey_plugin_origin_name(raw.GetOrigin())),
				known(capi.Grey_plugin_dir_state_name(raw.GetState())), raw.GetReason()})
		}
		return nil
	})
	return dirs, err
}

// BackendSearchPath is the directories on the plugin search path, in order, searched or not (see
// PluginDirs).
func (c *Context) BackendSearchPath() ([]string, error) {
	var dirs []string
	err := c.with(func(h capi.Grey_context) error {
		text, err := readText(func(b []byte, n []uint64) error { return capi.Grey_backend_search_path(h, b, n) })
		for _, line := range strings.Split(text, "\n") {
			if line != "" {
				dirs = append(dirs, line)
			}
		}
		return err
	})
	return dirs, err
}

// Config is the context's effective configuration: a read-only view, valid while the context is open.
func (c *Context) Config() (*Config, error) {
	var view *Config
	err := c.with(func(h capi.Grey_context) error {
		view = &Config{handle: capi.Grey_context_config(h), owner: c}
		return nil
	})
	return view, err
}
