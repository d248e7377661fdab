package grey

import (
	"encoding/json"
	"fmt"
	"runtime/cgo"
	"strings"

	"libgrey/grey/capi"
)

// FormatOverride quantizes the tensors whose name matches Pattern (RE2) in Format.
type FormatOverride struct {
	Pattern string
	Format  string
}

// ModelQuantOptions are the caller's choices for QuantizeModel; the zero value is libgrey's default
// policy (grey.h, "Whole models").
type ModelQuantOptions struct {
	Calibration      Calibration
	Keep             []string         // RE2 patterns of tensor names to keep in their precision
	Quantize         []string         // RE2 patterns of tensor names to quantize even if critical layers
	Formats          []FormatOverride // the first whose pattern matches a name gives its format
	QuantizeCritical bool             // quantize the critical layers too (embeddings, output layer, ...)
	AllowEmpty       bool             // succeed, and write, when no tensor is quantized
	Replace          bool             // replace a file already at the output path
	Context          *Context         // nil: host memory; else buffers on Device of the context
	Device           int
	Progress         Progress         // nil: no progress reports
}

// Progress is told of a whole-model call's progress: called before the first tensor (done 0, tensor
// "") and after each one, with the input tensor bytes done (kept tensors count too) and their total.
// Returning true stops the call, which then fails with StatusCancelled and writes nothing; so does a
// panic in it. It runs on the goroutine that made the call.
type Progress func(done, total uint64, tensor string) bool

// progressHandle is what the options' set_progress takes for p (0 for nil), and its release.
func progressHandle(p Progress) (uint64, func()) {
	if p == nil {
		return 0, func() {}
	}
	h := cgo.NewHandle(capi.ProgressFunc(p))
	return uint64(h), h.Delete
}

// ModelQuantRow is a quantized tensor in a ModelQuantReport; SQNRdB is nil when the result is exact.
type ModelQuantRow struct {
	Name          string   `json:"name"`
	Format        string   `json:"format"`
	Elements      uint64   `json:"elements"`
	BitsPerWeight float64  `json:"bits_per_weight"`
	RelRMSE       float64  `json:"rel_rmse"`
	SQNRdB        *float64 `json:"sqnr_db"`
	MaxAbsErr     float64  `json:"max_abs_err"`
}

// ModelKeptTensor is a tensor that kept its precision, and why.
type ModelKeptTensor struct {
	Name   string   `json:"name"`
	DType  string   `json:"dtype"`
	Shape  []uint64 `json:"shape"`
	Reason string   `json:"reason"`
}

// ModelQuantReport lists every tensor of the model: quantized (with its error) or kept (with the reason).
type ModelQuantReport struct {
	Tensors []ModelQuantRow   `json:"tensors"`
	Kept    []ModelKeptTensor `json:"kept"`
	Total   map[string]any    `json:"total"`
}

func patternLines(what string, patterns []string) (string, error) {
	var b strings.Builder
	for _, p := range patterns {
		if strings.ContainsRune(p, '\n') {
			return "", &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: %s: a pattern cannot hold a line break: %q", what, p)}
		}
		b.WriteString(p + "\n")
	}
	return b.String(), nil
}

func boolFlag(b bool) uint {
	if b {
		return 1
	}
	return 0
}

// QuantizeModel quantizes the model file input in format ("int4-g128", ...) under libgrey's policy and
// writes output (.safetensors or .gguf; "" to measure only). opts may be nil for the defaults.
func QuantizeModel(input, output, format string, opts *ModelQuantOptions) (*ModelQuantReport, error) {
	if opts == nil {
		opts = &ModelQuantOptions{}
	}
	overrides := make([]string, 0, len(opts.Formats))
	for _, f := range opts.Formats {
		overrides = append(overrides, f.Pattern+"="+f.Format)
	}
	var lines [3]string
	for i, list := range []struct {
		what     string
		patterns []string
	}{{"Keep", opts.Keep}, {"Quantize", opts.Quantize}, {"Formats", overrides}} {
		text, err := patternLines(list.what, list.patterns)
		if err != nil {
			return nil, err
		}
		lines[i] = text
	}
	options := capi.NewGrey_model_quant_options()
	defer capi.DeleteGrey_model_quant_options(options)
	options.SetCalibration(capi.Grey_quant_calibration(opts.Calibration))
	options.SetKeep_patterns(lines[0])
	options.SetQuantize_patterns(lines[1])
	options.SetFormat_overrides(lines[2])
	options.SetKeep_critical(1 - boolFlag(opts.QuantizeCritical))
	options.SetAllow_empty(boolFlag(opts.AllowEmpty))
	options.SetReplace(boolFlag(opts.Replace))
	handle, release := progressHandle(opts.Progress)
	defer release()
	capi.Grey_go_quant_options_set_progress(options, handle)
	run := func() (string, error) {
		out := []uintptr{0}
		if err := capi.Grey_model_quantize(input, output, format, options, out); err != nil {
			return "", err
		}
		result := capi.SwigcptrGrey_model_quant_result(out[0])
		defer capi.Grey_model_quant_result_destroy(result)
		return readText(func(b []byte, n []uint64) error { return capi.Grey_model_quant_result_json(result, b, n) })
	}
	var text string
	var err error
	if opts.Context == nil {
		text, err = run()
	} else {
		device, indexErr := deviceIndex(opts.Device)
		if indexErr != nil {
			return nil, indexErr
		}
		err = opts.Context.with(func(h capi.Grey_context) error {
			options.SetContext(h)
			options.SetDevice(device)
			var runErr error
			text, runErr = run()
			return runErr
		})
	}
	if err != nil {
		return nil, err
	}
	var report ModelQuantReport
	if err := json.Unmarshal([]byte(text), &report); err != nil {
		return nil, &Error{Status: int(StatusInternal), Message: "grey: libgrey's report is not JSON: " + err.Error()}
	}
	return &report, nil
}

// DequantizeModel restores a full-precision safetensors file output from the model input that libgrey
// quantized: quantized tensors become dtype (F32, F16 or BF16) in their original shape, the rest is copied.
func DequantizeModel(input, output string, dtype DType, replace bool) error {
	return DequantizeModelWithProgress(input, output, dtype, replace, nil)
}

// DequantizeModelWithProgress is DequantizeModel telling progress of every tensor (it can stop the call).
func DequantizeModelWithProgress(input, output string, dtype DType, replace bool, progress Progress) error {
	options := capi.NewGrey_model_dequant_options()
	defer capi.DeleteGrey_model_dequant_options(options)
	options.SetDtype(capi.Grey_dtype(dtype))
	options.SetReplace(boolFlag(replace))
	handle, release := progressHandle(progress)
	defer release()
	capi.Grey_go_dequant_options_set_progress(options, handle)
	return capi.Grey_model_dequantize(input, output, options)
}
