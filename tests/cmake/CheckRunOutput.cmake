# Runs `latefuse run PIPELINE --input INPUT` and checks every output record against
# EXPECTED (JSON Lines, one per input line): its id, status, label and probabilities,
# compared as JSON values (numbers by value). For the tests that run a pipeline built
# outside this tree (sdk_consumer_run, readme_guide).
#
#   cmake -DLATEFUSE=<latefuse> -DPIPELINE=<yaml> -DINPUT=<jsonl> -DEXPECTED=<jsonl>
#         -P CheckRunOutput.cmake
cmake_minimum_required(VERSION 3.19)

execute_process(COMMAND "${LATEFUSE}" run "${PIPELINE}" --input "${INPUT}" --no-progress
                RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE errors)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "latefuse run ${PIPELINE} failed (${status}):\n${errors}")
endif()
message(STATUS "latefuse run ${PIPELINE}:\n${output}")

# One record per line; JSON holds no raw newline, and `;` must not split a list here.
string(REPLACE ";" "\\;" output "${output}")
string(REGEX REPLACE "\n$" "" output "${output}")
string(REPLACE "\n" ";" records "${output}")
file(STRINGS "${EXPECTED}" expected_records)
list(LENGTH records got)
list(LENGTH expected_records want)
if(NOT got EQUAL want)
  message(FATAL_ERROR "expected ${want} output records, got ${got}")
endif()
math(EXPR last "${want} - 1")
foreach(i RANGE ${last})
  list(GET records ${i} record)
  list(GET expected_records ${i} expected)
  math(EXPR line "${i} + 1")
  foreach(key IN ITEMS id status label probabilities)
    string(JSON got_type ERROR_VARIABLE error TYPE "${record}" ${key})
    if(error)
      message(FATAL_ERROR "record ${line}: no '${key}' (${error}): ${record}")
    endif()
    string(JSON want_type TYPE "${expected}" ${key})
    set(same OFF)
    if(got_type STREQUAL want_type)
      string(JSON got_value GET "${record}" ${key})
      string(JSON want_value GET "${expected}" ${key})
      if(got_type MATCHES "^(OBJECT|ARRAY|NUMBER)$")
        string(JSON same EQUAL "${got_value}" "${want_value}")
      elseif(got_value STREQUAL want_value)
        set(same ON)
      endif()
    endif()
    if(NOT same)
      message(FATAL_ERROR "record ${line}: '${key}' differs\n  got:      ${record}\n"
                          "  expected: ${expected}")
    endif()
  endforeach()
endforeach()
message(STATUS "all ${want} records as expected")
