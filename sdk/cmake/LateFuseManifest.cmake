# Writes manifest.json beside a freshly built latefuse plugin. latefuse_add_plugin()'s
# POST_BUILD step runs it:
#
#   cmake -DLATEFUSE_HARNESS=<latefuse-plugin-harness> -DLATEFUSE_LIBRARY=<dir>/<name>.so
#         -DLATEFUSE_NAME=<name> -DLATEFUSE_VERSION=<version> -DLATEFUSE_HAS_CONTRACT=OFF
#         [-DLATEFUSE_HAS_CONTRACT=ON -DLATEFUSE_CONTRACT_PARAMS=<json>
#          -DLATEFUSE_CONTRACT_CLASSES=<a,b> -DLATEFUSE_CONTRACT_TASK=<task>]
#         -P LateFuseManifest.cmake
#
# The manifest is written from what the library's own descriptor says (through
# `latefuse-plugin-harness describe`), so it cannot disagree with the code:
#
#   {"format": "latefuse.manifest/v1", "name": "linear", "version": "1.1.0",
#    "kind": "model", "abi": {"major": 1, "minor": 2}, "library": "linear.so",
#    "sha256": "<64 lowercase hex>", "description": "...", "license": "...",
#    "build": "...", "input": {"kind": "dense", "size": 12} | null,
#    "classes": ["stable", "deteriorating"] | null}
#
# `input` and `classes` come from the contract of an instance created with the contract
# params (models: input {kind, size (dense only)} and classes; combiners: null, they
# declare neither); without contract params both are null. The library, its folder and
# its name's folder are made 0755 and the manifest 0644, since the host refuses what
# group or others can write. On any failure the library is removed, so that the next
# build relinks it and checks again rather than leave an artefact without a manifest.
cmake_minimum_required(VERSION 3.19)

foreach(variable IN ITEMS LATEFUSE_HARNESS LATEFUSE_LIBRARY LATEFUSE_NAME LATEFUSE_VERSION)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "LateFuseManifest.cmake: ${variable} is not set")
  endif()
endforeach()

# Its arguments are the message's pieces.
function(latefuse_manifest_fail)
  string(JOIN "" text ${ARGV})
  file(REMOVE "${LATEFUSE_LIBRARY}")
  message(FATAL_ERROR "latefuse_add_plugin(${LATEFUSE_NAME}): ${text}")
endfunction()

get_filename_component(version_dir "${LATEFUSE_LIBRARY}" DIRECTORY)
get_filename_component(name_dir "${version_dir}" DIRECTORY)
get_filename_component(library_file "${LATEFUSE_LIBRARY}" NAME)
set(manifest_file "${version_dir}/manifest.json")
set(read_write_execute OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                       WORLD_READ WORLD_EXECUTE)
file(CHMOD "${name_dir}" "${version_dir}" DIRECTORY_PERMISSIONS ${read_write_execute})
file(CHMOD "${LATEFUSE_LIBRARY}" FILE_PERMISSIONS ${read_write_execute})

set(command "${LATEFUSE_HARNESS}" describe "${LATEFUSE_LIBRARY}")
if(LATEFUSE_HAS_CONTRACT)
  list(APPEND command --params "${LATEFUSE_CONTRACT_PARAMS}"
                      --task "${LATEFUSE_CONTRACT_TASK}")
  if(NOT LATEFUSE_CONTRACT_CLASSES STREQUAL "")
    list(APPEND command --classes "${LATEFUSE_CONTRACT_CLASSES}")
  endif()
endif()
execute_process(COMMAND ${command}
                RESULT_VARIABLE status OUTPUT_VARIABLE described ERROR_VARIABLE errors)
if(NOT status EQUAL 0)
  string(STRIP "${errors}" errors)
  latefuse_manifest_fail("cannot read the plugin's descriptor for its manifest: ${errors}")
endif()

string(JSON name ERROR_VARIABLE json_error GET "${described}" name)
if(json_error)
  latefuse_manifest_fail("the harness printed no descriptor (${json_error}):\n${described}")
endif()
string(JSON version GET "${described}" version)
string(JSON kind GET "${described}" kind)
if(NOT name STREQUAL LATEFUSE_NAME)
  latefuse_manifest_fail(
    "the library's descriptor names the plugin '${name}', but latefuse_add_plugin() "
    "builds '${LATEFUSE_NAME}': give both the same name (the name in "
    "LATEFUSE_MODEL_PLUGIN / LATEFUSE_COMBINER_PLUGIN)")
endif()
if(NOT version STREQUAL LATEFUSE_VERSION)
  latefuse_manifest_fail(
    "the library's descriptor says version ${version}, but latefuse_add_plugin() builds "
    "version ${LATEFUSE_VERSION} (its VERSION, else the project's): make them agree")
endif()

set(input null)
set(classes null)
string(JSON contract_type TYPE "${described}" contract)
if(contract_type STREQUAL "OBJECT" AND kind STREQUAL "model")
  string(JSON input GET "${described}" contract input)
  string(JSON classes GET "${described}" contract classes)
endif()

file(SHA256 "${LATEFUSE_LIBRARY}" sha256)
# The descriptor's strings stay JSON as the harness wrote them: only keys are added.
string(JSON manifest REMOVE "${described}" contract)
string(JSON manifest SET "${manifest}" format [["latefuse.manifest/v1"]])
string(JSON manifest SET "${manifest}" library "\"${library_file}\"")
string(JSON manifest SET "${manifest}" sha256 "\"${sha256}\"")
string(JSON manifest SET "${manifest}" input "${input}")
string(JSON manifest SET "${manifest}" classes "${classes}")
file(WRITE "${manifest_file}" "${manifest}\n")
file(CHMOD "${manifest_file}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
