# Installs the built onnxpipe into a fresh prefix, then configures, builds and runs the consumer project beside this
# script against it. cmake -DBINARY_DIR=<onnxpipe build dir> -DWORK_DIR=<scratch dir> -DGENERATOR=<generator>
# -DCXX_COMPILER=<compiler> -P run_test.cmake
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
require(BINARY_DIR WORK_DIR GENERATOR CXX_COMPILER)

set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/consumer)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

step("install into ${prefix}" ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${prefix})
foreach(installed include/onnxpipe/split.h include/onnxpipe/pipeline.h share/onnxpipe/plot.py)
  if(NOT EXISTS ${prefix}/${installed})
    message(FATAL_ERROR "not installed: ${prefix}/${installed}")
  endif()
endforeach()
file(GLOB cli ${prefix}/bin/onnxpipe)
file(GLOB_RECURSE config ${prefix}/*/onnxpipeConfig.cmake)
file(GLOB_RECURSE config_version ${prefix}/*/onnxpipeConfigVersion.cmake)
if(NOT cli OR NOT config OR NOT config_version)
  message(FATAL_ERROR "install incomplete: bin/onnxpipe '${cli}', onnxpipeConfig.cmake '${config}', "
                      "onnxpipeConfigVersion.cmake '${config_version}'")
endif()

# Only the prefix: the consumer must not see onnxpipe's source or build tree.
step("configure the consumer" ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR} -B ${consumer_build} -G ${GENERATOR}
     -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix})
step("build the consumer" ${CMAKE_COMMAND} --build ${consumer_build})
# The README flow on a 9-node model of Debian's ONNX test data, when it is installed (make test installs it).
set(model /usr/share/libonnx-testdata/data/node/test_mvn_expanded/model.onnx)
if(EXISTS ${model})
  step("run the consumer" ${consumer_build}/consumer ${model} ${WORK_DIR}/pieces)
else()
  message(STATUS "${model} absent: the consumer only checks its error path")
  step("run the consumer" ${consumer_build}/consumer)
endif()
message(STATUS "${step_output}")
step("run the installed CLI" ${cli} --help)
file(REMOVE_RECURSE ${WORK_DIR})
