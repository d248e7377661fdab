/*
 * Go typemaps for bindings/grey.i. They produce package capi (bindings/go/capi): the raw binding, with
 * every function of grey.h under SWIG's Go name (grey_device_count -> Grey_device_count). The
 * idiomatic package grey (bindings/go) is written on top of it.
 *
 *   grey_status            -> error: nil, or a *capi.Error carrying the status and grey_last_error(),
 *                             read in C on the failing thread (a goroutine may move between threads
 *                             between two cgo calls, so Go could not read it afterwards)
 *   T** out_x              -> []uintptr of length >= 1 receiving the handle
 *   uint32_t* / uint64_t* / size_t* / int32_t* / int64_t* / double* / enum*
 *                          -> a slice of length >= 1 receiving the value
 *   (char* buffer, size_t buffer_size)
 *                          -> []byte (nil for the size query of the text buffer protocol)
 *   (const void* source, uint64_t size_bytes) / (void* destination, uint64_t size_bytes)
 *                          -> []byte, used in place (also under the names source_bytes,
 *                             destination_bytes, data and approximation/bytes_each)
 *   const void* reference  -> []byte, whose length must be the approximation's (else a panic)
 *   uint8_t out_digest[N]  -> []byte of length >= N, filled
 */


/* ---- status -> error ---------------------------------------------------------------------------- */
%typemap(gotype) grey_status "error"
%typemap(imtype) grey_status "string"
%typemap(out, fragment="AllocateString") grey_status {
    if ($1 == GREY_OK) {
        $result = Swig_AllocateString("", 0);
    } else {
        const char* detail = grey_last_error();
        std::string wire = std::to_string(static_cast<long long>($1)) + ":" +
                           ((detail != nullptr && *detail != '\0') ? detail : grey_status_string($1));
        $result = Swig_AllocateString(wire.data(), wire.size());
    }
}
%typemap(goout, fragment="CopyString") grey_status %{ $result = statusError(swigCopyString($1)) %}
/* With grey_status mapped to `error`, its enumerators would become error values too: Go gets them
 * from package grey instead (grey.StatusInvalidArgument, ...), and names any other status through
 * Grey_status_string. */
%rename("$ignore", regextarget=1) "^GREY_(OK|ERROR_[A-Z_]+|STATUS_FORCE32)$";
/* grey_status as a parameter (grey_status_string) stays a plain integer. */
%typemap(gotype) grey_status status "int"
%typemap(imtype) grey_status status "int"
%typemap(goin) grey_status status ""
%typemap(in) grey_status status "$1 = static_cast<grey_status>($input);"

/* ---- output handles ----------------------------------------------------------------------------- */
%typemap(gotype) SWIGTYPE ** "[]uintptr"
%typemap(in) SWIGTYPE ** ($*1_ltype temp = NULL) {
    if ($input.len < 1) _swig_gopanic("capi: an output handle needs a slice of length >= 1");
    $1 = &temp;
}
%typemap(argout) SWIGTYPE ** %{ static_cast<uintptr_t*>($input.array)[0] = reinterpret_cast<uintptr_t>(temp$argnum); %}

/* ---- output scalars ----------------------------------------------------------------------------- */
%define GREY_GO_SCALAR_OUT(TYPE, GOTYPE)
%typemap(gotype) TYPE * %{[]GOTYPE%}
%typemap(in) TYPE * (TYPE temp = 0) {
    if ($input.len < 1) _swig_gopanic("capi: an output value needs a slice of length >= 1");
    $1 = &temp;
}
%typemap(argout) TYPE * %{ static_cast<TYPE*>($input.array)[0] = temp$argnum; %}
%enddef
GREY_GO_SCALAR_OUT(uint32_t, uint32)
GREY_GO_SCALAR_OUT(uint64_t, uint64)
GREY_GO_SCALAR_OUT(int32_t, int32)
GREY_GO_SCALAR_OUT(int64_t, int64)
GREY_GO_SCALAR_OUT(size_t, uint64)
GREY_GO_SCALAR_OUT(double, float64)

/* ---- byte ranges -------------------------------------------------------------------------------- */
%typemap(gotype) (char* buffer, size_t buffer_size) "[]byte"
%typemap(in) (char* buffer, size_t buffer_size) %{
    $1 = $input.len > 0 ? static_cast<char*>($input.array) : nullptr;
    $2 = static_cast<size_t>($input.len);
%}
%typemap(gotype) (const void* source, uint64_t size_bytes), (void* destination, uint64_t size_bytes) "[]byte"
%typemap(in) (const void* source, uint64_t size_bytes), (void* destination, uint64_t size_bytes) %{
    $1 = $input.array;
    $2 = static_cast<uint64_t>($input.len);
%}
/* The same conventions under the other names grey.h gives them. */
%apply (const void* source, uint64_t size_bytes) {
    (const void* source, uint64_t source_bytes), (const void* data, uint64_t size_bytes),
    (const void* approximation, uint64_t bytes_each)
};
%apply (void* destination, uint64_t size_bytes) { (void* destination, uint64_t destination_bytes) };
%apply (char* buffer, size_t buffer_size) { (char* id_buffer, size_t id_buffer_size) };

/* grey_quant_compare: one length for two tensors, so both slices must have it. */
%typemap(gotype) const void* reference "[]byte"
%typemap(in) const void* reference (long long length = 0) %{
    $1 = $input.array;
    length = $input.len;
%}
%typemap(check) (const void* reference, const void* approximation, uint64_t bytes_each) {
    /* length$argnum is the reference's length (this typemap starts at its argument). */
    if (static_cast<uint64_t>(length$argnum) != $3) _swig_gopanic("capi: reference and approximation differ in length");
}

/* ---- other outputs ------------------------------------------------------------------------------ */
/* A non-const pointer to an enum (grey_model_format_get): a []int of length >= 1. */
%typemap(gotype) enum SWIGTYPE * "[]int"
%typemap(in) enum SWIGTYPE * ($*1_ltype temp = {}) {
    if ($input.len < 1) _swig_gopanic("capi: an output value needs a slice of length >= 1");
    $1 = &temp;
}
%typemap(argout) enum SWIGTYPE * %{ static_cast<long long*>($input.array)[0] = static_cast<long long>(temp$argnum); %}
/* uint8_t out_digest[32]: a []byte of at least that length, filled. */
%typemap(gotype) uint8_t out_digest[ANY] "[]byte"
%typemap(in) uint8_t out_digest[ANY] {
    if ($input.len < $1_dim0) _swig_gopanic("capi: the digest needs a []byte of its length");
    $1 = static_cast<uint8_t*>($input.array);
}

/* grey_model_tensor.data points into a mapped file: *byte, which unsafe.Slice takes (a uintptr would
 * have to pass through unsafe.Pointer, which go vet rightly distrusts). */
%typemap(gotype) const void* data "*byte"

/* ---- optional paths ----------------------------------------------------------------------------- */
/* grey_audit_check_proof's optional paths take NULL for none; Go passes "" (a path is never empty). */
%typemap(in) const char* old_checkpoint_path, const char* public_key_path %{
    $1 = nullptr;
    if ($input.n > 0) {
        $1 = static_cast<char*>(malloc($input.n + 1));
        memcpy($1, $input.p, $input.n);
        $1[$input.n] = '\0';
    }
%}
%typemap(freearg) const char* old_checkpoint_path, const char* public_key_path "free($1);"

/* ---- the log callback is set by package grey through cgo, not through SWIG ---------------------- */
%ignore log_callback;
%ignore log_user;
