# The JNI glue JavaCPP generated, one folder per bound class under SKIPGPT_JNI_DIR:
#   cpu/  -> libjniNativeCpu  (io.skipgpt.tensor.NativeCpu), linked to libskipgpt_cpu; built everywhere
#   cuda/ -> libjniNativeCuda (io.skipgpt.tensor.NativeCuda), linked to libskipgpt_cuda; built only with CUDA,
#            and never a dependency of the CPU side
# Each finds its kernel library beside it at run time ($ORIGIN), inside the jar's resource folder or JavaCPP's cache.
if(SKIPGPT_JNI_DIR)
  find_package(JNI REQUIRED COMPONENTS JVM)

  # skipgpt_jni_library(TARGET FOLDER KERNEL_LIBRARY)
  function(skipgpt_jni_library target folder kernels)
    file(GLOB sources "${SKIPGPT_JNI_DIR}/${folder}/*.cpp")
    if(NOT sources)
      message(FATAL_ERROR "no JNI sources in ${SKIPGPT_JNI_DIR}/${folder}: run the JavaCPP generation first (mvn process-classes)")
    endif()
    add_library(${target} SHARED ${sources})
    target_include_directories(${target} PRIVATE ${JNI_INCLUDE_DIRS} "${CMAKE_SOURCE_DIR}/native/include")
    target_compile_options(${target} PRIVATE -O2 -w)
    target_link_libraries(${target} PRIVATE ${kernels})
    set_target_properties(${target} PROPERTIES BUILD_RPATH "$ORIGIN" INSTALL_RPATH "$ORIGIN")
  endfunction()

  skipgpt_jni_library(jniNativeCpu cpu skipgpt_cpu)
  if(SKIPGPT_HAVE_CUDA)
    skipgpt_jni_library(jniNativeCuda cuda skipgpt_cuda)
  endif()
endif()
