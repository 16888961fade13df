# Helpers that give every clinrl library the same warnings, include root and
# (for the tensor-heavy ones) the shared precompiled torch header.

# clinrl_library(NAME SOURCES ... DEPS ... [TORCH] [REGISTRY])
#   TORCH: links LibTorch and reuses the shared <torch/torch.h> PCH.
#   REGISTRY: the library registers envs/rewards/benchmarks from static
#   initialisers; the clinrl binary and the conformance tests link it whole.
function(clinrl_library name)
  cmake_parse_arguments(ARG "TORCH;REGISTRY" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  set_property(GLOBAL APPEND PROPERTY CLINRL_ALL_LIBS ${name})
  if(ARG_REGISTRY)
    set_property(GLOBAL APPEND PROPERTY CLINRL_REGISTRY_LIBS ${name})
  endif()
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  if(ARG_TORCH)
    target_link_libraries(${name} PUBLIC torch)
    # All torch-heavy targets reuse one precompiled header: <torch/torch.h>
    # alone costs ~20 s per translation unit on two cores.
    if(TARGET clinrl_torch_pch)
      target_precompile_headers(${name} REUSE_FROM clinrl_torch_pch)
    endif()
  endif()
endfunction()

# Registries fill themselves from static initialisers next to each env or
# reward; whole-archive linking keeps those objects in the final binaries. The
# archives are named in the link options (not as WHOLE_ARCHIVE link items) so
# that the same library may also reach the target transitively.
function(clinrl_link_whole target)
  foreach(lib ${ARGN})
    # One SHELL: group per archive: CMake de-duplicates repeated plain link
    # options, which would leave every archive after the first unwrapped.
    target_link_options(${target} PRIVATE
      "SHELL:-Wl,--whole-archive $<TARGET_FILE:${lib}> -Wl,--no-whole-archive")
    target_link_libraries(${target} PRIVATE ${lib})
  endforeach()
endfunction()

# Links every library that registers something, whole-archive, plus the rest.
function(clinrl_link_everything target)
  get_property(registry GLOBAL PROPERTY CLINRL_REGISTRY_LIBS)
  get_property(all GLOBAL PROPERTY CLINRL_ALL_LIBS)
  if(registry)
    clinrl_link_whole(${target} ${registry})
  endif()
  target_link_libraries(${target} PRIVATE ${all})
endfunction()

# A GoogleTest executable with the paths tests read at run time; the caller
# registers it with ctest.
function(clinrl_test_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    CLINRL_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    CLINRL_BINARY_DIR="${PROJECT_BINARY_DIR}"
    CLINRL_PYTHON="${CLINRL_PYTHON}")
endfunction()

function(clinrl_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;WHOLE" ${ARGN})
  clinrl_test_executable(${name} SOURCES ${ARG_SOURCES} DEPS ${ARG_DEPS})
  if(ARG_WHOLE)
    clinrl_link_whole(${name} ${ARG_WHOLE})
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST
    PROPERTIES TIMEOUT ${ARG_TIMEOUT}
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
endfunction()

add_library(clinrl_torch_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cc)
target_compile_options(clinrl_torch_pch PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_link_libraries(clinrl_torch_pch PUBLIC torch)
target_precompile_headers(clinrl_torch_pch PRIVATE <torch/torch.h>)

# clinrl_mpi_test(NAME RANKS n... SOURCES ... DEPS ... [TIMEOUT s])
#   A GoogleTest binary run whole under mpiexec, one ctest per rank count
#   (NAME_np<n>). gtest_discover_tests cannot list tests through mpiexec, so
#   each ctest runs every test of the binary; mpiexec exits non-zero when any
#   rank fails, which fails the ctest. Open MPI needs leave to run as root and
#   on more ranks than cores; ranks get one intra-op thread each.
function(clinrl_mpi_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "RANKS;SOURCES;DEPS" ${ARGN})
  clinrl_test_executable(${name} SOURCES ${ARG_SOURCES} DEPS ${ARG_DEPS})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  clinrl_mpiexec_flags(launcher_flags)
  foreach(ranks ${ARG_RANKS})
    add_test(NAME ${name}_np${ranks}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks}
              ${launcher_flags} ${MPIEXEC_PREFLAGS}
              $<TARGET_FILE:${name}> ${MPIEXEC_POSTFLAGS}
      WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
    set_tests_properties(${name}_np${ranks} PROPERTIES
      TIMEOUT ${ARG_TIMEOUT}
      PROCESSORS ${ranks}
      ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMP_NUM_THREADS=1")
  endforeach()
endfunction()

# The launcher flags of clinrl_mpi_test: Open MPI's mpiexec refuses more ranks
# than cores without --oversubscribe and pins ranks to cores unless told
# --bind-to none (oversubscribed pinned ranks share one core); other MPIs'
# launchers take neither flag.
function(clinrl_mpiexec_flags out)
  execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version
    OUTPUT_VARIABLE version ERROR_VARIABLE version RESULT_VARIABLE rc)
  if(rc EQUAL 0 AND version MATCHES "Open MPI|OpenRTE")
    set(${out} --oversubscribe --bind-to none PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()
