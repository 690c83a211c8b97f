# CTest: every native kernel against a plain reference, on random inputs of awkward shapes.
# GPU tests return 77 (skipped) where no device is usable.
add_executable(test_cpu_kernels "${CMAKE_SOURCE_DIR}/tests/native/test_cpu_kernels.cpp")
target_link_libraries(test_cpu_kernels PRIVATE skipgpt_cpu)
set_target_properties(test_cpu_kernels PROPERTIES BUILD_RPATH "${SKIPGPT_OUTPUT_DIR}")
add_test(NAME cpu_kernels COMMAND test_cpu_kernels)

add_executable(test_gpu_probe "${CMAKE_SOURCE_DIR}/tests/native/test_gpu_probe.cpp")
target_link_libraries(test_gpu_probe PRIVATE skipgpt_cpu)
set_target_properties(test_gpu_probe PROPERTIES BUILD_RPATH "${SKIPGPT_OUTPUT_DIR}")
add_test(NAME gpu_probe COMMAND test_gpu_probe)

if(SKIPGPT_HAVE_CUDA)
  add_executable(test_cuda_kernels "${CMAKE_SOURCE_DIR}/tests/native/test_cuda_kernels.cu")
  target_link_libraries(test_cuda_kernels PRIVATE skipgpt_cuda skipgpt_cpu CUDA::cudart)
  set_target_properties(test_cuda_kernels PROPERTIES BUILD_RPATH "${SKIPGPT_OUTPUT_DIR}")
  add_test(NAME cuda_kernels COMMAND test_cuda_kernels)
  set_tests_properties(cuda_kernels PROPERTIES SKIP_RETURN_CODE 77)
endif()

# Not a test: bandwidth and timings on a GPU (tests/gpu/run.sh runs it). Exits 77 without a device.
if(SKIPGPT_HAVE_CUDA)
  add_executable(bench_cuda_rows "${CMAKE_SOURCE_DIR}/tests/native/bench_cuda_rows.cu")
  target_link_libraries(bench_cuda_rows PRIVATE skipgpt_cuda CUDA::cudart)
  set_target_properties(bench_cuda_rows PROPERTIES BUILD_RPATH "${SKIPGPT_OUTPUT_DIR}")
endif()
