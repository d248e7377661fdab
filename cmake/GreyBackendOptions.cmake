# Resolves GREY_WITH_<VENDOR> (AUTO/ON/OFF) into GREY_BUILD_<VENDOR>_BACKEND.
include(CheckLanguage)

function(grey_resolve_backend option result found what)
  if(${option} STREQUAL "OFF")
    set(${result} OFF PARENT_SCOPE)
  elseif(${found})
    set(${result} ON PARENT_SCOPE)
  elseif(${option} STREQUAL "ON")
    message(FATAL_ERROR "${option}=ON but ${what} was not found")
  else()
    set(${result} OFF PARENT_SCOPE)
  endif()
endfunction()

if(NOT GREY_WITH_CUDA STREQUAL "OFF")
  check_language(CUDA)
endif()
set(_grey_have_nvcc OFF)
if(CMAKE_CUDA_COMPILER)
  set(_grey_have_nvcc ON)
endif()
grey_resolve_backend(GREY_WITH_CUDA GREY_BUILD_CUDA_BACKEND _grey_have_nvcc "the CUDA compiler (nvcc)")

# The HIP plugin declares the few HIP and ROCm SMI entry points it opens with dlopen itself; its kernels
# are AMD code objects built by clang (19 or later: gfx942 needs it) and linked by lld, with no ROCm
# headers or device libraries (kernels/hip/cuda_compat.h).
find_program(GREY_HIP_CLANG NAMES clang++-19 clang++-20 clang++-21)
set(_grey_hip_plugin_buildable OFF)
if(GREY_HIP_CLANG)
  set(_grey_hip_plugin_buildable ON)
endif()
grey_resolve_backend(GREY_WITH_HIP GREY_BUILD_HIP_BACKEND _grey_hip_plugin_buildable
                     "clang 19 or later with lld, for the AMD code objects (clang-19 lld-19)")

# Level Zero: the headers for types, clang + llvm-spirv to build the OpenCL kernels into SPIR-V, and
# spirv-val, which checks every module as it is built.
find_path(GREY_LEVEL0_INCLUDE_DIR level_zero/ze_api.h)
find_program(GREY_OPENCL_CLANG NAMES clang-14 clang)
find_program(GREY_LLVM_SPIRV NAMES llvm-spirv-14 llvm-spirv)
find_program(GREY_SPIRV_VAL NAMES spirv-val)
set(_grey_have_level0 OFF)
if(GREY_LEVEL0_INCLUDE_DIR AND GREY_OPENCL_CLANG AND GREY_LLVM_SPIRV AND GREY_SPIRV_VAL)
  set(_grey_have_level0 ON)
endif()
grey_resolve_backend(GREY_WITH_LEVEL0 GREY_BUILD_LEVEL0_BACKEND _grey_have_level0
                     "the Level Zero headers (libze-dev), clang, llvm-spirv (llvm-spirv-14) or spirv-val (spirv-tools)")

message(STATUS "libgrey backends: host (built in); cuda=${GREY_BUILD_CUDA_BACKEND} hip=${GREY_BUILD_HIP_BACKEND} level0=${GREY_BUILD_LEVEL0_BACKEND}")
