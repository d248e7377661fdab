// The parsed contents of a safetensors or GGUF file: its metadata and its tensors, whose data are
// views into the caller's bytes (normally a MappedFile). Parsing checks every length, count and offset
// against the bytes it was given and against the limits of grey.h (GREY_MODEL_*_MAX), and fails with
// GREY_ERROR_CORRUPT naming what is wrong. The memory a parsed file takes is in proportion to its size:
// no count a file claims is trusted for an allocation, and metadata arrays stay in their encoded form.
#pragma once

#include "grey.h"

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <vector>

namespace grey::model {

// GGUF metadata value types, numbered as in the GGUF specification.
enum class GgufType : uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
    string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

// A metadata value, kept as GGUF encodes it, so that copying a value from one file to another is exact
// whatever its type and an array costs the bytes it was read from, not an object per element.
struct GgufValue {
    GgufType type = GgufType::string;
    GgufType element_type = GgufType::u8;  // arrays only
    uint64_t count = 0;                     // arrays only: number of elements
    // A scalar's little-endian bytes, a string's text, or an array's elements as GGUF encodes them
    // (packed numbers; each string as u64 length + text; each inner array as u32 type, u64 count,
    // elements).
    std::string bytes;

    static GgufValue text(std::string value);
    static GgufValue u32(uint32_t value);
    // An array of `items`, all of type `element_type` (numbers, strings or arrays).
    static GgufValue array(GgufType element_type, std::span<const GgufValue> items);
    [[nodiscard]] uint64_t as_unsigned() const;  // for u8..u64; throws otherwise
};

// Bytes one element of a numeric GGUF type takes; 0 for string and array.
uint32_t gguf_scalar_size(GgufType type) noexcept;
// The elements of an array value, decoded (for inspection: the readers and writers never need this).
std::vector<GgufValue> gguf_array_items(const GgufValue& array);

struct MetadataEntry {
    std::string key;
    GgufValue value;
};

struct Tensor {
    std::string name;
    grey_dtype dtype = GREY_DTYPE_OTHER;
    uint32_t file_type = 0;          // GGUF: the ggml type number
    std::vector<uint64_t> shape;     // outermost dimension first (GGUF's ne[] reversed)
    std::span<const std::byte> data;
};

struct ModelFile {
    grey_model_format format = GREY_MODEL_FORMAT_SAFETENSORS;
    uint32_t gguf_version = 0;
    std::vector<MetadataEntry> metadata;  // safetensors' __metadata__ as string values
    std::vector<Tensor> tensors;          // in file order
};

// How many tensors and metadata entries a reader accepts; tests ask for fewer to reach the checks.
struct ReadLimits {
    uint64_t max_tensors = GREY_MODEL_TENSORS_MAX;
    uint64_t max_metadata_entries = GREY_MODEL_METADATA_MAX;
};

ModelFile parse_safetensors(std::span<const std::byte> bytes, const ReadLimits& limits = {});
ModelFile parse_gguf(std::span<const std::byte> bytes, const ReadLimits& limits = {});
// Chooses by content: GGUF when the file starts with its magic, safetensors otherwise.
ModelFile parse_model(std::span<const std::byte> bytes);

// ---- Writing ----

// A tensor of a file to be written, without its bytes: what the header needs.
struct DeclaredTensor {
    std::string name;
    grey_dtype dtype = GREY_DTYPE_F32;
    uint32_t file_type = 0;        // GGUF: the ggml type number written (resolved from dtype)
    std::vector<uint64_t> shape;
    uint64_t size_bytes = 0;       // what dtype and shape need
};

// Checks that a tensor can be written in `format` (name length, dtype, rank, block sizes) and returns
// it with its size; `file_type` is read only for GREY_DTYPE_OTHER in GGUF. GREY_ERROR_INVALID_ARGUMENT
// naming what is wrong.
DeclaredTensor declare_tensor(grey_model_format format, std::string name, grey_dtype dtype, uint32_t file_type, std::vector<uint64_t> shape);
DeclaredTensor declare_gguf_tensor(std::string name, grey_dtype dtype, uint32_t file_type, std::vector<uint64_t> shape);
DeclaredTensor declare_safetensors_tensor(std::string name, grey_dtype dtype, std::vector<uint64_t> shape);

// Where everything of a file to be written lies.
struct FileLayout {
    std::string header;              // every byte before the first tensor's data, padding included
    std::vector<uint64_t> offsets;   // each tensor's first byte, from the start of the file
    uint64_t size = 0;               // the whole file; bytes between tensors are zero
};

// The layout of a file of `metadata` and `tensors` (in that order). Refuses (GREY_ERROR_INVALID_ARGUMENT)
// what could not be read back: a name used twice, a key or count beyond the limits, safetensors
// metadata that is not a string, a GGUF alignment that is not a power of two up to
// GREY_MODEL_ALIGNMENT_MAX.
FileLayout layout_gguf(std::span<const MetadataEntry> metadata, std::span<const DeclaredTensor> tensors);
FileLayout layout_safetensors(std::span<const MetadataEntry> metadata, std::span<const DeclaredTensor> tensors);
FileLayout layout_file(grey_model_format format, std::span<const MetadataEntry> metadata, std::span<const DeclaredTensor> tensors);

// A tensor and its bytes, for the one-shot writers below; `data` is borrowed and must hold exactly
// the bytes its dtype and shape need.
struct TensorToWrite {
    std::string name;
    grey_dtype dtype = GREY_DTYPE_F32;
    uint32_t file_type = 0;
    std::vector<uint64_t> shape;
    std::span<const std::byte> data;
};

// Whole files into a stream (the fuzzer and the tests; the C API streams through ModelOutput with the
// same layouts, so both give the same bytes). Stream errors give GREY_ERROR_IO.
void write_safetensors(std::ostream& out, std::span<const MetadataEntry> metadata, std::span<const TensorToWrite> tensors);
void write_gguf(std::ostream& out, std::span<const MetadataEntry> metadata, std::span<const TensorToWrite> tensors);

// Declares every tensor of `tensors` for `format`, checking that its bytes are what it needs.
std::vector<DeclaredTensor> declare_all(grey_model_format format, std::span<const TensorToWrite> tensors);
// Writes `layout` and the tensors' bytes (each at its offset, zeros between) to `out`.
void write_laid_out(std::ostream& out, const FileLayout& layout, std::span<const TensorToWrite> tensors);

}  // namespace grey::model
