# Shared by the package tests' scripts (cmake -P): required -D variables and one checked step.

# require(VAR...): each must be given as -DVAR=...
function(require)
  foreach(var ${ARGN})
    if(NOT DEFINED ${var})
      message(FATAL_ERROR "${CMAKE_CURRENT_LIST_FILE}: -D${var}=... is required")
    endif()
  endforeach()
endfunction()

# step(WHAT COMMAND...): runs COMMAND in WORK_DIR, fails the test with its output unless it exits 0; its output is
# left in step_output.
function(step what)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY ${WORK_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  message(STATUS "${what}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()
