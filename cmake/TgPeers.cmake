# Peers: other libraries that tests use as a second oracle and benchmarks time beside
# ours. Each found peer becomes an INTERFACE target tg_peer_<name> that carries its
# includes (as SYSTEM), its libraries and TG_PEER_<NAME>=1. A missing peer is reported
# here and never an error. Peers are linked by their own library names, never through
# Debian's libblas.so.3 alternative (which an install can switch to reference BLAS).
set(TG_PEERS_FOUND "")
set(TG_PEERS_MISSING "")

function(_tg_peer name)
  cmake_parse_arguments(P "" "" "INCLUDES;LIBS;DEFS" ${ARGN})
  add_library(tg_peer_${name} INTERFACE)
  if(P_INCLUDES)
    target_include_directories(tg_peer_${name} SYSTEM INTERFACE ${P_INCLUDES})
  endif()
  target_link_libraries(tg_peer_${name} INTERFACE ${P_LIBS})
  string(TOUPPER ${name} _up)
  target_compile_definitions(tg_peer_${name} INTERFACE TG_PEER_${_up}=1 ${P_DEFS})
  set(TG_PEERS_FOUND ${TG_PEERS_FOUND} ${name} PARENT_SCOPE)
endfunction()

if(NOT TG_PEERS STREQUAL "OFF")
  # OpenBLAS: its CMake config names libopenblas.so by path; the header is the one
  # beside it (openblas-pthread/ or openblas-openmp/), not whichever cblas.h is first.
  find_package(OpenBLAS CONFIG QUIET)
  if(NOT OpenBLAS_LIBRARIES)
    find_library(OpenBLAS_LIBRARIES NAMES openblas)
    find_path(OpenBLAS_INCLUDE_DIRS cblas.h PATH_SUFFIXES openblas-pthread openblas-openmp openblas)
  endif()
  if(OpenBLAS_LIBRARIES AND OpenBLAS_INCLUDE_DIRS)
    _tg_peer(openblas INCLUDES ${OpenBLAS_INCLUDE_DIRS} LIBS ${OpenBLAS_LIBRARIES})
  else()
    list(APPEND TG_PEERS_MISSING openblas)
  endif()

  # BLIS: called through its typed API (bli_sgemm), which no other peer exports.
  find_library(TG_BLIS_LIBRARY NAMES blis)
  find_path(TG_BLIS_INCLUDE_DIR blis.h PATH_SUFFIXES blis blis-openmp blis-pthread)
  if(TG_BLIS_LIBRARY AND TG_BLIS_INCLUDE_DIR)
    _tg_peer(blis INCLUDES ${TG_BLIS_INCLUDE_DIR} LIBS ${TG_BLIS_LIBRARY})
  else()
    list(APPEND TG_PEERS_MISSING blis)
  endif()

  find_package(Eigen3 3.3 CONFIG QUIET)
  if(TARGET Eigen3::Eigen)
    set(_eigen_libs Eigen3::Eigen)
    if(TG_OPENMP)
      list(APPEND _eigen_libs OpenMP::OpenMP_CXX)
    endif()
    _tg_peer(eigen LIBS ${_eigen_libs})
  else()
    list(APPEND TG_PEERS_MISSING eigen)
  endif()

  # oneDNN: Debian's dnnl-config.cmake insists on OpenCL, so find the C API directly.
  find_library(TG_DNNL_LIBRARY NAMES dnnl)
  find_path(TG_DNNL_INCLUDE_DIR dnnl.h)
  if(TG_DNNL_LIBRARY AND TG_DNNL_INCLUDE_DIR)
    _tg_peer(onednn INCLUDES ${TG_DNNL_INCLUDE_DIR} LIBS ${TG_DNNL_LIBRARY})
  else()
    list(APPEND TG_PEERS_MISSING onednn)
  endif()

  # Kokkos + KokkosKernels from Debian's Trilinos: the imported Kokkos::kokkos target
  # points at a wrong include directory there, so use the variables. The translation
  # units that include Kokkos are compiled as C++17 (tg_kokkos_sources).
  find_package(Kokkos QUIET)
  find_package(KokkosKernels QUIET)
  if(Kokkos_FOUND AND KokkosKernels_FOUND AND Kokkos_INCLUDE_DIRS)
    _tg_peer(kokkos INCLUDES ${Kokkos_INCLUDE_DIRS} ${KokkosKernels_INCLUDE_DIRS}
             LIBS ${KokkosKernels_LIBRARIES} ${Kokkos_LIBRARIES}
             DEFS "TG_KOKKOS_DEVICES=\"${Kokkos_DEVICES}\"")
    set(TG_KOKKOS_NOTE " (Kokkos ${Kokkos_VERSION}, devices ${Kokkos_DEVICES})")
    if(Kokkos_DEVICES STREQUAL "SERIAL")
      # Debian's build: the Kokkos peer's rows are 1-thread rows. Another Kokkos (OpenMP,
      # CUDA) is picked up with -DKokkos_ROOT=... and runs the same peer code.
      string(APPEND TG_KOKKOS_NOTE " - Serial only: the kokkos rows run on 1 thread; -DKokkos_ROOT=<a build with OpenMP or CUDA> for more")
    endif()
  else()
    list(APPEND TG_PEERS_MISSING kokkos)
  endif()

  if(TG_HAVE_CUDA AND TARGET CUDA::cublas)
    _tg_peer(cublas LIBS CUDA::cublas CUDA::cublasLt CUDA::cudart)
  else()
    list(APPEND TG_PEERS_MISSING cublas)
  endif()
endif()

# Kokkos headers need C++17 at most and warn a lot: compile those TUs apart.
function(tg_kokkos_sources target)
  set_source_files_properties(${ARGN} TARGET_DIRECTORY ${target} PROPERTIES
    COMPILE_OPTIONS "-std=c++17;-Wno-pedantic;-Wno-shadow;-Wno-conversion;-Wno-unused-parameter")
endfunction()

# Links every found peer into a test or benchmark target.
function(tg_link_peers target)
  foreach(p IN LISTS TG_PEERS_FOUND)
    target_link_libraries(${target} PRIVATE tg_peer_${p})
  endforeach()
endfunction()

message(STATUS "tilegrad peers found: ${TG_PEERS_FOUND}${TG_KOKKOS_NOTE}")
if(TG_PEERS_MISSING)
  message(STATUS "tilegrad peers missing (their tests and benchmark rows are left out): ${TG_PEERS_MISSING}")
endif()

