# libskipgpt_cpu: the CPU kernels (native/cpu) and the GPU probe. Built everywhere.
find_package(OpenMP REQUIRED COMPONENTS CXX)
file(GLOB SKIPGPT_CPU_SOURCES CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/native/cpu/*.cpp")
add_library(skipgpt_cpu SHARED ${SKIPGPT_CPU_SOURCES})
target_include_directories(skipgpt_cpu PUBLIC "${CMAKE_SOURCE_DIR}/native/include")
# x86-64-v3 = AVX2 + FMA: every server CPU since 2013, and what the kernels are written to vectorise for.
target_compile_options(skipgpt_cpu PRIVATE -O3 -march=x86-64-v3 -fno-math-errno -Wall -Wextra)
target_link_libraries(skipgpt_cpu PRIVATE OpenMP::OpenMP_CXX ${CMAKE_DL_LIBS})
# The training kernels compute as the plain-Java code they replace (and as their CUDA twins): no a * b + c fused into
# one rounding, which gcc does by default on an FMA target.
set_source_files_properties("${CMAKE_SOURCE_DIR}/native/cpu/training.cpp" PROPERTIES COMPILE_OPTIONS -ffp-contract=off)

# libskipgpt_env: sets OpenMP's wait policy before libgomp loads (see native/cpu/omp_env.c). No dependencies.
add_library(skipgpt_env SHARED "${CMAKE_SOURCE_DIR}/native/cpu/omp_env.c")
