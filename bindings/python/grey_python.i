/*
 * Python typemaps for bindings/grey.i. The raw module they produce is grey.capi; the Pythonic layer in
 * grey/ is written on top of it.
 *
 *   grey_status            -> None, or raises the grey.Error subclass for the status, carrying
 *                             grey_last_error() (read on the failing thread, before anything else)
 *   T** out_x              -> an extra return value: the raw handle (grey/ wraps it in an owner)
 *   uint32_t* / uint64_t* / size_t* / int32_t* / int64_t* / double* / enum*
 *                          -> an extra return value
 *   (char* buffer, size_t buffer_size, size_t* out_length)
 *                          -> takes the capacity in bytes (NUL included), returns the text; a capacity
 *                             too small raises grey.BufferTooSmall whose .required is the size to ask for
 *   (const void* source, uint64_t size_bytes)
 *                          -> any C-contiguous buffer-protocol object (bytes, bytearray, memoryview,
 *                             NumPy array), read in place without a copy
 *   (void* destination, uint64_t size_bytes)
 *                          -> any writable C-contiguous buffer-protocol object, filled in place
 *                             (the same for (const void* source, uint64_t source_bytes),
 *                             (void* destination, uint64_t destination_bytes) and
 *                             (const void* data, uint64_t size_bytes))
 *   (const void* reference, const void* approximation, uint64_t bytes_each)
 *                          -> two buffer-protocol objects of the same length (ValueError otherwise)
 *   const char*            -> str (sent as UTF-8), bytes, or os.PathLike; None is NULL. One holding a NUL
 *                             byte raises grey.InvalidArgument naming the parameter (or struct member)
 *                             and the library is not called: C would read the string only up to it
 *   uint8_t out_digest[N]  -> an extra return value: bytes
 *   uint8_t member[N]      -> bytes (read-only struct members: hashes and ids)
 *
 * Helpers the Pythonic layer needs beyond grey.h (all named grey_py_*): the log callback, read-only
 * memory views of model files that keep their owner alive, and DLPack capsules of mapped buffers.
 */

%{
#include <Python.h>

/* The size a text call asked for when it failed with GREY_ERROR_BUFFER_TOO_SMALL (this thread). */
static thread_local size_t grey_py_required_size = 0;

/* Sets the Python error grey.errors.from_status(status, message, required). */
static void grey_py_raise_message(grey_status status, const std::string& message, size_t required) {
    PyObject* errors = PyImport_ImportModule("grey.errors");
    if (errors == nullptr) return;
    PyObject* error = PyObject_CallMethod(errors, "from_status", "isn", static_cast<int>(status), message.c_str(),
                                          static_cast<Py_ssize_t>(required));
    Py_DECREF(errors);
    if (error == nullptr) return;
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error)), error);
    Py_DECREF(error);
}

/* Sets the Python error for a failed call, with grey_last_error() (read on this, the failing, thread). */
static void grey_py_raise(grey_status status) {
    const char* detail = grey_last_error();
    const std::string message = (detail != nullptr && *detail != '\0') ? detail : grey_status_string(status);
    const size_t required = status == GREY_ERROR_BUFFER_TOO_SMALL ? grey_py_required_size : 0;
    grey_py_required_size = 0;
    grey_py_raise_message(status, message, required);
}

/* The bytes of a string argument: str (as UTF-8), bytes, or an os.PathLike giving either. `keep`
 * receives a new reference to hold until the call is over (the PathLike's str or bytes), or nullptr.
 * Raises grey.InvalidArgument when the text holds a NUL byte, which the library would silently read
 * as the string's end (grey.i). */
static const char* grey_py_string(PyObject* input, const char* symbol, const char* parameter, PyObject** keep) {
    *keep = nullptr;
    PyObject* text = input;
    if (!PyUnicode_Check(text) && !PyBytes_Check(text)) {
        if (PyObject_HasAttrString(text, "__fspath__")) *keep = PyOS_FSPath(text);
        if (*keep == nullptr) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError, "%s: %s must be str, bytes or os.PathLike, not %s", symbol, parameter,
                             Py_TYPE(input)->tp_name);
            }
            return nullptr;
        }
        text = *keep;
    }
    const char* data = nullptr;
    Py_ssize_t size = 0;
    if (PyUnicode_Check(text)) {
        data = PyUnicode_AsUTF8AndSize(text, &size);
        if (data == nullptr) return nullptr;
    } else {
        data = PyBytes_AS_STRING(text);
        size = PyBytes_GET_SIZE(text);
    }
    const size_t length = std::strlen(data);
    if (length != static_cast<size_t>(size)) {
        grey_py_raise_message(GREY_ERROR_INVALID_ARGUMENT, grey_swig_nul_message(symbol, parameter, length), 0);
        return nullptr;
    }
    return data;
}

/* Calls the Python log callback stored as `user`. Runs on whichever thread logs. */
static void grey_py_log_trampoline(grey_log_level level, const char* message, void* user) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject* text = PyUnicode_DecodeUTF8(message, static_cast<Py_ssize_t>(std::strlen(message)), "replace");
    PyObject* result = text ? PyObject_CallFunction(static_cast<PyObject*>(user), "iO", static_cast<int>(level), text) : nullptr;
    if (result == nullptr) PyErr_WriteUnraisable(static_cast<PyObject*>(user));
    Py_XDECREF(result);
    Py_XDECREF(text);
    PyGILState_Release(gil);
}
%}

/* ---- status -> exception ---------------------------------------------------------------------- */
%typemap(out) grey_status "$result = SWIG_Py_Void();"
%typemap(ret) grey_status {
    if ($1 != GREY_OK) {
        Py_XDECREF($result);
        grey_py_raise($1);
        return NULL;
    }
}

/* ---- strings in: str, bytes or os.PathLike; None is NULL; a NUL byte is refused -------------------- */
%typemap(in) const char* (PyObject* keep = nullptr) {
    if ($input == Py_None) {
        $1 = nullptr;
    } else {
        $1 = const_cast<$1_ltype>(grey_py_string($input, "$symname", "$1_name", &keep));
        if ($1 == nullptr) SWIG_fail;
    }
}
%typemap(freearg) const char* "Py_XDECREF(keep$argnum);"
%apply const char* { char* };

/* ---- outputs ------------------------------------------------------------------------------------ */
/* Every wrapped function returns None (its grey_status became an exception or nothing, see the out
 * typemap), so a function's one output replaces that None and two or more make a list. SWIG 4.3 gave
 * SWIG_Python_AppendOutput a third argument, "the function returns void", which %append_output fills
 * from the C return type: for a grey_status function it would keep the None and return [None, output]. */
#if SWIG_VERSION >= 0x040300
%define GREY_APPEND_OUTPUT(obj) $result = SWIG_Python_AppendOutput($result, obj, 1) %enddef
#else
%define GREY_APPEND_OUTPUT(obj) $result = SWIG_Python_AppendOutput($result, obj) %enddef
#endif

/* ---- output handles ---------------------------------------------------------------------------- */
%typemap(in, numinputs=0) SWIGTYPE ** ($*1_ltype temp = NULL) "$1 = &temp;"
%typemap(argout) SWIGTYPE ** {
    GREY_APPEND_OUTPUT(SWIG_NewPointerObj(SWIG_as_voidptr(temp$argnum), $*1_descriptor, 0));
}

/* ---- output scalars ---------------------------------------------------------------------------- */
%define GREY_PY_SCALAR_OUT(TYPE, TO_PYTHON)
%typemap(in, numinputs=0) TYPE * (TYPE temp = 0) "$1 = &temp;"
%typemap(argout) TYPE * { GREY_APPEND_OUTPUT(TO_PYTHON(temp$argnum)); }
%enddef
GREY_PY_SCALAR_OUT(uint32_t, PyLong_FromUnsignedLong)
GREY_PY_SCALAR_OUT(uint64_t, PyLong_FromUnsignedLongLong)
GREY_PY_SCALAR_OUT(int32_t, PyLong_FromLong)
GREY_PY_SCALAR_OUT(int64_t, PyLong_FromLongLong)
GREY_PY_SCALAR_OUT(size_t, PyLong_FromSize_t)
GREY_PY_SCALAR_OUT(double, PyFloat_FromDouble)
/* A non-const pointer to an enum is an output too (grey_model_format_get). */
%typemap(in, numinputs=0) enum SWIGTYPE * ($*1_ltype temp = {}) "$1 = &temp;"
%typemap(argout) enum SWIGTYPE * { GREY_APPEND_OUTPUT(PyLong_FromLong(static_cast<long>(temp$argnum))); }

/* ---- text buffer protocol ---------------------------------------------------------------------- */
%typemap(in) (char* buffer, size_t buffer_size, size_t* out_length) (std::string text, size_t length = 0) {
    const unsigned long long capacity = PyLong_AsUnsignedLongLong($input);
    if (PyErr_Occurred()) SWIG_fail;
    text.assign(static_cast<size_t>(capacity), '\0');
    $1 = capacity != 0 ? &text[0] : nullptr;
    $2 = static_cast<size_t>(capacity);
    $3 = &length;
}
%typemap(argout) (char* buffer, size_t buffer_size, size_t* out_length) {
    if (result == GREY_OK) {
        GREY_APPEND_OUTPUT(PyUnicode_DecodeUTF8(text$argnum.data(), static_cast<Py_ssize_t>(length$argnum), "replace"));
    } else if (result == GREY_ERROR_BUFFER_TOO_SMALL) {
        grey_py_required_size = length$argnum + 1;
    }
}

/* grey_proof_write names its id buffer differently. */
%apply (char* buffer, size_t buffer_size, size_t* out_length) { (char* id_buffer, size_t id_buffer_size, size_t* out_id_length) };

/* ---- host addresses: memory an _async call uses after it returns, and grey_host_alloc's --------- */
%typemap(in) const void* host_source, void* host_destination, uint64_t* checksum_destination, void* memory {
    const unsigned long long address = PyLong_AsUnsignedLongLong($input);
    if (PyErr_Occurred()) SWIG_fail;
    $1 = reinterpret_cast<$1_ltype>(static_cast<uintptr_t>(address));
}
%typemap(argout) uint64_t* checksum_destination "";
/* The KV cache's arrays (since 0.2): host addresses as ints (NumPy's array.ctypes.data), so that
 * any element type goes in without a copy; the caller keeps the arrays alive for the call. */
%typemap(in) const int32_t* token_ids, const void* keys, const void* values, const void* sequences,
             const float* queries, float* output, float* keys, float* values {
    const unsigned long long address = PyLong_AsUnsignedLongLong($input);
    if (PyErr_Occurred()) SWIG_fail;
    $1 = reinterpret_cast<$1_ltype>(static_cast<uintptr_t>(address));
}
%typemap(argout) const int32_t* token_ids, const void* sequences, float* output, float* keys, float* values "";
%typemap(in, numinputs=0) void** out_memory (void* temp = nullptr) "$1 = &temp;"
%typemap(argout) void** out_memory { GREY_APPEND_OUTPUT(PyLong_FromUnsignedLongLong(reinterpret_cast<uintptr_t>(temp$argnum))); }

/* ---- host memory ranges, through the buffer protocol ------------------------------------------- */
%typemap(in) (const void* source, uint64_t size_bytes) (Py_buffer view, bool have = false) {
    if (PyObject_GetBuffer($input, &view, PyBUF_C_CONTIGUOUS) != 0) SWIG_fail;
    have = true;
    $1 = view.buf;
    $2 = static_cast<uint64_t>(view.len);
}
%typemap(freearg) (const void* source, uint64_t size_bytes) { if (have$argnum) PyBuffer_Release(&view$argnum); }

%typemap(in) (void* destination, uint64_t size_bytes) (Py_buffer view, bool have = false) {
    if (PyObject_GetBuffer($input, &view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) != 0) SWIG_fail;
    have = true;
    $1 = view.buf;
    $2 = static_cast<uint64_t>(view.len);
}
%typemap(freearg) (void* destination, uint64_t size_bytes) { if (have$argnum) PyBuffer_Release(&view$argnum); }

/* The same conventions under the other names grey.h gives them. */
%apply (const void* source, uint64_t size_bytes) { (const void* source, uint64_t source_bytes), (const void* data, uint64_t size_bytes) };
%apply (void* destination, uint64_t size_bytes) { (void* destination, uint64_t destination_bytes) };

/* grey_quant_compare: one length for two tensors, so both must have it. */
%typemap(in) const void* reference (Py_buffer view, bool have = false) {
    if (PyObject_GetBuffer($input, &view, PyBUF_C_CONTIGUOUS) != 0) SWIG_fail;
    have = true;
    $1 = view.buf;
}
%typemap(freearg) const void* reference { if (have$argnum) PyBuffer_Release(&view$argnum); }
%apply (const void* source, uint64_t size_bytes) { (const void* approximation, uint64_t bytes_each) };
%typemap(check) (const void* reference, const void* approximation, uint64_t bytes_each) {
    /* view$argnum is the reference's view (this typemap starts at its argument). */
    if (static_cast<uint64_t>(view$argnum.len) != $3) {
        PyErr_Format(PyExc_ValueError, "reference and approximation differ in size (%zd and %llu bytes)", view$argnum.len,
                     static_cast<unsigned long long>($3));
        SWIG_fail;
    }
}

/* ---- fixed-size byte arrays: digests out, hashes and ids in structs ---------------------------- */
%typemap(in, numinputs=0) uint8_t out_digest[ANY] (uint8_t temp[$1_dim0]) "$1 = temp;"
%typemap(argout) uint8_t out_digest[ANY] {
    GREY_APPEND_OUTPUT(PyBytes_FromStringAndSize(reinterpret_cast<const char*>(temp$argnum), $1_dim0));
}
%typemap(out) uint8_t [ANY] "$result = PyBytes_FromStringAndSize(reinterpret_cast<const char*>($1), $1_dim0);"
%typemap(memberin) uint8_t [ANY] "";
%typemap(in) uint8_t [ANY] "SWIG_exception_fail(SWIG_AttributeError, \"read-only byte array\");";

/* Fixed-size integer arrays (grey_tensor_desc.shape) are tuples; a shorter sequence is padded with 0. */
%typemap(out) uint64_t [ANY] {
    $result = PyTuple_New($1_dim0);
    for (Py_ssize_t i = 0; $result != nullptr && i < $1_dim0; ++i)
        PyTuple_SET_ITEM($result, i, PyLong_FromUnsignedLongLong($1[i]));
}
%typemap(in) uint64_t [ANY] (uint64_t temp[$1_dim0] = {}) {
    PyObject* items = PySequence_Fast($input, "expected a sequence of integers");
    if (items == nullptr) SWIG_fail;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    if (n > $1_dim0) {
        Py_DECREF(items);
        SWIG_exception_fail(SWIG_ValueError, "too many entries for a fixed-size array");
    }
    for (Py_ssize_t i = 0; i < n; ++i) temp[i] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(items, i));
    Py_DECREF(items);
    if (PyErr_Occurred()) SWIG_fail;
    $1 = temp;
}

/* ---- log callback: a Python callable(level: int, message: str) --------------------------------- */
%ignore log_callback;
%ignore log_user;
%typemap(in) PyObject* callback "$1 = $input;"
%inline %{
/* Routes the options' log messages to `callback` (None: back to stderr). The caller keeps `callback`
 * alive for as long as any context made with these options. */
void grey_py_options_set_log(grey_context_options* options, PyObject* callback) {
    if (callback == Py_None) {
        options->log_callback = nullptr;
        options->log_user = nullptr;
    } else {
        options->log_callback = &grey_py_log_trampoline;
        options->log_user = callback;
    }
}
%}

/* ---- progress of whole-model calls: a Python callable(done: int, total: int, tensor: str) -> stop? ---- */
%ignore grey_model_quant_options::progress;
%ignore grey_model_quant_options::progress_user;
%ignore grey_model_dequant_options::progress;
%ignore grey_model_dequant_options::progress_user;
%{
/* Calls the Python progress callback stored as `user` on the calling thread; a true result (or an
 * exception, reported as unraisable) stops the call. package grey wraps the user's callable so that its
 * exception is re-raised in place of grey.Cancelled. */
static uint32_t grey_py_progress_trampoline(uint64_t done, uint64_t total, const char* tensor, void* user) {
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject* name = PyUnicode_DecodeUTF8(tensor, static_cast<Py_ssize_t>(std::strlen(tensor)), "replace");
    PyObject* result = name ? PyObject_CallFunction(static_cast<PyObject*>(user), "KKO", static_cast<unsigned long long>(done),
                                                    static_cast<unsigned long long>(total), name)
                            : nullptr;
    uint32_t stop = 1;
    if (result != nullptr) {
        const int truth = PyObject_IsTrue(result);
        stop = truth != 0 ? 1u : 0u;  // -1 (an error) stops too
    }
    if (PyErr_Occurred() != nullptr) PyErr_WriteUnraisable(static_cast<PyObject*>(user));
    Py_XDECREF(result);
    Py_XDECREF(name);
    PyGILState_Release(gil);
    return stop;
}
%}
%inline %{
/* Reports the call's progress to `callback` (None: no reports). The caller keeps `callback` alive
 * until the call returns. */
void grey_py_quant_options_set_progress(grey_model_quant_options* options, PyObject* callback) {
    options->progress = callback == Py_None ? nullptr : &grey_py_progress_trampoline;
    options->progress_user = callback == Py_None ? nullptr : callback;
}
void grey_py_dequant_options_set_progress(grey_model_dequant_options* options, PyObject* callback) {
    options->progress = callback == Py_None ? nullptr : &grey_py_progress_trampoline;
    options->progress_user = callback == Py_None ? nullptr : callback;
}
%}

/* ---- read-only memory that keeps its owner alive ---------------------------------------------- */
%{
/* A buffer-protocol object over memory someone else owns (a mapped model file): it holds a reference
 * to `owner`, so a NumPy array made from it keeps the owner (and so the mapping) alive. Read-only:
 * the model is mapped without write permission, and a write would fault. */
struct GreyPyMemory {
    PyObject_HEAD
    PyObject* owner;
    const void* data;
    Py_ssize_t size;
};

static int grey_py_memory_getbuffer(PyObject* self, Py_buffer* view, int flags) {
    auto* memory = reinterpret_cast<GreyPyMemory*>(self);
    return PyBuffer_FillInfo(view, self, const_cast<void*>(memory->data), memory->size, 1, flags);
}

static void grey_py_memory_dealloc(PyObject* self) {
    Py_XDECREF(reinterpret_cast<GreyPyMemory*>(self)->owner);
    PyTypeObject* type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
}

static PyTypeObject* grey_py_memory_type() {
    static PyType_Slot slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(&grey_py_memory_dealloc)},
        {Py_bf_getbuffer, reinterpret_cast<void*>(&grey_py_memory_getbuffer)},
        {Py_tp_doc, const_cast<char*>("Read-only bytes of a libgrey object, kept alive while this lives.")},
        {0, nullptr},
    };
    static PyType_Spec spec = {"grey._capi.Memory", sizeof(GreyPyMemory), 0, Py_TPFLAGS_DEFAULT, slots};
    static PyObject* type = PyType_FromSpec(&spec);  // under the GIL: Python serialises the first call
    return reinterpret_cast<PyTypeObject*>(type);
}

static PyObject* grey_py_new_memory(PyObject* owner, const void* data, uint64_t size) {
    if (size > static_cast<uint64_t>(PY_SSIZE_T_MAX)) {
        PyErr_SetString(PyExc_OverflowError, "the memory is larger than Python can address");
        return nullptr;
    }
    PyTypeObject* type = grey_py_memory_type();
    if (type == nullptr) return nullptr;
    auto* memory = PyObject_New(GreyPyMemory, type);
    if (memory == nullptr) return nullptr;
    Py_INCREF(owner);
    memory->owner = owner;
    memory->data = data;
    memory->size = static_cast<Py_ssize_t>(size);
    return reinterpret_cast<PyObject*>(memory);
}
%}

%typemap(in) PyObject* owner "$1 = $input;"
/* These build Python objects, so they keep the GIL (the module is built with -threads, which releases
 * it around every other call). */
%nothread grey_py_model_tensor_memory;
%nothread grey_py_buffer_dlpack;
%inline %{
/* The bytes of a tensor that grey_model_tensor_get filled, as a read-only buffer-protocol object that
 * keeps `owner` (the Python object that owns the grey_model) alive. */
PyObject* grey_py_model_tensor_memory(PyObject* owner, const grey_model_tensor* tensor) {
    if (tensor == nullptr || (tensor->data == nullptr && tensor->size_bytes != 0)) {
        PyErr_SetString(PyExc_ValueError, "the tensor has no data");
        return nullptr;
    }
    return grey_py_new_memory(owner, tensor->data, tensor->size_bytes);
}
%}

/* ---- DLPack: a mapped buffer as a DLPack capsule ------------------------------------------------
 * DLTensor and DLManagedTensor come from DLPack's own header (Debian's libdlpack-dev,
 * dlpack/dlpack.h). Two capsule protocols of the Python array API standard are served: the versioned
 * one of DLPack 1.0 ("dltensor_versioned", whose flags tell a consumer the memory is writable: NumPy
 * imports the unversioned kind read-only) when the consumer offers max_version >= (1, 0), else the
 * unversioned one ("dltensor") every consumer takes. A consumer renames the capsule it consumed
 * ("used_..."), and then owns the tensor. */
%{
#include <dlpack/dlpack.h>

#include <new>

#if !defined(DLPACK_MAJOR_VERSION)
/* An older header (Debian's is 0.6) lacks DLPack 1.0's versioned tensor: these are its definitions,
 * as DLPack 1.0 gives them (https://github.com/dmlc/dlpack, include/dlpack/dlpack.h). DLTensor itself
 * is unchanged since 0.6. */
typedef struct {
    uint32_t major;
    uint32_t minor;
} DLPackVersion;
typedef struct DLManagedTensorVersioned {
    DLPackVersion version;
    void* manager_ctx;
    void (*deleter)(struct DLManagedTensorVersioned* self);
    uint64_t flags;
    DLTensor dl_tensor;
} DLManagedTensorVersioned;
#endif

namespace {
/* What one export owns: the managed tensor handed out, its shape, the buffer it maps, and a reference
 * to the Python object that owns the buffer (told through `_dlpack_released` when the consumer is
 * done, so that closing the buffer can wait for the last export). */
template <class Managed>
struct GreyPyExport {
    Managed managed{};
    int64_t shape[1] = {0};
    grey_buffer* buffer = nullptr;
    PyObject* owner = nullptr;
};

template <class Managed>
void grey_py_dlpack_deleter(Managed* managed) {
    auto* export_ = static_cast<GreyPyExport<Managed>*>(managed->manager_ctx);
    /* DLPack lets a consumer call this from any thread, holding the GIL or not. */
    if (!Py_IsInitialized()) return;  // the interpreter is gone, and with it what the export kept
    PyGILState_STATE gil = PyGILState_Ensure();
    (void)grey_buffer_unmap(export_->buffer);
    PyObject* result = PyObject_CallMethod(export_->owner, "_dlpack_released", nullptr);
    if (result == nullptr) PyErr_WriteUnraisable(export_->owner);
    Py_XDECREF(result);
    Py_DECREF(export_->owner);
    delete export_;
    PyGILState_Release(gil);
}

/* A capsule nobody consumed still owns its tensor; a consumed one was renamed and is not ours. */
void grey_py_dlpack_capsule_destructor(PyObject* capsule) {
    if (PyCapsule_IsValid(capsule, "dltensor")) {
        auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
        if (managed->deleter != nullptr) managed->deleter(managed);
    } else if (PyCapsule_IsValid(capsule, "dltensor_versioned")) {
        auto* managed = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(capsule, "dltensor_versioned"));
        if (managed->deleter != nullptr) managed->deleter(managed);
    }
}

/* Fills the tensor of an export of `mapping` (a 1-D uint8 tensor of the whole buffer). */
template <class Managed>
PyObject* grey_py_export_capsule(PyObject* owner, grey_buffer* buffer, const grey_buffer_mapping& mapping,
                                 const DLDevice& device, const char* name) {
    auto* export_ = new (std::nothrow) GreyPyExport<Managed>;
    if (export_ == nullptr) return PyErr_NoMemory();
    export_->shape[0] = static_cast<int64_t>(mapping.size_bytes);
    export_->buffer = buffer;
    export_->owner = owner;
    DLTensor& t = export_->managed.dl_tensor;
    t.data = reinterpret_cast<void*>(static_cast<uintptr_t>(mapping.address));
    t.device = device;
    t.ndim = 1;
    t.dtype.code = kDLUInt;
    t.dtype.bits = 8;
    t.dtype.lanes = 1;
    t.shape = export_->shape;
    t.strides = nullptr;  // compact row-major
    t.byte_offset = 0;
    export_->managed.manager_ctx = export_;
    export_->managed.deleter = &grey_py_dlpack_deleter<Managed>;
    if constexpr (std::is_same_v<Managed, DLManagedTensorVersioned>) {
        export_->managed.version = {1, 0};
        export_->managed.flags = 0;  // writable, and the buffer's own memory (not a copy)
    }
    PyObject* capsule = PyCapsule_New(&export_->managed, name, &grey_py_dlpack_capsule_destructor);
    if (capsule == nullptr) {
        delete export_;  // not counted yet: nothing to tell the owner
        return nullptr;
    }
    Py_INCREF(owner);
    return capsule;
}
}  // namespace
%}

%inline %{
/* Maps `buffer` and returns a DLPack capsule of its bytes (a 1-D uint8 tensor): "dltensor_versioned"
 * when `versioned` is non-zero, else "dltensor". The capsule holds a reference to `owner` until the
 * consumer deletes it; the deleter unmaps the buffer and calls owner._dlpack_released(). Host memory
 * is kDLCPU, CUDA memory kDLCUDA with the CUDA ordinal. */
PyObject* grey_py_buffer_dlpack(PyObject* owner, grey_buffer* buffer, int versioned) {
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    const grey_status status = grey_buffer_map(buffer, &mapping);
    if (status != GREY_OK) {
        grey_py_raise(status);
        return nullptr;
    }
    DLDevice device{};
    PyObject* capsule = nullptr;
    if (mapping.kind == GREY_MEMORY_HOST) {
        device.device_type = kDLCPU;
        device.device_id = 0;
    } else if (mapping.kind == GREY_MEMORY_CUDA_DEVICE) {
        device.device_type = kDLCUDA;
        device.device_id = mapping.vendor_device;
    } else {
        PyErr_Format(PyExc_BufferError, "libgrey memory kind %d has no DLPack device", static_cast<int>(mapping.kind));
    }
    if (mapping.size_bytes > static_cast<uint64_t>(INT64_MAX)) {
        PyErr_SetString(PyExc_BufferError, "the buffer is too large for DLPack's int64 shape");
    }
    if (!PyErr_Occurred()) {
        capsule = versioned != 0
                      ? grey_py_export_capsule<DLManagedTensorVersioned>(owner, buffer, mapping, device, "dltensor_versioned")
                      : grey_py_export_capsule<DLManagedTensor>(owner, buffer, mapping, device, "dltensor");
    }
    if (capsule == nullptr) (void)grey_buffer_unmap(buffer);
    return capsule;
}
%}
