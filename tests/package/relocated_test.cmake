# The installed prefix works on its own: installs the built onnxpipe, moves the prefix elsewhere, then runs the moved
# CLI with no LD_LIBRARY_PATH: --version (ONNX Runtime found beside it), a tiny bench, and plot of that bench's CSV
# (plot.py found in the prefix, not in the source tree).
#   cmake -DBINARY_DIR=<onnxpipe build dir> -DWORK_DIR=<scratch dir> -DSOURCE_DIR=<source dir> -P relocated_test.cmake
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
require(BINARY_DIR WORK_DIR SOURCE_DIR)

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
step("install into ${WORK_DIR}/prefix" ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${WORK_DIR}/prefix)
set(moved ${WORK_DIR}/elsewhere/onnxpipe)
file(MAKE_DIRECTORY ${WORK_DIR}/elsewhere)
file(RENAME ${WORK_DIR}/prefix ${moved})
set(cli ${moved}/bin/onnxpipe)

# The CLI loads the ONNX Runtime installed beside it, through an RPATH relative to itself.
file(READ_ELF ${cli} RUNPATH runpath RPATH rpath)
if(NOT "${runpath}${rpath}" STREQUAL "$ORIGIN/../lib")
  message(FATAL_ERROR "${cli}: RUNPATH '${runpath}' RPATH '${rpath}', expected only $ORIGIN/../lib")
endif()
set(no_env ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH)
step("ldd the moved CLI" ${no_env} ldd ${cli})
if(NOT step_output MATCHES "libonnxruntime\\.so\\.1 => ${moved}/bin/\\.\\./lib/libonnxruntime\\.so\\.1")
  message(FATAL_ERROR "the moved CLI does not load ${moved}/lib/libonnxruntime.so.1:\n${step_output}")
endif()
step("run the moved CLI" ${no_env} ${cli} --version)
message(STATUS "${step_output}")

# A tiny bench of a 9-node model of Debian's ONNX test data when it is installed (make test installs it); else the
# plot draws the bench fixture.
set(model /usr/share/libonnx-testdata/data/node/test_mvn_expanded/model.onnx)
set(csv ${SOURCE_DIR}/tests/data/bench_small.csv)
if(EXISTS ${model})
  set(csv ${WORK_DIR}/bench.csv)
  execute_process(COMMAND ${no_env} ${cli} bench ${model} --devices cpu:1,cpu:1 --balance flops --images 1,3
                          --repeat 1 --warmup 0 --alone-runs 2 --modes sequence,pipeline --format csv
                  WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE rc OUTPUT_FILE ${csv} ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "bench with the moved CLI failed (${rc}):\n${err}")
  endif()
  message(STATUS "bench with the moved CLI: ok")
else()
  message(STATUS "${model} absent: no bench, the plot draws ${csv}")
endif()
if(EXISTS /usr/bin/python3)
  step("plot with the moved CLI" ${no_env} ${cli} -v plot ${csv} -o ${WORK_DIR}/bench.png)
  if(NOT step_output MATCHES "plot: /usr/bin/python3 ${moved}/share/onnxpipe/plot.py")
    message(FATAL_ERROR "the moved CLI's plot does not run the installed plot.py:\n${step_output}")
  endif()
  if(NOT EXISTS ${WORK_DIR}/bench.png)
    message(FATAL_ERROR "plot wrote no ${WORK_DIR}/bench.png")
  endif()
else()
  message(STATUS "/usr/bin/python3 absent: plot not tried")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
