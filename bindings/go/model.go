package grey

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"libgrey/grey/capi"
)

// Model is a safetensors or GGUF file, memory-mapped read-only (the format is chosen by content).
// Safe for concurrent use.
//
// Close it when done. It has no finalizer, deliberately: its tensors' Data slices point into the
// mapping, and Go cannot see those references, so only the program knows when the mapping may go.
type Model struct {
	guarded[capi.Grey_model]
	Path string
}

// ModelTensor is one tensor of a model file. Data is a view of the mapped file, valid until the
// model is closed (copy it to keep it longer); never write to it.
type ModelTensor struct {
	Name     string
	DType    DType
	Shape    []uint64
	FileType uint32 // GGUF: the ggml type number; safetensors: 0
	Data     []byte
}

// Tensor is the tensor as a plain Tensor, for Quantize (its Data is still the view).
func (t *ModelTensor) Tensor() Tensor { return Tensor{DType: t.DType, Shape: t.Shape, Data: t.Data} }

// OpenModel maps the file at path; a truncated or malformed file is an ErrCorrupt naming what is wrong.
func OpenModel(path string) (*Model, error) {
	out := []uintptr{0}
	if err := capi.Grey_model_create(path, out); err != nil {
		return nil, err
	}
	m := &Model{Path: path}
	m.set(capi.SwigcptrGrey_model(out[0]))
	return m, nil
}

// Close unmaps the file; the tensors' Data slices become invalid. Safe to call more than once.
func (m *Model) Close() error {
	m.close(capi.Grey_model_destroy)
	return nil
}

// Format is "safetensors" or "gguf".
func (m *Model) Format() (string, error) {
	format := []int{0}
	if err := m.with(func(h capi.Grey_model) error { return capi.Grey_model_format_get(h, format) }); err != nil {
		return "", err
	}
	switch capi.Grey_model_format(format[0]) {
	case capi.GREY_MODEL_FORMAT_SAFETENSORS:
		return "safetensors", nil
	case capi.GREY_MODEL_FORMAT_GGUF:
		return "gguf", nil
	}
	return fmt.Sprintf("format %d", format[0]), nil
}

// Len is the number of tensors.
func (m *Model) Len() (int, error) {
	n := []uint64{0}
	err := m.with(func(h capi.Grey_model) error { return capi.Grey_model_tensor_count(h, n) })
	return int(n[0]), err
}

// Tensor is the tensor at index, in file order.
func (m *Model) Tensor(index int) (*ModelTensor, error) {
	if index < 0 {
		return nil, &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: negative tensor index %d", index)}
	}
	var t *ModelTensor
	err := m.with(func(h capi.Grey_model) error {
		raw := capi.NewGrey_model_tensor()
		defer capi.DeleteGrey_model_tensor(raw)
		if err := capi.Grey_model_tensor_get(h, uint64(index), raw); err != nil {
			return err
		}
		desc := raw.GetDesc()
		t = &ModelTensor{Name: raw.GetName(), DType: DType(desc.GetDtype()), Shape: descShape(desc),
			FileType: uint32(raw.GetFile_type())}
		if size := raw.GetSize_bytes(); size > 0 {
			t.Data = unsafe.Slice(raw.GetData(), size)
		}
		return nil
	})
	return t, err
}

// Tensors is every tensor, in file order.
func (m *Model) Tensors() ([]*ModelTensor, error) {
	n, err := m.Len()
	if err != nil {
		return nil, err
	}
	out := make([]*ModelTensor, 0, n)
	for i := 0; i < n; i++ {
		t, err := m.Tensor(i)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Lookup is the tensor called name, or ErrNotFound.
func (m *Model) Lookup(name string) (*ModelTensor, error) {
	tensors, err := m.Tensors()
	if err != nil {
		return nil, err
	}
	for _, t := range tensors {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, &Error{Status: int(StatusNotFound), Message: fmt.Sprintf("grey: no tensor %q in %s", name, m.Path)}
}

// ModelWriter writes a safetensors or GGUF file: all at once (AddTensor, Write) or streamed
// (DeclareTensor, Open, WriteTensor, Finish). Either way the file appears at its path only when
// complete, and a writer closed unfinished leaves nothing behind. Not safe for
// concurrent use: libgrey's writer is for one goroutine at a time. Close frees it (a finalizer is the
// safety net).
type ModelWriter struct {
	guarded[capi.Grey_model_writer]
}

// NewModelWriter starts a file of format "safetensors" or "gguf".
func NewModelWriter(format string) (*ModelWriter, error) {
	var f capi.Grey_model_format
	switch strings.ToLower(format) {
	case "safetensors":
		f = capi.GREY_MODEL_FORMAT_SAFETENSORS
	case "gguf":
		f = capi.GREY_MODEL_FORMAT_GGUF
	default:
		return nil, &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: unknown model format %q (safetensors or gguf)", format)}
	}
	out := []uintptr{0}
	if err := capi.Grey_model_writer_create(f, out); err != nil {
		return nil, err
	}
	w := &ModelWriter{}
	w.set(capi.SwigcptrGrey_model_writer(out[0]))
	runtime.SetFinalizer(w, (*ModelWriter).Close)
	return w, nil
}

// Close frees the writer. Safe to call more than once.
func (w *ModelWriter) Close() error {
	w.close(capi.Grey_model_writer_destroy)
	runtime.SetFinalizer(w, nil)
	return nil
}

// CopyMetadata copies every metadata entry of source.
func (w *ModelWriter) CopyMetadata(source *Model) error {
	return w.with(func(wh capi.Grey_model_writer) error {
		return source.with(func(h capi.Grey_model) error { return capi.Grey_model_writer_copy_metadata(wh, h) })
	})
}

// SetMetadata sets a string metadata entry, replacing one of the same key.
func (w *ModelWriter) SetMetadata(key, value string) error {
	return w.with(func(h capi.Grey_model_writer) error { return capi.Grey_model_writer_set_metadata(h, key, value) })
}

// AddTensor adds a tensor (its bytes are copied). fileType is the ggml type number, read only for a
// GGUF tensor whose DType is OTHER.
func (w *ModelWriter) AddTensor(name string, t Tensor, fileType uint32) error {
	desc, err := newDesc(t.DType, t.Shape)
	if err != nil {
		return err
	}
	defer capi.DeleteGrey_tensor_desc(desc)
	return w.with(func(h capi.Grey_model_writer) error {
		return capi.Grey_model_writer_add_tensor(h, name, desc, uint(fileType), t.Data)
	})
}

// Write writes the file, replacing path.
func (w *ModelWriter) Write(path string) error {
	return w.with(func(h capi.Grey_model_writer) error { return capi.Grey_model_writer_write(h, path) })
}

// Evict drops the pages of tensor index from the process's resident memory. Its Data stays valid and
// reads the file again if touched: a program walking a model larger than memory evicts each tensor when
// done with it.
func (m *Model) Evict(index int) error {
	if index < 0 {
		return &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: negative tensor index %d", index)}
	}
	return m.with(func(h capi.Grey_model) error { return capi.Grey_model_tensor_evict(h, uint64(index)) })
}

// DeclareTensor declares the next tensor without its bytes, for a streamed file (declare every tensor,
// Open, WriteTensor each, Finish: memory holds one tensor at a time). It returns the tensor's index.
func (w *ModelWriter) DeclareTensor(name string, dtype DType, shape []uint64, fileType uint32) (int, error) {
	desc, err := newDesc(dtype, shape)
	if err != nil {
		return 0, err
	}
	defer capi.DeleteGrey_tensor_desc(desc)
	index := []uint64{0}
	err = w.with(func(h capi.Grey_model_writer) error {
		return capi.Grey_model_writer_declare_tensor(h, name, desc, uint(fileType), index)
	})
	return int(index[0]), err
}

// Open starts the streamed file at path (its header is written now). A file already there is an ErrIO
// unless replace. The file appears at path only when Finish succeeds.
func (w *ModelWriter) Open(path string, replace bool) error {
	options := capi.NewGrey_model_write_options()
	defer capi.DeleteGrey_model_write_options(options)
	if replace {
		options.SetReplace(1)
	}
	return w.with(func(h capi.Grey_model_writer) error { return capi.Grey_model_writer_open(h, path, options) })
}

// WriteTensor writes the next bytes of declared tensor index (tensors in any order, a tensor in one or
// more pieces).
func (w *ModelWriter) WriteTensor(index int, data []byte) error {
	if index < 0 {
		return &Error{Status: int(StatusInvalidArgument), Message: fmt.Sprintf("grey: negative tensor index %d", index)}
	}
	return w.with(func(h capi.Grey_model_writer) error {
		return capi.Grey_model_writer_write_tensor(h, uint64(index), data)
	})
}

// Finish completes the streamed file and puts it at its path.
func (w *ModelWriter) Finish() error {
	return w.with(func(h capi.Grey_model_writer) error { return capi.Grey_model_writer_finish(h) })
}
