# Warnings for libgrey's own targets (not for consumers).
add_library(grey_warnings INTERFACE)
target_compile_options(grey_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX,C>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion-null -Wno-missing-field-initializers>)
if(GREY_WARNINGS_AS_ERRORS)
  target_compile_options(grey_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX,C>:-Werror>)
endif()
