# Installing and packaging: `cmake --install <build> --prefix P` puts the headers under
# P/include/tilegrad/, the libraries (static, or shared with -DBUILD_SHARED_LIBS=ON)
# under P/<libdir>, a CMake package (find_package(tilegrad CONFIG): targets
# tilegrad::tilegrad and one per layer) and tilegrad.pc. `cpack -G DEB` in the build
# folder makes a .deb of the same files. tests/consumer builds a project against each.
include(CMakePackageConfigHelpers)
if(TG_HAVE_DIST)
  list(APPEND TG_LAYERS dist)  # installed, exported as tilegrad::dist
endif()

# Installed names: libtilegrad_<layer>.{a,so}; exported targets tilegrad::<layer>.
foreach(layer IN LISTS TG_LAYERS)
  set_target_properties(tg_${layer} PROPERTIES OUTPUT_NAME tilegrad_${layer} EXPORT_NAME ${layer}
                                               VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
                                               INSTALL_RPATH "$ORIGIN")  # shared: each finds the others beside it
endforeach()
set_target_properties(tilegrad PROPERTIES EXPORT_NAME tilegrad)

set(TG_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/tilegrad")
set(TG_INSTALL_TARGETS tg_kernels tg_cpu tg_cuda tg_autograd tg_nn tilegrad)
if(TG_HAVE_DIST)
  list(APPEND TG_INSTALL_TARGETS tg_dist)
endif()
install(TARGETS ${TG_INSTALL_TARGETS}
        EXPORT tilegradTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
# Every header of every layer: the public ones include the backends' declarations.
foreach(layer IN LISTS TG_LAYERS)
  file(GLOB_RECURSE headers RELATIVE "${PROJECT_SOURCE_DIR}" CONFIGURE_DEPENDS
       "${PROJECT_SOURCE_DIR}/${layer}/*.hpp" "${PROJECT_SOURCE_DIR}/${layer}/*.h" "${PROJECT_SOURCE_DIR}/${layer}/*.cuh")
  foreach(h IN LISTS headers)
    get_filename_component(dir "${h}" DIRECTORY)
    install(FILES "${PROJECT_SOURCE_DIR}/${h}" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/tilegrad/${dir}")
  endforeach()
endforeach()
install(FILES "${TG_INCLUDE_ROOT}/tilegrad/version.hpp" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/tilegrad")
install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/tilegrad")

install(EXPORT tilegradTargets NAMESPACE tilegrad:: DESTINATION "${TG_CMAKE_DIR}")
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/tilegradConfig.cmake.in"
                              "${PROJECT_BINARY_DIR}/tilegradConfig.cmake" INSTALL_DESTINATION "${TG_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/tilegradConfigVersion.cmake"
                                 COMPATIBILITY SameMinorVersion)  # 0.x: minors may break
install(FILES "${PROJECT_BINARY_DIR}/tilegradConfig.cmake" "${PROJECT_BINARY_DIR}/tilegradConfigVersion.cmake"
        DESTINATION "${TG_CMAKE_DIR}")

# pkg-config. The prefix is found from the .pc file's own place (${pcfiledir}), so the
# tree works wherever it is installed or unpacked. Static libraries carry their
# dependencies in Libs (plain `pkg-config --libs` links); shared ones in Libs.private.
file(RELATIVE_PATH TG_PC_TO_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
string(REGEX REPLACE "/$" "" TG_PC_TO_PREFIX "${TG_PC_TO_PREFIX}")
set(TG_PC_DEPS "")
if(TG_OPENMP)
  string(APPEND TG_PC_DEPS " ${OpenMP_CXX_FLAGS}")
endif()
if(TG_HAVE_CUDA)
  string(APPEND TG_PC_DEPS " -L${CUDAToolkit_LIBRARY_DIR} -lcudart")
endif()
string(STRIP "${TG_PC_DEPS}" TG_PC_DEPS)
if(BUILD_SHARED_LIBS)
  set(TG_PC_REQUIRES "")
  set(TG_PC_REQUIRES_PRIVATE "zlib")
  set(TG_PC_LIBS "")
  set(TG_PC_LIBS_PRIVATE "${TG_PC_DEPS}")
else()
  set(TG_PC_REQUIRES "zlib")
  set(TG_PC_REQUIRES_PRIVATE "")
  set(TG_PC_LIBS "${TG_PC_DEPS}")
  set(TG_PC_LIBS_PRIVATE "")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/tilegrad.pc.in" "${PROJECT_BINARY_DIR}/tilegrad.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/tilegrad.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")

# A .deb of the same tree: `cpack -G DEB` in the build folder.
set(CPACK_PACKAGE_NAME "libtilegrad-dev")
set(CPACK_PACKAGE_VENDOR "tilegrad")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "tilegrad developers <tilegrad@localhost>")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_PACKAGE_SECTION "libdevel")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "zlib1g-dev, libgomp1")
set(CPACK_GENERATOR "DEB;TGZ")
include(CPack)
