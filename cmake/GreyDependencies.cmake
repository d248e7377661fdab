# Third-party libraries, all from Debian packages (scripts/bootstrap.sh installs them).
find_package(yaml-cpp REQUIRED)
if(TARGET yaml-cpp::yaml-cpp)
  set(GREY_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(GREY_YAML_TARGET yaml-cpp)  # yaml-cpp 0.7 names its target without a namespace
endif()
find_package(Threads REQUIRED)
find_package(OpenSSL 3.0 REQUIRED COMPONENTS Crypto)  # the audit log: HMAC, SHA-256, Ed25519
# Header-only: the safetensors reader's JSON header, audit payloads and greyctl output.
find_package(nlohmann_json 3.10 REQUIRED)
# The whole-model quantization policy's name patterns: RE2 matches in time linear in the input and
# never recurses. Debian ships it with a pkg-config file only.
find_package(PkgConfig REQUIRED)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
# The codec layer's host tier and block checksums (runtime/codec): libzstd, liblz4, xxHash (xxh3).
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)

if(GREY_BUILD_TOOLS)
  find_package(CLI11 CONFIG REQUIRED)
  # greyd serves HTTP through GNU libmicrohttpd (libmicrohttpd-dev), never a parser of our own: it
  # bounds the memory a connection may take (tools/greyctl/daemon/http_server.hpp says why not cpp-httplib).
  pkg_check_modules(MICROHTTPD REQUIRED IMPORTED_TARGET libmicrohttpd)
endif()
if(GREY_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
