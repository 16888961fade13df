# Every dependency comes from a Debian 12 package or from the venv that
# launch/setup installs (LibTorch, NCCL and the Python test references).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(cppzmq REQUIRED)
find_package(SQLite3 REQUIRED)
# Debian ships cpp-httplib as a compiled library with a pkg-config file only.
find_package(PkgConfig REQUIRED)
pkg_check_modules(CPP_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
add_library(clinrl_httplib INTERFACE)
target_link_libraries(clinrl_httplib INTERFACE PkgConfig::CPP_HTTPLIB)
# MPI carries the multi-process communicator and bootstraps NCCL. Only the
# GPU check build of launch/device-check turns it off (its machine has no
# MPI): that build has no MPI/NCCL communicator and configures tests/device
# alone.
option(CLINRL_WITH_MPI "Build the MPI (and NCCL) communicators" ON)
if(CLINRL_WITH_MPI)
  find_package(MPI REQUIRED COMPONENTS CXX)
endif()

# Python: the interpreter of the venv that launch/setup creates. It runs the
# tools, the Python env adapter and every reference in the tests
# (transformers, tokenizers, tensorboard, gymnasium, playwright), and its torch
# wheel (2.11.0+cu130) is the LibTorch that clinrl links. Never a python3 from
# PATH: it may lack all of these.
set(CLINRL_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python interpreter of clinrl's venv (launch/setup creates it)")
# A build folder configured with another venv keeps that venv's LibTorch and
# NCCL in its cache: forget them when the interpreter changes.
if(DEFINED CLINRL_PYTHON_CONFIGURED AND
   NOT CLINRL_PYTHON_CONFIGURED STREQUAL CLINRL_PYTHON)
  foreach(var Torch_DIR Caffe2_DIR NCCL_INCLUDE_DIR NCCL_LIBRARY
              TORCH_LIBRARY C10_CUDA_LIBRARY)
    unset(${var} CACHE)
  endforeach()
endif()
set(CLINRL_PYTHON_CONFIGURED "${CLINRL_PYTHON}" CACHE INTERNAL "")
if(NOT EXISTS "${CLINRL_PYTHON}")
  message(FATAL_ERROR "CLINRL_PYTHON: ${CLINRL_PYTHON} does not exist; "
                      "run launch/setup, which creates the venv")
endif()
execute_process(
  COMMAND "${CLINRL_PYTHON}" -c
    "import os, torch, torch.utils; print(torch.utils.cmake_prefix_path); print(os.path.dirname(os.path.dirname(torch.__file__)))"
  OUTPUT_VARIABLE torch_paths RESULT_VARIABLE rc
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "CLINRL_PYTHON: ${CLINRL_PYTHON} cannot import torch; "
                      "run launch/setup")
endif()
string(REPLACE "\n" ";" torch_paths "${torch_paths}")
list(GET torch_paths 0 CLINRL_TORCH_CMAKE_PREFIX)
list(GET torch_paths 1 CLINRL_SITE_PACKAGES)
list(APPEND CMAKE_PREFIX_PATH "${CLINRL_TORCH_CMAKE_PREFIX}")

# The wheel is built with CUDA: its CMake files look for the CUDA toolkit
# (headers, nvcc) and compile for TORCH_CUDA_ARCH_LIST. No GPU is here to
# detect, so the default is H100/H200.
if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(ENV{TORCH_CUDA_ARCH_LIST} "9.0")
endif()
# Torch's CMake files look for a Python of their own: the venv's.
set(Python_EXECUTABLE "${CLINRL_PYTHON}")
find_package(Torch REQUIRED)
# torch_cuda names the toolkit's libcudart as a link dependency; the wheel's
# libraries load the wheel's own (nvidia/cu13). Both have one soname, so a
# process gets whichever its rpath finds first: make it the wheel's, which is
# also the only one on a GPU machine that has the wheel and no toolkit.
set(CLINRL_CUDART "${CLINRL_SITE_PACKAGES}/nvidia/cu13/lib/libcudart.so.13")
if(TARGET CUDA::cudart AND EXISTS "${CLINRL_CUDART}")
  set_property(TARGET CUDA::cudart PROPERTY IMPORTED_LOCATION "${CLINRL_CUDART}")
endif()
message(STATUS "clinrl: LibTorch ${Torch_VERSION} from ${CLINRL_TORCH_CMAKE_PREFIX}")

# libtorch.so of the wheel carries and exports parts of a newer libstdc++
# (std::filesystem, std::chrono::tzdb, string streams), some of them broken
# when called from outside it: std::filesystem::remove_all jumps to address
# 0. The dynamic linker binds each symbol to the first library in NEEDED
# order, and libstdc++ comes last by default; naming it first makes the
# system's libstdc++ the one every clinrl binary calls.
foreach(kind EXE SHARED MODULE)
  string(APPEND CMAKE_${kind}_LINKER_FLAGS
    " -Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state")
endforeach()

# The wheel ships its own fmt headers (fmt 12) in its include folder, which
# comes before the system's on every torch target's command line. clinrl,
# spdlog and libfmt.so are Debian's fmt 9: a folder holding only a link to
# that fmt goes first, so <fmt/...> is the same fmt everywhere. (torch.h
# itself includes no fmt header.)
get_target_property(clinrl_fmt_include fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
find_path(CLINRL_FMT_INCLUDE_DIR fmt/format.h HINTS ${clinrl_fmt_include}
  NO_DEFAULT_PATH)
if(NOT CLINRL_FMT_INCLUDE_DIR)
  set(CLINRL_FMT_INCLUDE_DIR /usr/include)
endif()
set(CLINRL_FMT_SHIM ${PROJECT_BINARY_DIR}/system_fmt)
file(MAKE_DIRECTORY ${CLINRL_FMT_SHIM})
file(CREATE_LINK ${CLINRL_FMT_INCLUDE_DIR}/fmt ${CLINRL_FMT_SHIM}/fmt SYMBOLIC)
include_directories(BEFORE SYSTEM ${CLINRL_FMT_SHIM})

# The GPU paths (NCCL communicator, CUDA tensors) compile whenever LibTorch was
# built with CUDA. NCCL is the wheel's own (nvidia-nccl-cu13, the one
# libtorch_cuda loads): a second copy from the toolkit would put two NCCLs in
# one process.
# A CPU-only torch would drop those sources without a word, so it is an
# error unless asked for (CLINRL_ALLOW_CPU_TORCH=ON, for machines that cannot
# have the CUDA wheel).
option(CLINRL_ALLOW_CPU_TORCH "Build without CUDA and NCCL when torch has no CUDA" OFF)
set(CLINRL_WITH_CUDA OFF)
set(CLINRL_WITH_NCCL OFF)
if(NOT TARGET torch_cuda AND NOT CLINRL_ALLOW_CPU_TORCH)
  message(FATAL_ERROR "torch at ${CLINRL_TORCH_CMAKE_PREFIX} was built without "
    "CUDA, so the NCCL communicator and the CUDA paths would not compile; "
    "expected the torch==2.11.0 (cu130) wheel of launch/requirements.txt, or "
    "-DCLINRL_ALLOW_CPU_TORCH=ON to build without them")
endif()
if(TARGET torch_cuda)
  set(CLINRL_WITH_CUDA ON)
endif()
# NCCL's communicator is bootstrapped over MPI.
if(TARGET torch_cuda AND CLINRL_WITH_MPI)
  find_path(NCCL_INCLUDE_DIR nccl.h
    HINTS "${CLINRL_SITE_PACKAGES}/nvidia/nccl/include" NO_DEFAULT_PATH)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
    HINTS "${CLINRL_SITE_PACKAGES}/nvidia/nccl/lib" NO_DEFAULT_PATH)
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "NCCL: nccl.h or libnccl.so.2 not found under "
      "${CLINRL_SITE_PACKAGES}/nvidia/nccl (the nvidia-nccl-cu13 wheel that "
      "torch==2.11.0 depends on); run launch/setup")
  endif()
  set(CLINRL_WITH_NCCL ON)
  add_library(clinrl_nccl INTERFACE)
  target_include_directories(clinrl_nccl INTERFACE ${NCCL_INCLUDE_DIR})
  target_link_libraries(clinrl_nccl INTERFACE ${NCCL_LIBRARY})
endif()
message(STATUS "clinrl: CUDA ${CLINRL_WITH_CUDA}, NCCL ${CLINRL_WITH_NCCL}, MPI ${CLINRL_WITH_MPI}")

if(CLINRL_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
