/*
 * grey.i — the one SWIG interface over include/grey.h, shared by every SWIG language libgrey binds.
 *
 * It wraps grey.h and nothing else: the header is %included whole, so a function added to grey.h is
 * wrapped by the next build with no change here. Everything below is written against the header's
 * conventions (docs/architecture.md, "The ABI boundary"), never against a list of functions:
 *
 *   - `grey_status` returns become the language's error (Python exception, Go `error`): see the
 *     language files python/grey_python.i and go/grey_go.i.
 *   - `T** out_x` is an output handle; non-const pointers to fixed-width integers are outputs.
 *   - `(char* buffer, size_t buffer_size, size_t* out_length)` is the text buffer protocol.
 *   - `(const void* source, uint64_t size_bytes)` / `(void* destination, uint64_t size_bytes)` are host
 *     memory ranges.
 *   - Host memory an _async call holds on to past the call (`host_source`, `host_destination`,
 *     `checksum_destination`) and grey_host_alloc's memory (`out_memory`, `memory`) are addresses, plain
 *     integers: the language's layer keeps the memory alive until the stream reaches the work.
 *   - A struct that begins with `struct_size` gets it filled with sizeof(the struct) whenever it is
 *     passed to the library, so no user ever sees or sets it (grey_swig_prepare below; the wrappers
 *     are compiled as C++20 so that the check is made at compile time, per type).
 *   - Every `const char*` the library is given (parameters and struct members alike) is refused when
 *     the language's string holds a NUL byte: C would read it only up to that byte, so a path would
 *     name another file and a record type would be stored cut short. Each language's string typemap
 *     checks the length it was given against the first NUL and reports GREY_ERROR_INVALID_ARGUMENT
 *     naming the parameter (grey_swig_nul_message below), without calling the library.
 */

#if !defined(SWIGPYTHON) && !defined(SWIGGO)
#error "bindings/grey.i has typemaps for Python and Go only"
#endif

%{
#include "grey.h"

#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <set>
#include <type_traits>
#include <unordered_set>
#include <vector>

/* True for a complete struct type whose first member is named struct_size. */
template <class T>
constexpr bool grey_swig_has_struct_size = requires(T* p) { sizeof(T); p->struct_size; };

/* Fills struct_size of any versioned struct passed to the library; a no-op for every other pointer
 * (opaque handles, strings, void*). The struct may be declared const in the signature (an input
 * struct), but the object itself was made by the binding and is writable. */
template <class T>
inline void grey_swig_prepare(T* p) {
    if constexpr (grey_swig_has_struct_size<T>) {
        if (p != nullptr) const_cast<std::remove_const_t<T>*>(p)->struct_size = static_cast<uint32_t>(sizeof(T));
    }
}

/* The message for a string refused because it holds a NUL byte at `offset`. `symbol` is the wrapped
 * function ($symname) and `parameter` the C parameter; for a struct member's setter
 * ("grey_audit_options_log_path_set", "log_path") it names the member: "grey_audit_options.log_path". */
inline std::string grey_swig_nul_message(const std::string& symbol, const std::string& parameter, size_t offset) {
    const std::string setter = "_" + parameter + "_set";
    std::string where;
    if (symbol.size() > setter.size() && symbol.ends_with(setter)) {
        where = symbol.substr(0, symbol.size() - setter.size()) + "." + parameter;
    } else {
        where = symbol + ": " + parameter;
    }
    return where + " holds a NUL byte (at byte " + std::to_string(offset) +
           "), which a C string cannot carry: it would end there";
}

/* `const char*` members of input structs (grey_context_options::backends, ...) point at interned
 * copies that live as long as the process, so a struct never dangles and repeated values cost nothing
 * more. The set grows only by distinct strings. */
inline const char* grey_swig_intern(const char* text) {
    if (text == nullptr) return nullptr;
    static std::mutex lock;
    static std::unordered_set<std::string> strings;
    std::lock_guard<std::mutex> guard(lock);
    return strings.emplace(text).first->c_str();
}

/* Arrays of strings the same way: interned, so a struct pointing at one never dangles. */
inline const char* const* grey_swig_intern_list(const std::vector<const char*>& list) {
    static std::mutex lock;
    static std::set<std::vector<const char*>> lists;
    std::lock_guard<std::mutex> guard(lock);
    return lists.insert(list).first->data();
}
%}

%include <stdint.i>


/* Versioned structs: struct_size is the binding's business, reserved fields are nobody's. */
%ignore struct_size;
%ignore reserved0;

/* Every struct pointer handed to the library gets its struct_size set first. */
%typemap(check) SWIGTYPE * "grey_swig_prepare($1);"
%typemap(check) SWIGTYPE *const "grey_swig_prepare($1);"

/* Go replaces this with a version that also remembers members set to a refused string (grey_go.i). */
%typemap(memberin) const char * "$1 = grey_swig_intern($input);"

#if defined(SWIGPYTHON)
%include "python/grey_python.i"
#elif defined(SWIGGO)
%include "go/grey_go.i"
#endif

/* grey_kv_attend, grey_kv_attend_buffer and grey_kv_attend_async take `sequences` as a host address (the KV arrays' typemaps in the language files):
 * SWIG spells `const uint64_t*` as `unsigned long long const*` where it calls the function, which C++
 * refuses where uint64_t is unsigned long, so the languages get these twins taking `const void*`. */
%ignore grey_kv_attend;
%rename(grey_kv_attend) grey_swig_kv_attend;
%ignore grey_kv_attend_buffer;
%rename(grey_kv_attend_buffer) grey_swig_kv_attend_buffer;
%ignore grey_kv_attend_async;
%rename(grey_kv_attend_async) grey_swig_kv_attend_async;

%include "grey.h"

%inline %{
grey_status grey_swig_kv_attend(grey_kv_cache* cache, const grey_kv_attend_params* params, const void* sequences,
                                uint32_t batch, const float* queries, float* output, uint64_t io_bytes) {
    return grey_kv_attend(cache, params, static_cast<const uint64_t*>(sequences), batch, queries, output, io_bytes);
}
grey_status grey_swig_kv_attend_buffer(grey_kv_cache* cache, const grey_kv_attend_params* params, const void* sequences,
                                       uint32_t batch, const grey_buffer* queries, uint64_t queries_offset, grey_buffer* output,
                                       uint64_t output_offset, uint64_t io_bytes) {
    return grey_kv_attend_buffer(cache, params, static_cast<const uint64_t*>(sequences), batch, queries, queries_offset, output,
                                 output_offset, io_bytes);
}
grey_status grey_swig_kv_attend_async(grey_kv_cache* cache, const grey_kv_attend_params* params, const void* sequences,
                                      uint32_t batch, const grey_buffer* queries, uint64_t queries_offset, grey_buffer* output,
                                      uint64_t output_offset, uint64_t io_bytes, grey_stream* stream) {
    return grey_kv_attend_async(cache, params, static_cast<const uint64_t*>(sequences), batch, queries, queries_offset, output,
                                output_offset, io_bytes, stream);
}
%}

/* grey_audit_verify_options.checkpoint_paths is an array of strings the struct only points at, which
 * no SWIG language can build; this appends one path (NULL is refused by grey_audit_verify later). It
 * returns grey_status, as every function taking a string does, so that a path holding a NUL byte is
 * an error in every language; with NULL options there is nothing to add to. */
%inline %{
grey_status grey_swig_audit_verify_add_checkpoint(grey_audit_verify_options* options, const char* path) {
    if (options == nullptr) return GREY_OK;
    std::vector<const char*> list;
    if (options->checkpoint_paths != nullptr) list.assign(options->checkpoint_paths, options->checkpoint_paths + options->checkpoint_count);
    list.push_back(grey_swig_intern(path));
    options->checkpoint_paths = grey_swig_intern_list(list);
    options->checkpoint_count = static_cast<uint32_t>(list.size());
    return GREY_OK;
}
%}
