# Warnings for libgrey's own targets (not for consumers).
add_library(grey_warnings INTERFACE)
target_compile_options(grey_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX,C>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion-null -Wno-missing-field-initializers>)
if(GREY_WARNINGS_AS_ERRORS)
  target_compile_options(grey_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX,C>:-Werror>)
endif()
# GCC 12 reports `"literal" + std::string` as overlapping memcpy at -O2 (GCC bug 105329, a false
# positive fixed in GCC 13); it would make every optimised build fail under -Werror.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(grey_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-restrict>)
endif()
# A unity build (the developer presets) compiles each source as if #included by a generated file, so
# GCC takes a test's fixture in an anonymous namespace for one declared in a header and warns that the
# test class derived from it "uses the anonymous namespace"; in a .cpp file that is intended.
if(CMAKE_UNITY_BUILD AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(grey_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-subobject-linkage>)
endif()
