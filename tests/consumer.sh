#!/usr/bin/env bash
# Builds tests/consumer (a project outside the tree that trains a linear regression)
# against tilegrad as a user would, and runs it. CTest runs each mode (tests/CMakeLists.txt).
#
#   tests/consumer.sh BUILD CXX install   `cmake --install BUILD` into a scratch prefix;
#                                         find_package(tilegrad), then pkg-config alone
#   tests/consumer.sh BUILD CXX deb       `cpack -G DEB` in BUILD, the .deb unpacked with
#                                         dpkg-deb; the same two builds against it
#   tests/consumer.sh BUILD CXX subdir    the checkout as a subproject (add_subdirectory,
#                                         as FetchContent does) in a Debug build (the
#                                         library builds and runs unoptimized too, in
#                                         half the Release build's time), shared
#                                         libraries (the other modes use BUILD's, static
#                                         by default), CUDA off to keep it short
set -euo pipefail
build=$(cd "$1" && pwd) cxx=$2 mode=$3
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tg-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "consumer ($mode): $*"; }

with_package() {  # with_package PREFIX: find_package, then pkg-config, each built and run
  local prefix=$1
  step "find_package(tilegrad) against $prefix"
  cmake -S "$src/tests/consumer" -B "$work/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 \
    || { cat "$work/cmake.log"; exit 1; }
  cmake --build "$work/cmake" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
  "$work/cmake/consumer"

  local pc
  pc=$(find "$prefix" -name tilegrad.pc -print -quit)
  [ -n "$pc" ] || { echo "consumer: no tilegrad.pc under $prefix" >&2; exit 1; }
  step "pkg-config ($pc)"
  local flags
  export PKG_CONFIG_PATH
  PKG_CONFIG_PATH=$(dirname "$pc")
  flags=$(pkg-config --cflags --libs tilegrad)
  echo "  $cxx -std=c++20 -O2 main.cpp $flags"
  # shellcheck disable=SC2086  # the flags are words
  "$cxx" -std=c++20 -O2 "$src/tests/consumer/main.cpp" $flags -o "$work/pc-consumer"
  # A shared build in a prefix the loader does not search: the user's LD_LIBRARY_PATH.
  LD_LIBRARY_PATH="$(pkg-config --variable=libdir tilegrad)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$work/pc-consumer"
}

case $mode in
  install)
    step "cmake --install into a scratch prefix"
    cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
    # The installed tree has one project folder in its include path, nothing else.
    extra=$(find "$work/prefix/include" -mindepth 1 -maxdepth 1 ! -name tilegrad)
    [ -z "$extra" ] || { echo "consumer: the install put more than tilegrad/ in include/: $extra" >&2; exit 1; }
    with_package "$work/prefix"
    ;;
  deb)
    step "cpack -G DEB"
    (cd "$build" && cpack -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
    deb=$(find "$work/pkg" -maxdepth 1 -name '*.deb' -print -quit)
    [ -n "$deb" ] || { echo "consumer: cpack made no .deb" >&2; exit 1; }
    dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Depends\):/  \1:/p'
    dpkg-deb -x "$deb" "$work/root"
    with_package "$work/root/usr"
    ;;
  subdir)
    step "add_subdirectory($src)"
    cmake -S "$src/tests/consumer" -B "$work/sub" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$cxx" \
      -DTILEGRAD_SOURCE="$src" -DTG_CUDA=OFF -DBUILD_SHARED_LIBS=ON >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; exit 1; }
    cmake --build "$work/sub" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
    # A subproject builds the library only: no tests, benchmarks or examples of its own.
    if [ -e "$work/sub/tilegrad/tests" ] || [ -e "$work/sub/tilegrad/bench/bench_gemm" ]; then
      echo "consumer: the subproject built tilegrad's tests or benchmarks" >&2; exit 1
    fi
    "$work/sub/consumer"
    ;;
  *) echo "usage: tests/consumer.sh BUILD CXX install|deb|subdir" >&2; exit 2 ;;
esac
