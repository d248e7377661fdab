// The parsed contents of a safetensors or GGUF file: its metadata and its tensors, whose data are
// views into the caller's bytes (normally a MappedFile). Parsing checks every length, count and offset
// against the bytes it was given and fails with GREY_ERROR_CORRUPT naming what is wrong.
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

// A metadata value. Numbers keep their little-endian bytes, so that copying a value from one file to
// another is exact whatever its type.
struct GgufValue {
    GgufType type = GgufType::string;
    GgufType element_type = GgufType::u8;  // arrays only
    uint64_t count = 0;                     // arrays only: number of elements
    std::string bytes;                      // a scalar's bytes, a string's text, or a numeric array's packed elements
    std::vector<GgufValue> items;           // arrays of strings or of arrays

    static GgufValue text(std::string value);
    static GgufValue u32(uint32_t value);
    [[nodiscard]] uint64_t as_unsigned() const;  // for u8..u64; throws otherwise
};

// Bytes one element of a numeric GGUF type takes; 0 for string and array.
uint32_t gguf_scalar_size(GgufType type) noexcept;

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

ModelFile parse_safetensors(std::span<const std::byte> bytes);
ModelFile parse_gguf(std::span<const std::byte> bytes);
// Chooses by content: GGUF when the file starts with its magic, safetensors otherwise.
ModelFile parse_model(std::span<const std::byte> bytes);

// A tensor to write; `data` is borrowed and must hold exactly the bytes its dtype and shape need (for
// GREY_DTYPE_OTHER, what `file_type` needs).
struct TensorToWrite {
    std::string name;
    grey_dtype dtype = GREY_DTYPE_F32;
    uint32_t file_type = 0;
    std::vector<uint64_t> shape;
    std::span<const std::byte> data;
};

// Checks that a tensor can be written in a format (name, dtype, rank, byte count) and returns its
// ggml type number (GGUF) or 0; GREY_ERROR_INVALID_ARGUMENT naming what is wrong.
uint32_t check_safetensors_tensor(const TensorToWrite& tensor);
uint32_t check_gguf_tensor(const TensorToWrite& tensor);

// Writers. safetensors takes only string metadata (others fail with GREY_ERROR_INVALID_ARGUMENT) and
// dtypes it has; GGUF v3 takes every metadata type and the dtypes ggml has. Stream errors give GREY_ERROR_IO.
void write_safetensors(std::ostream& out, std::span<const MetadataEntry> metadata, std::span<const TensorToWrite> tensors);
void write_gguf(std::ostream& out, std::span<const MetadataEntry> metadata, std::span<const TensorToWrite> tensors);

}  // namespace grey::model
