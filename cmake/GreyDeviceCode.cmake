# Device code (the CUDA plugin's fatbins, the HIP plugin's AMD code objects) is compiled from the same
# sources with the same device flags in every build tree: a sanitizer changes host code only. A build
# tree given GREY_DEVICE_CODE_FROM, another build tree of the same sources, takes that tree's device code
# instead of compiling its own (make test's ASan build takes the default build's: nvcc and clang's device
# passes are most of a build's time). The copy refuses a file older than a source it is built from, so
# a stale tree is never taken silently: build that tree first.
set(GREY_DEVICE_CODE_FROM "" CACHE PATH "A build tree of the same sources whose device code (fatbins, code objects) this one takes")

# Adds the custom command that makes `output` (a device code file at `relative` in the build tree): the
# given COMMAND, or with GREY_DEVICE_CODE_FROM a checked copy of that tree's file. DEPENDS and COMMENT as
# for add_custom_command.
function(grey_device_code output relative)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "COMMENT" "COMMAND;DEPENDS")
  if(GREY_DEVICE_CODE_FROM)
    set(from ${GREY_DEVICE_CODE_FROM}/${relative})
    string(REPLACE ";" "|" sources "${arg_DEPENDS}")  # one argument: a command's ';' would split it
    add_custom_command(
      OUTPUT ${output}
      COMMAND ${CMAKE_COMMAND} -DFROM=${from} -DTO=${output} -DSOURCES=${sources} -P ${PROJECT_SOURCE_DIR}/cmake/copy_device_code.cmake
      DEPENDS ${arg_DEPENDS} ${PROJECT_SOURCE_DIR}/cmake/copy_device_code.cmake
      COMMENT "device code from ${GREY_DEVICE_CODE_FROM}: ${relative}"
      VERBATIM)
  else()
    add_custom_command(OUTPUT ${output} COMMAND ${arg_COMMAND} DEPENDS ${arg_DEPENDS} COMMENT "${arg_COMMENT}" VERBATIM)
  endif()
endfunction()
