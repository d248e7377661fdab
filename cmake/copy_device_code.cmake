# cmake -DFROM=<file> -DTO=<file> -DSOURCES=<a|b|...> -P copy_device_code.cmake: copies another build tree's
# device code file (cmake/GreyDeviceCode.cmake), refusing one that is missing or older than a source.
if(NOT EXISTS "${FROM}")
  message(FATAL_ERROR "GREY_DEVICE_CODE_FROM: ${FROM} does not exist: build that tree first")
endif()
string(REPLACE "|" ";" SOURCES "${SOURCES}")
foreach(source IN LISTS SOURCES)
  if(EXISTS "${source}" AND "${source}" IS_NEWER_THAN "${FROM}")
    message(FATAL_ERROR "GREY_DEVICE_CODE_FROM: ${FROM} is older than ${source}: build that tree first")
  endif()
endforeach()
file(COPY_FILE "${FROM}" "${TO}" ONLY_IF_DIFFERENT)
