// The grey::Error a piece of white-box test code throws, as the status and the message a C caller
// would get.
#pragma once

#include "core/error.hpp"

#include <functional>
#include <string>

namespace grey::test {

inline grey_status status_of(const std::function<void()>& body) {
    try {
        body();
        return GREY_OK;
    } catch (const grey::Error& e) {
        return e.status();
    }
}

inline std::string message_of(const std::function<void()>& body) {
    try {
        body();
    } catch (const grey::Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace grey::test
