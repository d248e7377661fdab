# Install rules: headers, libgrey (shared and static), greyctl, a CMake package, a pkg-config file and the
# default configuration (share/grey/grey.yaml).
include(CMakePackageConfigHelpers)

install(FILES ${PROJECT_SOURCE_DIR}/include/grey.h ${PROJECT_SOURCE_DIR}/include/grey_backend.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development)
install(TARGETS grey_shared grey_static EXPORT greyTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT greyTargets NAMESPACE grey:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/grey COMPONENT development)

# libgrey is C++ inside. What a C program adds to link the static library: the C++ runtime of the
# compiler that built it (its implicit link libraries beyond those of C), for grey.pc's Libs.private and
# for grey::grey_static in a project that enables only C.
set(GREY_CXX_RUNTIME_LIBS ${CMAKE_CXX_IMPLICIT_LINK_LIBRARIES})
list(REMOVE_ITEM GREY_CXX_RUNTIME_LIBS ${CMAKE_C_IMPLICIT_LINK_LIBRARIES})
list(REMOVE_DUPLICATES GREY_CXX_RUNTIME_LIBS)
list(TRANSFORM GREY_CXX_RUNTIME_LIBS PREPEND "-l" OUTPUT_VARIABLE _grey_runtime_flags)
list(JOIN _grey_runtime_flags " " GREY_CXX_RUNTIME_FLAGS)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/greyConfig.cmake.in
  ${PROJECT_BINARY_DIR}/greyConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/grey
  PATH_VARS GREY_PLUGIN_INSTALL_DIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/greyConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/greyConfig.cmake ${PROJECT_BINARY_DIR}/greyConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/grey COMPONENT development)

configure_file(${PROJECT_SOURCE_DIR}/cmake/grey.pc.in ${PROJECT_BINARY_DIR}/grey.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/grey.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT development)

install(FILES ${PROJECT_SOURCE_DIR}/config/grey.yaml DESTINATION ${CMAKE_INSTALL_DATADIR}/grey COMPONENT runtime)
