package grey_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"libgrey/grey"
)

var formatNames = []string{"int8", "int8-token", "int4-g32", "int4-g64", "int4-g128", "int4-sym-g128", "fp8-e4m3",
	"fp8-e5m2", "nf4", "q8_0", "q4_0", "q4_1"}

func gaussian(n int, seed int64) []float32 {
	rng := rand.New(rand.NewSource(seed))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64() * 0.02)
	}
	return out
}

func TestQuantFormatNames(t *testing.T) {
	if got := grey.QuantFormats(); !reflect.DeepEqual(got, formatNames) {
		t.Fatalf("QuantFormats = %v", got)
	}
	for _, name := range formatNames {
		p, err := grey.QuantParamsFromName(name)
		if err != nil {
			t.Fatal(err)
		}
		if p.Calibration != grey.CalibrationRTN || p.Name() != name {
			t.Errorf("%s: %+v names itself %q", name, p, p.Name())
		}
	}
	p, _ := grey.QuantParamsFromName("int8")
	p.Axis = 1
	if p.Name() != "" {
		t.Errorf("int8 on axis 1 has no name, got %q", p.Name())
	}
}

func TestQuantizeEveryFormatRoundTrips(t *testing.T) {
	x := gaussian(64*256, 7)
	input := grey.Float32Tensor(x, 64, 256)
	for _, name := range formatNames {
		q, err := grey.Quantize(input, name, grey.CalibrationRTN)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		size, err := grey.QuantSize(input.Shape, name)
		if err != nil || uint64(len(q.Data)) != size || q.Report.Bytes != size {
			t.Fatalf("%s: %d bytes, QuantSize %d (%v), report %d", name, len(q.Data), size, err, q.Report.Bytes)
		}
		r := q.Report
		if r.Elements != 64*256 || r.BitsPerWeight != 8*float64(r.Bytes)/float64(r.Elements) || r.RelRMSE <= 0 || r.RelRMSE > 0.25 {
			t.Errorf("%s: report %+v", name, r)
		}
		back, err := q.Dequantize(grey.DTypeF32)
		if err != nil {
			t.Fatal(err)
		}
		again, err := grey.QuantCompare(input, back)
		if err != nil {
			t.Fatal(err)
		}
		// The measurement of the dequantized values is the report's, exactly.
		if again.RelRMSE != r.RelRMSE || again.MaxAbsErr != r.MaxAbsErr || again.SQNRdB != r.SQNRdB {
			t.Errorf("%s: compare %+v, report %+v", name, again, r)
		}
		if math.Abs(r.SQNRdB+20*math.Log10(r.RelRMSE)) > 1e-9 {
			t.Errorf("%s: sqnr %v and rel_rmse %v disagree", name, r.SQNRdB, r.RelRMSE)
		}
	}
}

func TestQuantizeCalibrationAndHalfInputs(t *testing.T) {
	input := grey.Float32Tensor(gaussian(8*128, 3), 8, 128)
	rtn, err := grey.Quantize(input, "int4-g128", grey.CalibrationRTN)
	if err != nil {
		t.Fatal(err)
	}
	mse, err := grey.Quantize(input, "int4-g128", grey.CalibrationMSE)
	if err != nil {
		t.Fatal(err)
	}
	if mse.Report.Calibration != grey.CalibrationMSE || mse.Report.RelRMSE > rtn.Report.RelRMSE {
		t.Errorf("mse %+v vs rtn %+v", mse.Report, rtn.Report)
	}
	// F16 in, F16 out: the dequantized F16 tensor is the F32 one rounded.
	half, err := rtn.Dequantize(grey.DTypeF16)
	if err != nil || half.DType != grey.DTypeF16 || len(half.Data) != 8*128*2 {
		t.Fatalf("F16 dequantize: %v %v %d", err, half.DType, len(half.Data))
	}
	q16, err := grey.Quantize(half, "q8_0", grey.CalibrationRTN)
	if err != nil || q16.DType != grey.DTypeF16 {
		t.Fatalf("F16 quantize: %v", err)
	}
	if m := rtn.Report.ToMap(); m["calibration"] != "rtn" || m["elements"] != uint64(1024) {
		t.Errorf("ToMap: %v", m)
	}
}

func TestQuantizeErrorsCarryLibgreysMessages(t *testing.T) {
	input := grey.Float32Tensor(gaussian(2*96, 1), 2, 96)
	_, err := grey.Quantize(input, "int3", grey.CalibrationRTN)
	want := "unknown quantization format name 'int3'; valid names: int8, int8-token, int4-g32, int4-g64, int4-g128, " +
		"int4-sym-g128, fp8-e4m3, fp8-e5m2, nf4, q8_0, q4_0, q4_1"
	if !errors.Is(err, grey.ErrInvalidArgument) || err.Error() != want {
		t.Errorf("bad name: %v", err)
	}
	if _, err := grey.Quantize(grey.Float32Tensor(gaussian(2*48, 1), 2, 48), "q4_0", grey.CalibrationRTN); !errors.Is(err, grey.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "innermost dimension 48 is not a multiple of 32") {
		t.Errorf("bad shape: %v", err)
	}
	if _, err := grey.Quantize(grey.Tensor{DType: grey.DTypeF32, Shape: []uint64{2, 96}, Data: input.Data[:10]}, "int8",
		grey.CalibrationRTN); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("short data: %v", err)
	}
	if _, err := grey.Quantize(grey.Tensor{DType: 4, Shape: []uint64{4}, Data: make([]byte, 4)}, "int8",
		grey.CalibrationRTN); !errors.Is(err, grey.ErrInvalidArgument) || !strings.Contains(err.Error(), "F32, F16 or BF16") {
		t.Errorf("int8 input: %v", err)
	}
	if _, err := grey.QuantCompare(input, grey.Float32Tensor(make([]float32, 2), 2)); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("mismatched compare: %v", err)
	}
	if d, err := grey.ParseDType("BF16"); err != nil || d != grey.DTypeBF16 || d.String() != "BF16" {
		t.Errorf("ParseDType: %v %v", d, err)
	}
	if _, err := grey.ParseDType("F33"); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("ParseDType(F33): %v", err)
	}
}

func TestModelWriteReadAndQuantizeATensor(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "small.safetensors")
	values := make([]float32, 4*64)
	for i := range values {
		values[i] = float32(i) / 64
	}
	w, err := grey.NewModelWriter("safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetMetadata("origin", "go test"); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("w", grey.Float32Tensor(values, 4, 64), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(path); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := w.Write(path); !errors.Is(err, grey.ErrClosed) {
		t.Errorf("closed writer: %v", err)
	}

	m, err := grey.OpenModel(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if f, err := m.Format(); err != nil || f != "safetensors" {
		t.Errorf("format %q %v", f, err)
	}
	tensor, err := m.Lookup("w")
	if err != nil {
		t.Fatal(err)
	}
	if tensor.DType != grey.DTypeF32 || !reflect.DeepEqual(tensor.Shape, []uint64{4, 64}) {
		t.Errorf("tensor %+v", tensor)
	}
	got, _ := tensor.Tensor().Float32s()
	if !reflect.DeepEqual(got, values) {
		t.Errorf("the mapped bytes differ from what was written")
	}
	fromFile, err := grey.Quantize(tensor.Tensor(), "q4_0", grey.CalibrationRTN)
	if err != nil {
		t.Fatal(err)
	}
	fromMemory, _ := grey.Quantize(grey.Float32Tensor(values, 4, 64), "q4_0", grey.CalibrationRTN)
	if !bytes.Equal(fromFile.Data, fromMemory.Data) {
		t.Errorf("quantizing the mapped tensor differs from quantizing memory")
	}

	gguf := filepath.Join(dir, "q.gguf")
	w2, _ := grey.NewModelWriter("gguf")
	defer w2.Close()
	if err := w2.CopyMetadata(m); err != nil {
		t.Fatal(err)
	}
	q8, _ := grey.ParseDType("Q8_0")
	q, _ := grey.Quantize(tensor.Tensor(), "q8_0", grey.CalibrationRTN)
	if err := w2.AddTensor("w", grey.Tensor{DType: q8, Shape: q.Shape, Data: q.Data}, 0); err != nil {
		t.Fatal(err)
	}
	if err := w2.Write(gguf); err != nil {
		t.Fatal(err)
	}
	m2, err := grey.OpenModel(gguf)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if f, _ := m2.Format(); f != "gguf" {
		t.Errorf("format %q", f)
	}
	if back, err := m2.Tensor(0); err != nil || back.DType != q8 || !bytes.Equal(back.Data, q.Data) {
		t.Errorf("gguf tensor %+v %v", back, err)
	}
}

func TestModelErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := grey.OpenModel(filepath.Join(dir, "missing.safetensors")); !errors.Is(err, grey.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	junk := filepath.Join(dir, "junk.safetensors")
	os.WriteFile(junk, bytes.Repeat([]byte{0xff}, 16), 0o644)
	if _, err := grey.OpenModel(junk); !errors.Is(err, grey.ErrCorrupt) {
		t.Errorf("junk: %v", err)
	}
	if _, err := grey.NewModelWriter("onnx"); !errors.Is(err, grey.ErrInvalidArgument) {
		t.Errorf("onnx: %v", err)
	}
	path := filepath.Join(dir, "one.safetensors")
	w, _ := grey.NewModelWriter("safetensors")
	w.AddTensor("x", grey.Float32Tensor([]float32{1, 2}, 2), 0)
	w.Write(path)
	w.Close()
	m, _ := grey.OpenModel(path)
	m.Close()
	if _, err := m.Tensor(0); !errors.Is(err, grey.ErrClosed) {
		t.Errorf("closed model: %v", err)
	}
	if _, err := m.Tensor(-1); err == nil {
		t.Errorf("negative index accepted")
	}
}
