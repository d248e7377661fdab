package grey

import (
	"fmt"
	"math"
	"unsafe"

	"libgrey/grey/capi"
)

// DType is a grey_dtype: the element type of a tensor. String gives its grey.h name ("F32", "BF16",
// "Q4_0", ...).
type DType int

// The element types quantization reads and writes; every other grey_dtype is a DType too (ParseDType).
const (
	DTypeF32  DType = 0
	DTypeF16  DType = 1
	DTypeBF16 DType = 2
)

func (d DType) String() string {
	if name := capi.Grey_dtype_name(capi.Grey_dtype(d)); name != "" {
		return name
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// ParseDType is the DType of a grey.h name ("F32", "BF16", "Q8_0", ...).
func ParseDType(name string) (DType, error) {
	for d := 0; d < 256; d++ {
		n := capi.Grey_dtype_name(capi.Grey_dtype(d))
		if n == "" {
			break
		}
		if n == name {
			return DType(d), nil
		}
	}
	return 0, &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: unknown element type %q", name)}
}

// Calibration is how quantization chooses its scales.
type Calibration int

const (
	// CalibrationRTN rounds to nearest with the scale taken from the absolute maximum.
	CalibrationRTN Calibration = 0
	// CalibrationMSE searches each group's clipping range for the least squared error.
	CalibrationMSE Calibration = 1
)

func (c Calibration) String() string {
	switch c {
	case CalibrationRTN:
		return "rtn"
	case CalibrationMSE:
		return "mse"
	}
	return fmt.Sprintf("Calibration(%d)", int(c))
}

// QuantParams is a grey_quant_params. Make one from a format name with QuantParamsFromName.
type QuantParams struct {
	Format      int // a grey_quant_format value (capi.GREY_QUANT_INT8, ...)
	Calibration Calibration
	GroupSize   uint32
	Axis        int32
}

// QuantFormats is every format name libgrey knows ("int8", "int4-g128", ...), in its documented order.
func QuantFormats() []string {
	n := int(capi.Grey_quant_name_count())
	names := make([]string, 0, n)
	for i := 0; i < n; i++ {
		names = append(names, capi.Grey_quant_name_at(uint(i)))
	}
	return names
}

// QuantParamsFromName parses a format name (grey_quant_params_from_name); calibration RTN. An unknown
// name is an ErrInvalidArgument whose message lists the valid ones.
func QuantParamsFromName(name string) (QuantParams, error) {
	raw := capi.NewGrey_quant_params()
	defer capi.DeleteGrey_quant_params(raw)
	if err := capi.Grey_quant_params_from_name(name, raw); err != nil {
		return QuantParams{}, err
	}
	return QuantParams{Format: int(raw.GetFormat()), Calibration: Calibration(raw.GetCalibration()),
		GroupSize: uint32(raw.GetGroup_size()), Axis: int32(raw.GetAxis())}, nil
}

// Name is the format name of p (grey_quant_params_name), or "" when no name stands for it.
func (p QuantParams) Name() string {
	raw := p.raw()
	defer capi.DeleteGrey_quant_params(raw)
	return capi.Grey_quant_params_name(raw)
}

func (p QuantParams) raw() capi.Grey_quant_params {
	raw := capi.NewGrey_quant_params()
	raw.SetFormat(capi.Grey_quant_format(p.Format))
	raw.SetCalibration(capi.Grey_quant_calibration(p.Calibration))
	raw.SetGroup_size(uint(p.GroupSize))
	raw.SetAxis(int(p.Axis))
	return raw
}

// Tensor is a tensor in host memory: its element type, shape (outermost first) and bytes.
type Tensor struct {
	DType DType
	Shape []uint64
	Data  []byte
}

// Float32Tensor views values as an F32 tensor of shape, without copying them.
func Float32Tensor(values []float32, shape ...uint64) Tensor {
	var data []byte
	if len(values) > 0 {
		data = unsafe.Slice((*byte)(unsafe.Pointer(&values[0])), len(values)*4)
	}
	return Tensor{DType: DTypeF32, Shape: shape, Data: data}
}

// Float32s views the bytes of an F32 tensor as []float32, without copying them.
func (t Tensor) Float32s() ([]float32, error) {
	if t.DType != DTypeF32 || len(t.Data)%4 != 0 {
		return nil, &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: a %v tensor of %d bytes is not []float32", t.DType, len(t.Data))}
	}
	if len(t.Data) == 0 {
		return []float32{}, nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&t.Data[0])), len(t.Data)/4), nil
}

// newDesc makes a grey_tensor_desc; the caller deletes it.
func newDesc(dtype DType, shape []uint64) (capi.Grey_tensor_desc, error) {
	var dims [capi.GREY_TENSOR_MAX_RANK]uint64
	if len(shape) > len(dims) {
		return nil, &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: rank %d is more than libgrey's %d", len(shape), len(dims))}
	}
	copy(dims[:], shape)
	desc := capi.NewGrey_tensor_desc()
	desc.SetDtype(capi.Grey_dtype(dtype))
	desc.SetRank(uint(len(shape)))
	desc.SetShape(&dims[0]) // copied into the struct
	return desc, nil
}

func descShape(desc capi.Grey_tensor_desc) []uint64 {
	dims := unsafe.Slice(desc.GetShape(), capi.GREY_TENSOR_MAX_RANK)
	return append([]uint64(nil), dims[:desc.GetRank()]...)
}

// QuantReport is what a quantization cost, measured against a float64 reference.
type QuantReport struct {
	Calibration      Calibration
	Elements         uint64
	Bytes            uint64
	BitsPerWeight    float64
	RelRMSE          float64
	SQNRdB           float64 // +Inf when the result is exact
	MaxAbsErr        float64
	SumSquaredError  float64
	SumSquaredSignal float64
}

func newQuantReport(raw capi.Grey_quant_report) *QuantReport {
	return &QuantReport{Calibration: Calibration(raw.GetCalibration()), Elements: raw.GetElements(), Bytes: raw.GetBytes(),
		BitsPerWeight: raw.GetBits_per_weight(), RelRMSE: raw.GetRel_rmse(), SQNRdB: raw.GetSqnr_db(),
		MaxAbsErr: raw.GetMax_abs_err(), SumSquaredError: raw.GetSum_squared_error(), SumSquaredSignal: raw.GetSum_squared_signal()}
}

// ToMap is the report with the keys greyctl's JSON uses; an infinite SQNR is nil.
func (r *QuantReport) ToMap() map[string]any {
	var sqnr any = r.SQNRdB
	if math.IsInf(r.SQNRdB, 0) {
		sqnr = nil
	}
	return map[string]any{"calibration": r.Calibration.String(), "elements": r.Elements, "bytes": r.Bytes,
		"bits_per_weight": r.BitsPerWeight, "rel_rmse": r.RelRMSE, "sqnr_db": sqnr, "max_abs_err": r.MaxAbsErr,
		"sum_squared_error": r.SumSquaredError, "sum_squared_signal": r.SumSquaredSignal}
}

// QuantizedTensor is a quantized tensor: its bytes in the layout of docs/quantization.md, what it was
// made from, and the error measured when it was made.
type QuantizedTensor struct {
	Format string // the format name
	Params QuantParams
	Shape  []uint64
	DType  DType // the element type it was quantized from
	Data   []byte
	Report *QuantReport
}

func plainType(d DType, what string) error {
	if d != DTypeF32 && d != DTypeF16 && d != DTypeBF16 {
		return &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: %s must be F32, F16 or BF16, not %v", what, d)}
	}
	return nil
}

// QuantSize is the bytes the quantized form of a tensor of shape takes in format.
func QuantSize(shape []uint64, format string) (uint64, error) {
	p, err := QuantParamsFromName(format)
	if err != nil {
		return 0, err
	}
	return quantSize(shape, p)
}

func quantSize(shape []uint64, p QuantParams) (uint64, error) {
	desc, err := newDesc(DTypeF32, shape)
	if err != nil {
		return 0, err
	}
	defer capi.DeleteGrey_tensor_desc(desc)
	params := p.raw()
	defer capi.DeleteGrey_quant_params(params)
	size := []uint64{0}
	err = capi.Grey_quant_size(desc, params, size)
	return size[0], err
}

// Quantize quantizes t (F32, F16 or BF16) into format ("int8", "int4-g128", ...; QuantFormats) and
// measures the error. The input is read in place; the result is written straight into Data.
func Quantize(t Tensor, format string, calibration Calibration) (*QuantizedTensor, error) {
	p, err := QuantParamsFromName(format)
	if err != nil {
		return nil, err
	}
	p.Calibration = calibration
	if err := plainType(t.DType, "the input"); err != nil {
		return nil, err
	}
	desc, err := newDesc(t.DType, t.Shape)
	if err != nil {
		return nil, err
	}
	defer capi.DeleteGrey_tensor_desc(desc)
	params := p.raw()
	defer capi.DeleteGrey_quant_params(params)
	size := []uint64{0}
	if err := capi.Grey_quant_size(desc, params, size); err != nil {
		return nil, err
	}
	out := make([]byte, size[0])
	report := capi.NewGrey_quant_report()
	defer capi.DeleteGrey_quant_report(report)
	if err := capi.Grey_quantize(desc, t.Data, params, out, report); err != nil {
		return nil, err
	}
	return &QuantizedTensor{Format: format, Params: p, Shape: append([]uint64(nil), t.Shape...), DType: t.DType, Data: out,
		Report: newQuantReport(report)}, nil
}

// Dequantize gives the values back as a new tensor of dtype (F32, F16 or BF16).
func (q *QuantizedTensor) Dequantize(dtype DType) (Tensor, error) {
	if err := plainType(dtype, "the output"); err != nil {
		return Tensor{}, err
	}
	desc, err := newDesc(dtype, q.Shape)
	if err != nil {
		return Tensor{}, err
	}
	defer capi.DeleteGrey_tensor_desc(desc)
	params := q.Params.raw()
	defer capi.DeleteGrey_quant_params(params)
	elements := uint64(1)
	for _, n := range q.Shape {
		elements *= n
	}
	width := uint64(2)
	if dtype == DTypeF32 {
		width = 4
	}
	out := Tensor{DType: dtype, Shape: append([]uint64(nil), q.Shape...), Data: make([]byte, elements*width)}
	if err := capi.Grey_dequantize(desc, params, q.Data, out.Data); err != nil {
		return Tensor{}, err
	}
	return out, nil
}

// QuantCompare measures approximation against reference (same type and shape) in float64.
func QuantCompare(reference, approximation Tensor) (*QuantReport, error) {
	if reference.DType != approximation.DType || len(reference.Data) != len(approximation.Data) ||
		fmt.Sprint(reference.Shape) != fmt.Sprint(approximation.Shape) {
		return nil, &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf(
			"grey: reference is %v%v, approximation %v%v: they must match", reference.DType, reference.Shape,
			approximation.DType, approximation.Shape)}
	}
	desc, err := newDesc(reference.DType, reference.Shape)
	if err != nil {
		return nil, err
	}
	defer capi.DeleteGrey_tensor_desc(desc)
	report := capi.NewGrey_quant_report()
	defer capi.DeleteGrey_quant_report(report)
	if err := capi.Grey_quant_compare(desc, reference.Data, approximation.Data, report); err != nil {
		return nil, err
	}
	return newQuantReport(report), nil
}
