# Checks the manifest.json that latefuse_add_plugin() wrote in an artefact folder
# <dir>/<name>/<version>/: the format, the name, version and kind expected, the library's
# file name and its sha256, and the contract recorded (INPUT and CLASSES as JSON text,
# `null` for none). For the tests that build a plugin outside this tree
# (sdk_consumer_manifest, readme_guide).
#
#   cmake -DDIR=<output dir> -DNAME=<name> -DVERSION=<version> -DKIND=model
#         -DINPUT=<json> -DCLASSES=<json> -P CheckManifest.cmake
cmake_minimum_required(VERSION 3.19)

set(folder "${DIR}/${NAME}/${VERSION}")
set(library "${folder}/${NAME}.so")
if(NOT EXISTS "${library}" OR NOT EXISTS "${folder}/manifest.json")
  message(FATAL_ERROR "expected ${library} and manifest.json beside it")
endif()
file(READ "${folder}/manifest.json" manifest)
message(STATUS "${folder}/manifest.json:\n${manifest}")
file(SHA256 "${library}" sha256)

function(expect key expected)
  string(JSON type ERROR_VARIABLE error TYPE "${manifest}" ${key})
  if(error)
    message(FATAL_ERROR "manifest.json: no '${key}'")
  endif()
  string(JSON value GET "${manifest}" ${key})
  if(type MATCHES "^(OBJECT|ARRAY)$")
    string(JSON same EQUAL "${value}" "${expected}")
  elseif(type STREQUAL "NULL")
    string(COMPARE EQUAL "null" "${expected}" same)
  else()
    string(COMPARE EQUAL "${value}" "${expected}" same)
  endif()
  if(NOT same)
    message(FATAL_ERROR "manifest.json: '${key}' is ${value}, expected ${expected}")
  endif()
endfunction()

expect(format "latefuse.manifest/v1")
expect(name "${NAME}")
expect(version "${VERSION}")
expect(kind "${KIND}")
expect(library "${NAME}.so")
expect(sha256 "${sha256}")
expect(input "${INPUT}")
expect(classes "${CLASSES}")
string(JSON abi_major GET "${manifest}" abi major)
if(NOT abi_major EQUAL 1)
  message(FATAL_ERROR "manifest.json: abi.major is ${abi_major}, expected 1")
endif()
message(STATUS "manifest as expected")
