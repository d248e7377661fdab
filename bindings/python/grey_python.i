/*
 * Python typemaps for bindings/grey.i. The raw module they produce is grey.capi; the Pythonic layer in
 * grey/ is written on top of it.
 *
 *   grey_status            -> None, or raises the grey.Error subclass for the status, carrying
 *                             grey_last_error() (read on the failing thread, before anything else)
 *   T** out_x              -> an extra return value: the raw handle (grey/ wraps it in an owner)
 *   uint32_t* / uint64_t* / size_t* / int32_t* / int64_t* / double*
 *                          -> an extra return value
 *   (char* buffer, size_t buffer_size, size_t* out_length)
 *                          -> takes the capacity in bytes (NUL included), returns the text; a capacity
 *                             too small raises grey.BufferTooSmall whose .required is the size to ask for
 *   (const void* source, uint64_t size_bytes)
 *                          -> any C-contiguous buffer-protocol object (bytes, bytearray, memoryview,
 *                             NumPy array), read in place without a copy
 *   (void* destination, uint64_t size_bytes)
 *                          -> any writable C-contiguous buffer-protocol object, filled in place
 */

%{
#include <Python.h>

/* The size a text call asked for when it failed with GREY_ERROR_BUFFER_TOO_SMALL (this thread). */
static thread_local size_t grey_py_required_size = 0;

/* Sets the Python error for a failed call: grey.errors.from_status(status, message, required). */
static void grey_py_raise(grey_status status) {
    const char* detail = grey_last_error();
    const std::string message = (detail != nullptr && *detail != '\0') ? detail : grey_status_string(status);
    const size_t required = status == GREY_ERROR_BUFFER_TOO_SMALL ? grey_py_required_size : 0;
    grey_py_required_size = 0;
    PyObject* errors = PyImport_ImportModule("grey.errors");
    if (errors == nullptr) return;
    PyObject* error = PyObject_CallMethod(errors, "from_status", "isn", static_cast<int>(status), message.c_str(),
                                          static_cast<Py_ssize_t>(required));
    Py_DECREF(errors);
    if (error == nullptr) return;
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error)), error);
    Py_DECREF(error);
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

/* ---- output handles ---------------------------------------------------------------------------- */
%typemap(in, numinputs=0) SWIGTYPE ** ($*1_ltype temp = NULL) "$1 = &temp;"
%typemap(argout) SWIGTYPE ** {
    %append_output(SWIG_NewPointerObj(SWIG_as_voidptr(temp$argnum), $*1_descriptor, 0));
}

/* ---- output scalars ---------------------------------------------------------------------------- */
%define GREY_PY_SCALAR_OUT(TYPE, TO_PYTHON)
%typemap(in, numinputs=0) TYPE * (TYPE temp = 0) "$1 = &temp;"
%typemap(argout) TYPE * { %append_output(TO_PYTHON(temp$argnum)); }
%enddef
GREY_PY_SCALAR_OUT(uint32_t, PyLong_FromUnsignedLong)
GREY_PY_SCALAR_OUT(uint64_t, PyLong_FromUnsignedLongLong)
GREY_PY_SCALAR_OUT(int32_t, PyLong_FromLong)
GREY_PY_SCALAR_OUT(int64_t, PyLong_FromLongLong)
GREY_PY_SCALAR_OUT(size_t, PyLong_FromSize_t)
GREY_PY_SCALAR_OUT(double, PyFloat_FromDouble)

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
        %append_output(PyUnicode_DecodeUTF8(text$argnum.data(), static_cast<Py_ssize_t>(length$argnum), "replace"));
    } else if (result == GREY_ERROR_BUFFER_TOO_SMALL) {
        grey_py_required_size = length$argnum + 1;
    }
}

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
