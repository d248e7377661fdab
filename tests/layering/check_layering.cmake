# The layers of docs/architecture.md, checked on the sources (cmake -DROOT=<repository> -P this file):
#  - common/ includes nothing from runtime/, backends/ or kernels/ (only itself, grey.h and system headers);
#  - no backend or kernel source includes a runtime header ("core/...", "quant/...", "model/...", ...
#    or "runtime/..."): backends see grey_backend.h, grey.h and common/ only;
#  - no backend's CMakeLists.txt compiles a runtime source (a path into runtime/);
#  - no file name exists in both common/ and backends/common/, where "common/<name>" would pick one of
#    the two by include-path order;
#  - the runtime reaches into backends/ only for the built-in host backend's entry point.
# Fails listing every offending line.
if(NOT ROOT)
  message(FATAL_ERROR "run with -DROOT=<repository root>")
endif()

set(_problems "")
set(_runtime_dirs core config detect model memory codec quant kv plan govern audit runtime)

file(GLOB_RECURSE _common RELATIVE ${ROOT} ${ROOT}/common/*)
foreach(file ${_common})
  file(STRINGS ${ROOT}/${file} _includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line ${_includes})
    if(NOT line MATCHES "\"(common/[^\"]+|grey\\.h)\"")
      string(APPEND _problems "  ${file}: ${line} (common/ includes only common/ and grey.h)\n")
    endif()
  endforeach()
endforeach()

file(GLOB_RECURSE _plugin_sources RELATIVE ${ROOT} ${ROOT}/backends/*.cpp ${ROOT}/backends/*.hpp ${ROOT}/backends/*.h
     ${ROOT}/kernels/*.cu ${ROOT}/kernels/*.cuh ${ROOT}/kernels/*.h ${ROOT}/kernels/*.cl)
foreach(file ${_plugin_sources})
  file(STRINGS ${ROOT}/${file} _includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line ${_includes})
    foreach(dir ${_runtime_dirs})
      if(line MATCHES "\"(\\.\\./)*${dir}/")
        string(APPEND _problems "  ${file}: ${line} (a backend includes no runtime header)\n")
      endif()
    endforeach()
  endforeach()
endforeach()

file(GLOB_RECURSE _backend_cmake RELATIVE ${ROOT} ${ROOT}/backends/*CMakeLists.txt)
foreach(file ${_backend_cmake})
  file(STRINGS ${ROOT}/${file} _lines)
  foreach(line ${_lines})
    if(line MATCHES "^[^#]*runtime/")
      string(APPEND _problems "  ${file}: ${line} (a plugin compiles no runtime source)\n")
    endif()
  endforeach()
endforeach()

file(GLOB _neutral RELATIVE ${ROOT}/common ${ROOT}/common/*)
foreach(name ${_neutral})
  if(EXISTS ${ROOT}/backends/common/${name})
    string(APPEND _problems "  common/${name} and backends/common/${name}: one include name for two files\n")
  endif()
endforeach()

file(GLOB_RECURSE _runtime_sources RELATIVE ${ROOT} ${ROOT}/runtime/*.cpp ${ROOT}/runtime/*.hpp)
foreach(file ${_runtime_sources})
  file(STRINGS ${ROOT}/${file} _includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line ${_includes})
    if(line MATCHES "\"(backends/|host/|cuda/|common/fields|common/suballocator)" AND NOT line MATCHES "\"backends/host/host_backend\\.hpp\"")
      string(APPEND _problems "  ${file}: ${line} (the runtime calls backends through grey_backend.h)\n")
    endif()
  endforeach()
endforeach()

if(_problems)
  message(FATAL_ERROR "layering broken:\n${_problems}")
endif()
message(STATUS "layering: common/ stands alone, backends include no runtime header and compile no runtime source")
