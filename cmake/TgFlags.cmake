# Compiler flags shared by every target: warnings, sanitizers, per-ISA source flags.

# Sanitizers apply to every target and every test (TG_SANITIZE="address;undefined").
# -fno-sanitize-recover makes a UBSan report fail the test instead of scrolling past.
if(TG_SANITIZE)
  list(JOIN TG_SANITIZE "," _tg_san)
  add_compile_options(
    "$<$<COMPILE_LANGUAGE:CXX>:-fsanitize=${_tg_san};-fno-omit-frame-pointer;-fno-sanitize-recover=all>")
  add_link_options("-fsanitize=${_tg_san}")
  add_compile_definitions(TG_SANITIZED=1)
endif()

# Fuzzing: every unit gets libFuzzer's coverage instrumentation (the targets link the
# fuzzer itself, fuzz/CMakeLists.txt). clang only.
if(TG_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TG_FUZZ needs clang (libFuzzer); configure with -DCMAKE_CXX_COMPILER=clang++-16")
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link>")
endif()

# Whether the target is x86-64 or aarch64: it decides which ISA units, FMA probes and
# object-code checks exist (cpu/CMakeLists.txt, bench/, tests/) and the contraction flag
# below.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(TG_X86 ON)
else()
  set(TG_X86 OFF)
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(TG_AARCH64 ON)
else()
  set(TG_AARCH64 OFF)
endif()

# Off x86-64 (aarch64: FMA is in the baseline ISA) GCC would fuse a * b + c into one
# rounding wherever its optimizer sees the pair, differently in differently inlined
# copies of one function: the same reference kernel gave in-place and out-of-place
# results one ulp apart under qemu. The portable path is written for separate roundings,
# as x86-64's baseline (SSE2, no FMA) compiles it; explicit std::fma and the SIMD
# paths' FMA intrinsics are unaffected.
if(NOT TG_X86)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off>")
endif()

# Warnings for our own targets (peers' headers come in as SYSTEM and stay quiet).
function(tg_set_warnings target)
  target_compile_options(${target} PRIVATE
    "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wpedantic;-Wshadow;-Wconversion;-Wno-sign-conversion>")
  if(TG_WERROR)
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:-Werror>")
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>")
  endif()
endfunction()

# SIMD code lives in its own translation units, named *_avx2.cpp and *_avx512.cpp, and
# only those get their ISA's flags; the rest of the library is plain x86-64, so the
# binary runs anywhere and picks its path at run time (cpu/isa.hpp). The AVX-512 path
# is F + BW + DQ + VL (Skylake-SP and later, Zen 4 and later), with FMA and F16C, which
# every such CPU has. -mprefer-vector-width=512: loops the compiler vectorizes itself
# (reductions, the optimizers, elementwise ops) use zmm, not the ymm GCC prefers.
set(TG_AVX2_FLAGS -mavx2 -mfma)
# GCC 12's AVX-512 intrinsics build their "undefined" operands as self-initialized
# locals, which -W(maybe-)uninitialized reports wherever they are inlined (GCC bug 105593,
# fixed in GCC 13): both off for these files under GCC < 13 only.
set(TG_AVX512_FLAGS -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512dq -mavx512vl -mprefer-vector-width=512
    "$<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-maybe-uninitialized;-Wno-uninitialized>")
function(tg_avx2_sources)
  set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS "${TG_AVX2_FLAGS}")
endfunction()
function(tg_avx512_sources)
  set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS "${TG_AVX512_FLAGS}")
endfunction()
