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
 *   const char*            -> string. One holding a NUL byte is refused (C would read it only up to
 *                             that byte): the function is not called and returns a *capi.Error of
 *                             GREY_ERROR_INVALID_ARGUMENT naming the parameter. A struct member's
 *                             setter cannot return an error, so it stores a marker instead, and the
 *                             call that the struct is then passed to fails the same way, naming the
 *                             member ("grey_audit_log_create: options.log_path holds a NUL byte ...").
 */

/* ---- strings: a NUL byte refuses the call ------------------------------------------------------- */
%{
#include <atomic>
#include <map>
#include <string_view>
#include <utility>

namespace {
/* The string argument this call refuses (the first one found), set while the arguments are
 * converted and taken, on the same thread, just before the library would be called. */
struct GreyGoRefusal {
    std::string parameter;  // "path", or "options.log_path" for a member of a struct argument
    size_t offset = 0;      // of the NUL byte
    bool pending = false;
};

GreyGoRefusal& grey_go_pending_refusal() {
    static thread_local GreyGoRefusal refusal;
    return refusal;
}

void grey_go_refuse(std::string parameter, size_t offset) {
    GreyGoRefusal& refusal = grey_go_pending_refusal();
    if (!refusal.pending) refusal = GreyGoRefusal{std::move(parameter), offset, true};
}

GreyGoRefusal grey_go_take_refusal() { return std::exchange(grey_go_pending_refusal(), GreyGoRefusal{}); }

/* Every panic of these typemaps goes through here, so that no refusal outlives its call. */
void grey_go_panic(const char* message) {
    (void)grey_go_take_refusal();
    _swig_gopanic(message);
}

/* A Go string as a C string (malloc'd; the freearg typemap frees it). One holding a NUL byte is
 * refused: the copy is still made, so that the setter typemap below has something to store. */
char* grey_go_string(_gostring_ text, const char* parameter) {
    char* copy = static_cast<char*>(malloc(static_cast<size_t>(text.n) + 1));
    if (copy == nullptr) {
        grey_go_panic("capi: out of memory copying a string");
        return nullptr;
    }
    memcpy(copy, text.p, static_cast<size_t>(text.n));
    copy[text.n] = '\0';
    if (const void* nul = memchr(copy, '\0', static_cast<size_t>(text.n)); nul != nullptr) {
        grey_go_refuse(parameter, static_cast<size_t>(static_cast<const char*>(nul) - copy));
    }
    return copy;
}

/* Struct members set to a refused string, by member address: the value stored there (a pointer no
 * accepted string has, and which never dies, so an entry cannot match a later struct by accident),
 * the member's name and the NUL's offset. */
class GreyGoRefusedMembers {
public:
    /* The value a setter stores in `slot`: the interned string, or, when this call refused the
     * string, a marker remembered for the check below. */
    const char* store(const char* const* slot, const char* text) {
        GreyGoRefusal refusal = grey_go_take_refusal();
        std::lock_guard<std::mutex> guard(lock_);
        if (!refusal.pending) {
            if (by_address_.erase(slot) != 0) any_ = !by_address_.empty();
            return grey_swig_intern(text);
        }
        const char* marker = markers_.emplace(text != nullptr ? text : "").first->c_str();
        by_address_[slot] = Entry{marker, std::move(refusal.parameter), refusal.offset};
        any_ = true;
        return marker;
    }

    /* Refuses this call when the struct of `size` bytes at `object`, passed as `parameter`, holds a
     * marker. */
    void check(const void* object, size_t size, const char* parameter) {
        if (!any_) return;
        std::lock_guard<std::mutex> guard(lock_);
        const auto* begin = static_cast<const char*>(object);
        for (auto it = by_address_.lower_bound(begin); it != by_address_.end() && it->first < begin + size; ++it) {
            if (*static_cast<const char* const*>(it->first) == it->second.marker) {
                grey_go_refuse(std::string(parameter) + "." + it->second.member, it->second.offset);
                return;
            }
        }
    }

private:
    struct Entry {
        const char* marker;
        std::string member;
        size_t offset;
    };
    std::mutex lock_;
    std::map<const void*, Entry, std::less<>> by_address_;
    std::set<std::string> markers_;
    std::atomic<bool> any_{false};
};

GreyGoRefusedMembers& grey_go_refused_members() {
    static GreyGoRefusedMembers members;
    return members;
}

/* Checks a pointer argument: a complete struct is refused if a member holds a marker (handles are
 * incomplete types, strings are not structs). */
template <class T>
void grey_go_check_members(T* p, const char* parameter) {
    if constexpr (std::is_class_v<T> && requires { sizeof(T); }) {
        if (p != nullptr) grey_go_refused_members().check(p, sizeof(T), parameter);
    }
}
}  // namespace
%}

%typemap(in) const char* "$1 = grey_go_string($input, \"$1_name\");"
%typemap(freearg) const char* "free($1);"
%apply const char* { char* };
%typemap(memberin) const char* "$1 = grey_go_refused_members().store(&($1), $input);"

/* Struct arguments are checked for refused members; the struct a setter or getter works on is not
 * (setting another member of such a struct is fine). */
%typemap(check) SWIGTYPE *, SWIGTYPE *const "grey_swig_prepare($1); grey_go_check_members($1, \"$1_name\");"
%typemap(check) SWIGTYPE *self "grey_swig_prepare($1);"

/* A refused call does not reach the library: the grey_status typemap below reports the refusal. A
 * function that cannot report an error panics instead (grey.h has none that takes a string). */
%exception %{
    const GreyGoRefusal grey_refusal = grey_go_take_refusal();
    if (grey_refusal.pending && !std::string_view("$fulldecl").starts_with("grey_status ")) {
        grey_go_panic("capi: $symname cannot report the NUL byte in its string argument");
    }
    if (!grey_refusal.pending) {
        $action
    }
%}


/* ---- status -> error ---------------------------------------------------------------------------- */
%typemap(gotype) grey_status "error"
%typemap(imtype) grey_status "string"
%typemap(out, fragment="AllocateString") grey_status {
    if (grey_refusal.pending) {
        const std::string wire = std::to_string(static_cast<long long>(GREY_ERROR_INVALID_ARGUMENT)) + ":" +
                                 grey_swig_nul_message("$symname", grey_refusal.parameter, grey_refusal.offset);
        $result = Swig_AllocateString(wire.data(), wire.size());
    } else if ($1 == GREY_OK) {
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
    if ($input.len < 1) grey_go_panic("capi: an output handle needs a slice of length >= 1");
    $1 = &temp;
}
%typemap(argout) SWIGTYPE ** %{ static_cast<uintptr_t*>($input.array)[0] = reinterpret_cast<uintptr_t>(temp$argnum); %}

/* ---- output scalars ----------------------------------------------------------------------------- */
%define GREY_GO_SCALAR_OUT(TYPE, GOTYPE)
%typemap(gotype) TYPE * %{[]GOTYPE%}
%typemap(in) TYPE * (TYPE temp = 0) {
    if ($input.len < 1) grey_go_panic("capi: an output value needs a slice of length >= 1");
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

/* ---- host addresses: memory an _async call uses after it returns, and grey_host_alloc's ---------- */
%typemap(gotype) uint64_t* checksum_destination "uintptr"
%typemap(in) uint64_t* checksum_destination "$1 = reinterpret_cast<uint64_t*>($input);"
%typemap(argout) uint64_t* checksum_destination ""

/* The KV cache's arrays (since 0.2): host addresses, so that a slice of any element type goes in
 * without a copy (pass uintptr(unsafe.Pointer(&s[0]))). Named here so that the output-scalar rule
 * above never takes `sequences` or `token_ids` for a one-element output. */
%typemap(gotype) const int32_t* token_ids, const void* keys, const void* values, const void* sequences,
                 const float* queries, float* output, float* keys, float* values "uintptr"
%typemap(in) const int32_t* token_ids, const void* keys, const void* values, const void* sequences,
             const float* queries, float* output, float* keys, float* values "$1 = reinterpret_cast<$1_ltype>($input);"
%typemap(argout) const int32_t* token_ids, const void* keys, const void* values, const void* sequences,
                 const float* queries, float* output, float* keys, float* values ""

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
    if (static_cast<uint64_t>(length$argnum) != $3) grey_go_panic("capi: reference and approximation differ in length");
}

/* ---- other outputs ------------------------------------------------------------------------------ */
/* A non-const pointer to an enum (grey_model_format_get): a []int of length >= 1. */
%typemap(gotype) enum SWIGTYPE * "[]int"
%typemap(in) enum SWIGTYPE * ($*1_ltype temp = {}) {
    if ($input.len < 1) grey_go_panic("capi: an output value needs a slice of length >= 1");
    $1 = &temp;
}
%typemap(argout) enum SWIGTYPE * %{ static_cast<long long*>($input.array)[0] = static_cast<long long>(temp$argnum); %}
/* uint8_t out_digest[32]: a []byte of at least that length, filled. */
%typemap(gotype) uint8_t out_digest[ANY] "[]byte"
%typemap(in) uint8_t out_digest[ANY] {
    if ($input.len < $1_dim0) grey_go_panic("capi: the digest needs a []byte of its length");
    $1 = static_cast<uint8_t*>($input.array);
}

/* grey_model_tensor.data points into a mapped file: *byte, which unsafe.Slice takes (a uintptr would
 * have to pass through unsafe.Pointer, which go vet rightly distrusts). */
%typemap(gotype) const void* data "*byte"

/* ---- optional paths ----------------------------------------------------------------------------- */
/* grey_audit_check_proof's optional paths and grey_model_quantize's output take NULL for none; Go passes ""
 * (a path is never empty). */
%typemap(in) const char* old_checkpoint_path, const char* public_key_path, const char* output_path %{
    $1 = $input.n > 0 ? grey_go_string($input, "$1_name") : nullptr;
%}
%typemap(freearg) const char* old_checkpoint_path, const char* public_key_path, const char* output_path "free($1);"

/* ---- progress of whole-model calls: a capi.ProgressFunc behind a cgo.Handle (capi/progress.go) ---- */
%ignore grey_model_quant_options::progress;
%ignore grey_model_quant_options::progress_user;
%ignore grey_model_dequant_options::progress;
%ignore grey_model_dequant_options::progress_user;
%{
extern "C" uint32_t greyGoProgress(uint64_t done, uint64_t total, char* tensor, uintptr_t user);
static uint32_t grey_go_progress_trampoline(uint64_t done, uint64_t total, const char* tensor, void* user) {
    return greyGoProgress(done, total, const_cast<char*>(tensor), reinterpret_cast<uintptr_t>(user));
}
%}
%inline %{
/* Reports progress to the capi.ProgressFunc behind cgo.Handle `handle` (0: no reports). */
void grey_go_quant_options_set_progress(grey_model_quant_options* options, uint64_t handle) {
    options->progress = handle == 0 ? nullptr : &grey_go_progress_trampoline;
    options->progress_user = reinterpret_cast<void*>(static_cast<uintptr_t>(handle));
}
void grey_go_dequant_options_set_progress(grey_model_dequant_options* options, uint64_t handle) {
    options->progress = handle == 0 ? nullptr : &grey_go_progress_trampoline;
    options->progress_user = reinterpret_cast<void*>(static_cast<uintptr_t>(handle));
}
%}

/* ---- the log callback is set by package grey through cgo, not through SWIG ---------------------- */
%ignore log_callback;
%ignore log_user;
