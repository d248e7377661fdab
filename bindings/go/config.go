package grey

import (
	"runtime"
	"strconv"
	"sync"

	"libgrey/grey/capi"
)

// ConfigKeys lists every key of the configuration schema as dotted paths ("memory.compression.algorithm").
func ConfigKeys() []string {
	n := capi.Grey_config_key_count()
	keys := make([]string, 0, n)
	for i := uint(0); i < n; i++ {
		keys = append(keys, capi.Grey_config_key_name(i))
	}
	return keys
}

// Config is a grey_config: a profile's defaults with YAML files, the environment and explicit values
// layered on top. Not synchronised by libgrey: the methods here lock, so a Config may be shared.
// A context's own configuration (Context.Config) is a read-only view valid while the context is open.
type Config struct {
	mu     sync.Mutex
	handle capi.Grey_config
	owner  *Context // non-nil for a context's view
}

// NewConfig makes a config holding the defaults of profile ("conservative", "balanced" or
// "aggressive"; "" means "balanced").
func NewConfig(profile string) (*Config, error) {
	if profile == "" {
		profile = "balanced"
	}
	out := []uintptr{0}
	if err := capi.Grey_config_create(profile, out); err != nil {
		return nil, err
	}
	c := &Config{handle: capi.SwigcptrGrey_config(out[0])}
	runtime.SetFinalizer(c, (*Config).Close)
	return c, nil
}

// LoadConfig is NewConfig(profile) with the YAML file at path overlaid.
func LoadConfig(path, profile string) (*Config, error) {
	c, err := NewConfig(profile)
	if err != nil {
		return nil, err
	}
	if err := c.LoadFile(path); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close frees the config (a context's view only lets go). Safe to call more than once.
func (c *Config) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handle != nil && c.owner == nil {
		capi.Grey_config_destroy(c.handle)
		runtime.SetFinalizer(c, nil)
	}
	c.handle = nil
	return nil
}

// with runs f on the live handle; writable refuses a context's view.
func (c *Config) with(writable bool, f func(capi.Grey_config) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owner != nil {
		if writable {
			return &Error{Status: int(StatusInvalidArgument), Message: "grey: a context's configuration is read-only; use NewConfig to change values"}
		}
		c.owner.mu.RLock()
		defer c.owner.mu.RUnlock()
		if c.owner.handle == nil {
			return ErrClosed
		}
	}
	if c.handle == nil {
		return ErrClosed
	}
	err := f(c.handle)
	runtime.KeepAlive(c)
	return err
}

// LoadFile overlays a YAML file; an invalid one gives ErrConfig naming file, line and key.
func (c *Config) LoadFile(path string) error {
	return c.with(true, func(h capi.Grey_config) error { return capi.Grey_config_load_file(h, path) })
}

// LoadString overlays YAML text; origin names it in error messages.
func (c *Config) LoadString(yaml, origin string) error {
	if origin == "" {
		origin = "<string>"
	}
	return c.with(true, func(h capi.Grey_config) error { return capi.Grey_config_load_string(h, yaml, origin) })
}

// ApplyEnv applies the GREY_* environment variables (never done implicitly).
func (c *Config) ApplyEnv() error {
	return c.with(true, func(h capi.Grey_config) error { return capi.Grey_config_apply_env(h) })
}

// Set sets key from its textual form ("true", "75", "zstd"), validated as in a file.
func (c *Config) Set(key, value string) error {
	return c.with(true, func(h capi.Grey_config) error { return capi.Grey_config_set(h, key, value) })
}

// SetBool and SetInt are Set for typed values.
func (c *Config) SetBool(key string, value bool) error { return c.Set(key, strconv.FormatBool(value)) }
func (c *Config) SetInt(key string, value int64) error {
	return c.Set(key, strconv.FormatInt(value, 10))
}

// Get is the textual value of key.
func (c *Config) Get(key string) (value string, err error) {
	err = c.with(false, func(h capi.Grey_config) error {
		value, err = readText(func(b []byte, n []uint64) error { return capi.Grey_config_get(h, key, b, n) })
		return err
	})
	return value, err
}

// YAML is the whole configuration as YAML.
func (c *Config) YAML() (text string, err error) {
	err = c.with(false, func(h capi.Grey_config) error {
		text, err = readText(func(b []byte, n []uint64) error { return capi.Grey_config_to_yaml(h, b, n) })
		return err
	})
	return text, err
}
