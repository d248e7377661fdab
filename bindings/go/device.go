package grey

import (
	"sync"

	"libgrey/grey/capi"
)

// Field is one reading of a device. Value is nil unless State is "ok" (then a uint64, float64 or
// string); Reason says why a field is unavailable. Keys are the JSON keys `greyctl detect` prints.
type Field struct {
	Key    string
	Value  any
	State  string
	Source string
	Unit   string
	Reason string
}

// OK reports whether the field holds a value.
func (f Field) OK() bool { return f.State == "ok" }

type group int

const (
	groupSpec      group = 0
	groupTelemetry group = 1
)

type fieldDesc struct {
	field  capi.Grey_field
	key    string
	unit   string
	kind   capi.Grey_field_kind
	group  group
	offset uintptr
}

var (
	descsOnce sync.Once
	descs     []fieldDesc
	descsErr  error
)

// fieldDescs is every field this libgrey knows, from grey_field_describe: new fields appear without a
// change here.
func fieldDescs() ([]fieldDesc, error) {
	descsOnce.Do(func() {
		raw := capi.NewGrey_field_desc()
		defer capi.DeleteGrey_field_desc(raw)
		for f := 0; f < int(capi.GREY_FIELD_COUNT); f++ {
			if err := capi.Grey_field_describe(capi.Grey_field(f), raw); err != nil {
				descsErr = err
				return
			}
			descs = append(descs, fieldDesc{capi.Grey_field(f), raw.GetKey(), raw.GetUnit(), raw.GetKind(),
				group(raw.GetGroup()), uintptr(raw.GetOffset())})
		}
	})
	return descs, descsErr
}

// known is libgrey's name for an enum value (grey_*_name), or "unknown" for a value newer than the
// library, which has no name ("" through SWIG).
func known(name string) string {
	if name == "" {
		return "unknown"
	}
	return name
}

// readFields reads every field of one group from the struct at base, at the offsets libgrey gives.
func readFields(h capi.Grey_context, device uint, base uintptr, g group) ([]Field, error) {
	all, err := fieldDescs()
	if err != nil {
		return nil, err
	}
	var fields []Field
	for _, d := range all {
		if d.group != g {
			continue
		}
		at := base + d.offset
		var value any
		var state capi.Grey_field_state
		var source capi.Grey_source
		switch d.kind {
		case capi.GREY_FIELD_KIND_U64:
			f := capi.SwigcptrGrey_field_u64(at)
			value, state, source = f.GetValue(), f.GetState(), f.GetSource()
		case capi.GREY_FIELD_KIND_F64:
			f := capi.SwigcptrGrey_field_f64(at)
			value, state, source = f.GetValue(), f.GetState(), f.GetSource()
		default:
			f := capi.SwigcptrGrey_field_text(at)
			value, state, source = f.GetValue(), f.GetState(), f.GetSource()
		}
		field := Field{Key: d.key, Value: value, State: known(capi.Grey_field_state_name(state)),
			Source: known(capi.Grey_source_name(source)), Unit: d.unit}
		if state != capi.GREY_FIELD_OK {
			field.Value = nil
			field.Reason, err = readText(func(b []byte, n []uint64) error {
				return capi.Grey_device_field_reason(h, device, d.field, b, n)
			})
			if err != nil {
				return nil, err
			}
		}
		fields = append(fields, field)
	}
	return fields, nil
}

func find(fields []Field, key string) (Field, bool) {
	for _, f := range fields {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

func fieldsMap(fields []Field, out map[string]any) map[string]any {
	unavailable, states, sources := map[string]any{}, map[string]any{}, map[string]any{}
	for _, f := range fields {
		out[f.Key] = f.Value
		if f.OK() {
			sources[f.Key] = f.Source
		} else {
			unavailable[f.Key] = f.Reason
			states[f.Key] = f.State
		}
	}
	out["unavailable"], out["unavailable_states"], out["sources"] = unavailable, states, sources
	return out
}

// DeviceSpec holds the static facts about one device. Name, MemoryTotalBytes and ComputeUnits are
// copied out of Fields for convenience (zero when unavailable); Fields has every field with its
// state, source and unit.
type DeviceSpec struct {
	Index              int
	Backend            string
	BackendDeviceIndex int
	Vendor             string // "nvidia", "amd", "intel", "cpu" or "unknown"
	Type               string // "gpu" or "cpu"
	Name               string
	MemoryTotalBytes   uint64
	ComputeUnits       uint64
	Fields             []Field
}

func newDeviceSpec(index int, raw capi.Grey_device_spec, fields []Field) *DeviceSpec {
	s := &DeviceSpec{Index: index, Backend: raw.GetBackend(), BackendDeviceIndex: int(raw.GetBackend_device_index()),
		Vendor: known(capi.Grey_vendor_name(raw.GetVendor())), Type: "cpu", Fields: fields}
	if raw.GetXtype() == capi.GREY_DEVICE_GPU {
		s.Type = "gpu"
	}
	s.Name, _ = s.Text("name")
	s.MemoryTotalBytes, _ = s.Uint("memory_total_bytes")
	s.ComputeUnits, _ = s.Uint("compute_units")
	return s
}

// Field looks a field up by key ("memory_total_bytes").
func (s *DeviceSpec) Field(key string) (Field, bool) { return find(s.Fields, key) }

// Uint is the value of an integer field, and whether it is available.
func (s *DeviceSpec) Uint(key string) (uint64, bool) {
	f, _ := s.Field(key)
	v, ok := f.Value.(uint64)
	return v, ok
}

// Float is the value of a floating-point field, and whether it is available.
func (s *DeviceSpec) Float(key string) (float64, bool) {
	f, _ := s.Field(key)
	v, ok := f.Value.(float64)
	return v, ok
}

// Text is the value of a text field, and whether it is available.
func (s *DeviceSpec) Text(key string) (string, bool) {
	f, _ := s.Field(key)
	v, ok := f.Value.(string)
	return v, ok
}

// ToMap is the device as `greyctl detect --json` prints it.
func (s *DeviceSpec) ToMap() map[string]any {
	return fieldsMap(s.Fields, map[string]any{"index": s.Index, "backend": s.Backend,
		"backend_device_index": s.BackendDeviceIndex, "vendor": s.Vendor, "type": s.Type})
}

// Telemetry is one live sample of a device.
type Telemetry struct {
	Index       int
	TimestampNs uint64
	Fields      []Field
}

// Field looks a reading up by key ("power_draw_mw").
func (t *Telemetry) Field(key string) (Field, bool) { return find(t.Fields, key) }

// ThrottleReasonNames names the set bits of throttle_reasons (nil when unavailable).
func (t *Telemetry) ThrottleReasonNames() []string {
	f, _ := t.Field("throttle_reasons")
	bits, ok := f.Value.(uint64)
	if !ok {
		return nil
	}
	names := []string{}
	for shift := 0; shift < 32; shift++ {
		if bits&(1<<shift) != 0 {
			if name := capi.Grey_throttle_reason_name(uint(1) << shift); name != "" {
				names = append(names, name)
			}
		}
	}
	return names
}

// ToMap is the sample as `greyctl detect --telemetry --json` prints it.
func (t *Telemetry) ToMap() map[string]any {
	out := fieldsMap(t.Fields, map[string]any{"timestamp_ns": t.TimestampNs})
	if f, _ := t.Field("throttle_reasons"); f.OK() {
		out["throttle_reason_names"] = t.ThrottleReasonNames()
	}
	return out
}
