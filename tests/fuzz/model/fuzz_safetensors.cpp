// libFuzzer target: the safetensors reader on arbitrary bytes. It may refuse them (grey::Error) but
// must never crash, read out of bounds, allocate without bound or hang.
#include "core/error.hpp"
#include "model/model_file.hpp"

#include <cstddef>
#include <cstdint>
#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto model = grey::model::parse_safetensors({reinterpret_cast<const std::byte*>(data), size});
        // Touch every byte the reader handed out, so that a view past the input is caught here.
        unsigned sum = 0;
        for (const auto& t : model.tensors)
            for (std::byte b : t.data) sum += std::to_integer<unsigned>(b);
        // What was read must also write back out (the writer checks what the reader accepted).
        std::vector<grey::model::TensorToWrite> tensors;
        for (const auto& t : model.tensors) tensors.push_back({t.name, t.dtype, t.file_type, t.shape, t.data});
        std::ostringstream out;
        grey::model::write_safetensors(out, model.metadata, tensors);
        return static_cast<int>(sum & 0);
    } catch (const grey::Error&) {
        return 0;
    }
}
