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

// writeQuantModel writes a model with an embedding, two matrices, a norm and a first and last convolution.
func writeQuantModel(t *testing.T, path string) map[string]grey.Tensor {
	t.Helper()
	pattern := func(n int, seed float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = (float32((i*7+int(seed))%23) - 11) / 16
		}
		return v
	}
	tensors := []struct {
		name  string
		shape []uint64
	}{{"embed_tokens.weight", []uint64{16, 64}}, {"conv_in.weight", []uint64{8, 3, 3, 3}}, {"layers.0.q.weight", []uint64{64, 64}},
		{"layers.0.norm.weight", []uint64{64}}, {"layers.0.out.weight", []uint64{32, 64}}, {"conv_out.weight", []uint64{4, 8, 1, 1}}}
	w, err := grey.NewModelWriter("safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	out := map[string]grey.Tensor{}
	for i, spec := range tensors {
		n := 1
		for _, d := range spec.shape {
			n *= int(d)
		}
		tensor := grey.Float32Tensor(pattern(n, float32(i)), spec.shape...)
		out[spec.name] = tensor
		if err := w.AddTensor(spec.name, tensor, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(path); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestQuantizeModelReportsEveryTensorWithItsReason(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.safetensors")
	writeQuantModel(t, model)
	report, err := grey.QuantizeModel(model, "", "int4-g64", nil)
	if err != nil {
		t.Fatal(err)
	}
	var quantized []string
	for _, row := range report.Tensors {
		quantized = append(quantized, row.Name)
	}
	if strings.Join(quantized, ",") != "layers.0.q.weight,layers.0.out.weight" {
		t.Errorf("quantized %v", quantized)
	}
	kept := map[string]string{}
	for _, k := range report.Kept {
		kept[k.Name] = k.Reason
	}
	want := map[string]string{"embed_tokens.weight": "embedding (critical layer)", "conv_in.weight": "first convolution (critical layer)",
		"layers.0.norm.weight": "one-dimensional (bias or norm)", "conv_out.weight": "last convolution (critical layer)"}
	for name, reason := range want {
		if kept[name] != reason {
			t.Errorf("%s kept as %q, want %q", name, kept[name], reason)
		}
	}
	if len(kept) != len(want) {
		t.Errorf("kept %v", kept)
	}

	overridden, err := grey.QuantizeModel(model, "", "int4-g64", &grey.ModelQuantOptions{Keep: []string{`\.out\.`},
		Quantize: []string{"^embed"}, Formats: []grey.FormatOverride{{Pattern: "^layers", Format: "int8"}}})
	if err != nil {
		t.Fatal(err)
	}
	formats := map[string]string{}
	for _, row := range overridden.Tensors {
		formats[row.Name] = row.Format
	}
	if len(formats) != 2 || formats["embed_tokens.weight"] != "int4-g64" || formats["layers.0.q.weight"] != "int8" {
		t.Errorf("formats %v", formats)
	}
	all, err := grey.QuantizeModel(model, "", "int8", &grey.ModelQuantOptions{QuantizeCritical: true})
	if err != nil || len(all.Tensors) != 5 {
		t.Errorf("QuantizeCritical: %v, %v", all, err)
	}
}

func TestQuantizeModelErrors(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.safetensors")
	writeQuantModel(t, model)
	_, err := grey.QuantizeModel(model, "", "int8", &grey.ModelQuantOptions{Keep: []string{"("}})
	if !errors.Is(err, grey.ErrInvalidArgument) || !strings.Contains(err.Error(), "keep pattern '(' is not a valid regular expression") {
		t.Errorf("bad pattern: %v", err)
	}
	out := filepath.Join(dir, "out.safetensors")
	_, err = grey.QuantizeModel(model, out, "int8", &grey.ModelQuantOptions{Keep: []string{"^layers"}})
	if !errors.Is(err, grey.ErrInvalidArgument) || !strings.Contains(err.Error(), "nothing to quantize") {
		t.Errorf("empty run: %v", err)
	}
	if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
		t.Errorf("the empty run wrote %s", out)
	}
	if report, err := grey.QuantizeModel(model, out, "int8", &grey.ModelQuantOptions{Keep: []string{"^layers"}, AllowEmpty: true}); err != nil || len(report.Tensors) != 0 {
		t.Errorf("AllowEmpty: %v, %v", report, err)
	}
}

func TestDequantizeModelRoundTrip(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.safetensors")
	original := writeQuantModel(t, model)
	quantized, restored := filepath.Join(dir, "q.safetensors"), filepath.Join(dir, "r.safetensors")
	report, err := grey.QuantizeModel(model, quantized, "q4_0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := grey.DequantizeModel(quantized, restored, grey.DTypeF32, false); err != nil {
		t.Fatal(err)
	}
	m, err := grey.OpenModel(restored)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	wasQuantized := map[string]bool{}
	for _, row := range report.Tensors {
		wasQuantized[row.Name] = true
	}
	for name, tensor := range original {
		back, err := m.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		want := tensor.Data
		if wasQuantized[name] {
			q, err := grey.Quantize(tensor, "q4_0", grey.CalibrationRTN)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := q.Dequantize(grey.DTypeF32)
			if err != nil {
				t.Fatal(err)
			}
			want = plain.Data
		}
		if !bytes.Equal(back.Data, want) {
			t.Errorf("%s: restored values differ", name)
		}
	}
	if err := grey.DequantizeModel(model, filepath.Join(dir, "x.safetensors"), grey.DTypeF32, false); !errors.Is(err, grey.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "nothing to dequantize") {
		t.Errorf("not quantized: %v", err)
	}
}

func TestModelProgressReportsEveryTensorAndStops(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.safetensors")
	writeQuantModel(t, model)
	type call struct {
		done, total uint64
		tensor      string
	}
	var calls []call
	record := func(done, total uint64, tensor string) bool {
		calls = append(calls, call{done, total, tensor})
		return false
	}
	quantized := filepath.Join(dir, "q.safetensors")
	if _, err := grey.QuantizeModel(model, quantized, "int4-g32", &grey.ModelQuantOptions{Progress: record}); err != nil {
		t.Fatal(err)
	}
	names := []string{"", "embed_tokens.weight", "conv_in.weight", "layers.0.q.weight", "layers.0.norm.weight", "layers.0.out.weight", "conv_out.weight"}
	sizes := []uint64{0, 16 * 64 * 4, 8 * 3 * 3 * 3 * 4, 64 * 64 * 4, 64 * 4, 32 * 64 * 4, 4 * 8 * 4}
	var total, done uint64
	for _, s := range sizes {
		total += s
	}
	if len(calls) != len(names) {
		t.Fatalf("calls %v", calls)
	}
	for i, c := range calls {
		done += sizes[i]
		if c != (call{done, total, names[i]}) {
			t.Errorf("call %d: %v, want %v", i, c, call{done, total, names[i]})
		}
	}
	// true stops the call (StatusCancelled, nothing written); a panic stops it too.
	stopped := filepath.Join(dir, "stopped.safetensors")
	_, err := grey.QuantizeModel(model, stopped, "int4-g32", &grey.ModelQuantOptions{Progress: func(_, _ uint64, tensor string) bool { return tensor == "layers.0.q.weight" }})
	if grey.StatusOf(err) != grey.StatusCancelled || !strings.Contains(err.Error(), "cancelled by the progress callback") {
		t.Errorf("stopped: %v", err)
	}
	if _, statErr := os.Stat(stopped); !os.IsNotExist(statErr) {
		t.Errorf("%s was written", stopped)
	}
	restored := filepath.Join(dir, "r.safetensors")
	err = grey.DequantizeModelWithProgress(quantized, restored, grey.DTypeF32, false, func(uint64, uint64, string) bool { panic("a bug") })
	if !errors.Is(err, grey.ErrCancelled) {
		t.Errorf("a panicking callback: %v", err)
	}
}
