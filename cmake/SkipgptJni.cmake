# libjniNativeCpu: the JNI glue JavaCPP generated for io.skipgpt.tensor.NativeCpu, linked to libskipgpt_cpu
# and found beside it at run time ($ORIGIN), inside the jar's resource folder or JavaCPP's cache.
if(SKIPGPT_JNI_DIR)
  find_package(JNI REQUIRED COMPONENTS JVM)
  file(GLOB_RECURSE SKIPGPT_JNI_SOURCES "${SKIPGPT_JNI_DIR}/*.cpp")
  if(NOT SKIPGPT_JNI_SOURCES)
    message(FATAL_ERROR "no JNI sources in ${SKIPGPT_JNI_DIR}: run the JavaCPP generation first (mvn process-classes)")
  endif()
  add_library(jniNativeCpu SHARED ${SKIPGPT_JNI_SOURCES})
  target_include_directories(jniNativeCpu PRIVATE ${JNI_INCLUDE_DIRS} "${CMAKE_SOURCE_DIR}/native/include")
  target_compile_options(jniNativeCpu PRIVATE -O2 -w)
  target_link_libraries(jniNativeCpu PRIVATE skipgpt_cpu)
  set_target_properties(jniNativeCpu PROPERTIES BUILD_RPATH "$ORIGIN" INSTALL_RPATH "$ORIGIN")
endif()
