# libskipgpt_cuda: the CUDA twins of the CPU kernels (native/cuda), built only where nvcc is found.
# Architecture 90 (H100/H200); "native" would fail on machines without a GPU, such as CI.
include(CheckLanguage)
check_language(CUDA)
if(CMAKE_CUDA_COMPILER)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED QUIET)
  set(SKIPGPT_HAVE_CUDA ON)
  file(GLOB SKIPGPT_CUDA_SOURCES CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/native/cuda/*.cu")
  add_library(skipgpt_cuda SHARED ${SKIPGPT_CUDA_SOURCES})
  target_include_directories(skipgpt_cuda PUBLIC "${CMAKE_SOURCE_DIR}/native/include")
  target_compile_options(skipgpt_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3 --use_fast_math>)
  # The training kernels promise the CPU's bits (native/include/skipgpt_training.h); --use_fast_math would also
  # flush subnormals to zero in their float <-> double conversions, where the CPU keeps them.
  set_source_files_properties("${CMAKE_SOURCE_DIR}/native/cuda/training.cu" "${CMAKE_SOURCE_DIR}/native/cuda/gating.cu"
                              PROPERTIES COMPILE_OPTIONS "--ftz=false")
  set_target_properties(skipgpt_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Shared)
  target_link_libraries(skipgpt_cuda PUBLIC CUDA::cudart)
  message(STATUS "skipgpt: CUDA ${CMAKE_CUDA_COMPILER_VERSION} found, building libskipgpt_cuda for sm_${CMAKE_CUDA_ARCHITECTURES}")
else()
  set(SKIPGPT_HAVE_CUDA OFF)
  message(STATUS "skipgpt: no CUDA compiler found, skipping native/cuda")
endif()
