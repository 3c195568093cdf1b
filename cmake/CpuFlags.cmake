# CpuFlags.cmake — the instruction-set flags of the CPU code, checked against the compiler.
#
# Sets NMSNN_CPU_FLAGS (a list, applied to the library and the tests). The default build is
# portable: no -march flag, so the binaries run on any x86-64 (or other) CPU whatever machine
# built them. NMSNN_NATIVE=ON opts in to -march=native; before using it, CMake compiles and runs
# tests/compiler_soundness.cpp with those flags. A compiler that miscompiles AVX-512 code (GCC
# 12.2 does) gets -mno-avx512f added, and a compiler that is still wrong stops the configure.

set(NMSNN_CPU_FLAGS "")

# nmsnn_flags_sound(<result-var> <flags...>): TRUE when the soundness program, built with -O3 and
# the flags, runs and exits 0.
function(nmsnn_flags_sound result)
  string(REPLACE ";" " " flags "${ARGN}")
  # COMPILE_DEFINITIONS is try_run's way to pass plain compiler flags (CMAKE_CXX_FLAGS given in
  # CMAKE_FLAGS does not reach the compile line).
  try_run(run_result compile_ok
          ${CMAKE_BINARY_DIR}/cpu-flags-check
          ${PROJECT_SOURCE_DIR}/tests/compiler_soundness.cpp
          COMPILE_DEFINITIONS -O3 ${ARGN}
          CXX_STANDARD 17
          COMPILE_OUTPUT_VARIABLE compile_out
          RUN_OUTPUT_VARIABLE run_out)
  if(compile_ok AND run_result EQUAL 0)
    set(${result} TRUE PARENT_SCOPE)
  else()
    string(STRIP "${run_out}" run_out)
    string(REPLACE "\n" "; " run_out "${run_out}")
    message(STATUS "nmsnn: '${flags}' is not sound with this compiler: ${run_out}")
    set(${result} FALSE PARENT_SCOPE)
  endif()
endfunction()

if(NMSNN_NATIVE)
  set(NMSNN_CPU_FLAGS -march=native)
  nmsnn_flags_sound(native_ok ${NMSNN_CPU_FLAGS})
  if(NOT native_ok)
    list(APPEND NMSNN_CPU_FLAGS -mno-avx512f)
    nmsnn_flags_sound(without_avx512_ok ${NMSNN_CPU_FLAGS})
    if(NOT without_avx512_ok)
      message(FATAL_ERROR "nmsnn: ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION} "
                          "miscompiles tests/compiler_soundness.cpp with -march=native, even "
                          "without AVX-512: configure with -DNMSNN_NATIVE=OFF")
    endif()
    message(WARNING "nmsnn: ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION} miscompiles "
                    "AVX-512 code (tests/compiler_soundness.cpp), so NMSNN_NATIVE builds for "
                    "this machine without AVX-512 (-march=native -mno-avx512f)")
  endif()
endif()

# The avx512 kernel set (host/cpu/kernel_set.hpp): its functions carry an AVX-512 target
# attribute, so it is compiled into every x86-64 build whatever the flags above, and the library
# offers it at run time (NMSNN_CPU_AVX512) only when this compiler's code for it is right:
# tests/compiler_soundness.cpp, built with NMSNN_SOUNDNESS_KERNELS, runs the set's product and
# noise kernels against the avx2 set and the scalar Philox. Where the build machine has no
# AVX-512 the program cannot run them; the set is then offered unverified here, since the code
# does not depend on the build machine (no -march), and ctest's compiler_soundness runs the same
# check on any AVX-512 machine that runs the tests.
set(NMSNN_CPU_AVX512 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i.86)$")
  try_run(avx512_run avx512_compile_ok
          ${CMAKE_BINARY_DIR}/cpu-avx512-check
          ${PROJECT_SOURCE_DIR}/tests/compiler_soundness.cpp
          CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${PROJECT_SOURCE_DIR}/host;${PROJECT_SOURCE_DIR}/include"
          COMPILE_DEFINITIONS -O3 -DNMSNN_SOUNDNESS_KERNELS=1 ${NMSNN_CPU_FLAGS}
          CXX_STANDARD 17
          COMPILE_OUTPUT_VARIABLE avx512_compile_out
          RUN_OUTPUT_VARIABLE avx512_run_out)
  string(STRIP "${avx512_run_out}" avx512_run_out)
  string(REPLACE "\n" "; " avx512_run_out "${avx512_run_out}")
  if(NOT avx512_compile_ok)
    message(STATUS "nmsnn: avx512 kernel set off: the soundness check does not compile")
  elseif(NOT avx512_run EQUAL 0)
    message(WARNING "nmsnn: avx512 kernel set off: ${CMAKE_CXX_COMPILER_ID} "
                    "${CMAKE_CXX_COMPILER_VERSION} miscompiles it: ${avx512_run_out}")
  else()
    set(NMSNN_CPU_AVX512 ON)
    message(STATUS "nmsnn: avx512 kernel set on: ${avx512_run_out}")
  endif()
endif()
