# Every dependency comes from a Debian 12 package installed by launch/setup.
find_package(Threads REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(cppzmq REQUIRED)
find_package(SQLite3 REQUIRED)
# Debian ships cpp-httplib as a compiled library with a pkg-config file only.
find_package(PkgConfig REQUIRED)
pkg_check_modules(CPP_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
add_library(clinrl_httplib INTERFACE)
target_link_libraries(clinrl_httplib INTERFACE PkgConfig::CPP_HTTPLIB)
find_package(MPI REQUIRED COMPONENTS CXX)
find_package(Torch REQUIRED)
find_package(Python3 REQUIRED COMPONENTS Interpreter)

# The GPU paths (NCCL communicator, CUDA kernels) compile only when LibTorch was
# built with CUDA and NCCL can be found; the CPU build never needs them.
set(CLINRL_WITH_CUDA OFF)
set(CLINRL_WITH_NCCL OFF)
if(CAFFE2_USE_CUDA OR TARGET torch_cuda)
  set(CLINRL_WITH_CUDA ON)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS $ENV{NCCL_HOME}/include ${CUDA_TOOLKIT_ROOT_DIR}/include)
  find_library(NCCL_LIBRARY nccl HINTS $ENV{NCCL_HOME}/lib $ENV{NCCL_HOME}/lib64 ${CUDA_TOOLKIT_ROOT_DIR}/lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(CLINRL_WITH_NCCL ON)
    add_library(clinrl_nccl INTERFACE)
    target_include_directories(clinrl_nccl INTERFACE ${NCCL_INCLUDE_DIR})
    target_link_libraries(clinrl_nccl INTERFACE ${NCCL_LIBRARY})
  endif()
endif()
message(STATUS "clinrl: CUDA ${CLINRL_WITH_CUDA}, NCCL ${CLINRL_WITH_NCCL}")

# The Debian interpreter is the one that can import python3-zmq, python3-torch
# and python3-numpy; a python3 found first on PATH may not.
if(EXISTS /usr/bin/python3)
  set(CLINRL_SYSTEM_PYTHON /usr/bin/python3)
else()
  set(CLINRL_SYSTEM_PYTHON ${Python3_EXECUTABLE})
endif()

if(CLINRL_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
