# onnxpipe as a subproject: configures tests/package/parent (add_subdirectory of the source tree, an executable linking
# onnxpipe::onnxpipe; it checks which targets it got) and that onnxpipe's test and bench options default to OFF there.
#   cmake -DSOURCE_DIR=<onnxpipe source dir> -DWORK_DIR=<scratch dir> -DGENERATOR=<generator>
#         -DCXX_COMPILER=<compiler> -P subproject_test.cmake
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
require(SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
step("configure the parent" ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/parent -B ${WORK_DIR}/build -G ${GENERATOR}
     -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DONNXPIPE_DIR=${SOURCE_DIR})
file(READ ${WORK_DIR}/build/CMakeCache.txt cache)
foreach(option ONNXPIPE_BUILD_TESTS ONNXPIPE_BUILD_BENCH)
  if(NOT cache MATCHES "${option}:BOOL=OFF")
    message(FATAL_ERROR "as a subproject, ${option} should default to OFF")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
