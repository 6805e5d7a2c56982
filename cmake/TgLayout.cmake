# The include layout. Every library header is included as "tilegrad/<layer>/<file>", the
# way an installed tree lays them out (include/tilegrad/kernels/ops.hpp, ...), so a
# system include path never gets top-level kernels/ or cpu/ folders. In the build tree,
# <build>/include/tilegrad/<layer> is a link to the source folder of that layer (edits
# show through, nothing is copied), and <build>/include/tilegrad/version.hpp is
# generated from cmake/version.hpp.in.
set(TG_LAYERS kernels cpu cuda autograd nn)
# dist/ is a layer where MPI is found (dist/CMakeLists.txt); its headers' link is made
# either way.
set(TG_INCLUDE_ROOT "${PROJECT_BINARY_DIR}/include")
file(MAKE_DIRECTORY "${TG_INCLUDE_ROOT}/tilegrad")
foreach(layer IN LISTS TG_LAYERS ITEMS dist)
  set(link "${TG_INCLUDE_ROOT}/tilegrad/${layer}")
  if(NOT IS_SYMLINK "${link}")
    file(REMOVE_RECURSE "${link}")
    file(CREATE_LINK "${PROJECT_SOURCE_DIR}/${layer}" "${link}" SYMBOLIC)
  endif()
endforeach()
configure_file("${PROJECT_SOURCE_DIR}/cmake/version.hpp.in" "${TG_INCLUDE_ROOT}/tilegrad/version.hpp" @ONLY)

# The library's own include path: the include root above while building, <prefix>/include
# once installed. Tests, benchmarks, examples and fuzz targets also see the source root
# (their support headers: "tests/support/...", "bench/support/...", "examples/...").
function(tg_library_includes target)
  target_include_directories(${target} PUBLIC
    "$<BUILD_INTERFACE:${TG_INCLUDE_ROOT}>" "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
endfunction()
