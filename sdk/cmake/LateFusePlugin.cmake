# latefuse_add_plugin(<name> SOURCES <src>... [VERSION <semver>]
#                     [LINK_LIBRARIES <lib>...] [OUTPUT_DIRECTORY <dir>]
#                     [CONTRACT_PARAMS <json> [CONTRACT_CLASSES <label>...]
#                      [CONTRACT_TASK classification|regression]]
#                     [NO_INSTALL])
#
# Builds a latefuse plugin as a versioned artefact, the way the host expects it:
#
#   <OUTPUT_DIRECTORY>/<name>/<version>/<name>.so
#   <OUTPUT_DIRECTORY>/<name>/<version>/manifest.json
#
# The library gets hidden visibility, only the entry symbol exported (a version script),
# no undefined symbols, and the static libraries it links kept private
# (--exclude-libs,ALL). It is linked with its install RPATH (set INSTALL_RPATH, e.g.
# $ORIGIN, if it needs one), so the file installed is the file hashed. Files and folders are made not group- or world-writable, since
# the host refuses those. A POST_BUILD step runs the SDK's harness
# (latefuse-plugin-harness describe, target LateFuse::harness) on the built library and
# writes manifest.json (latefuse.manifest/v1) from what its descriptor says, with the
# library's sha256 (LateFuseManifest.cmake); the build fails if the descriptor's name or
# version differs from <name> and VERSION.
#
# VERSION defaults to the project's version (project(... VERSION x.y.z)).
# OUTPUT_DIRECTORY defaults to LATEFUSE_PLUGIN_OUTPUT_DIR when set, else the current
# binary folder. With CONTRACT_PARAMS (the JSON params of a pipeline) the harness also
# creates an instance with those params, CONTRACT_CLASSES and CONTRACT_TASK (default
# classification) and the manifest records the input and classes it describes; without
# them (a generic plugin that reads a model file) those stay null. `cmake --install`
# puts the library and manifest in ${CMAKE_INSTALL_LIBDIR}/latefuse/plugins/<name>/
# <version>/ unless NO_INSTALL is given.
#
#   find_package(LateFuse 1.0 REQUIRED)
#   latefuse_add_plugin(my_model SOURCES my_model.cc
#                       CONTRACT_PARAMS [[{"cut": 2.0}]] CONTRACT_CLASSES low high)
include_guard(GLOBAL)
include(GNUInstallDirs)

function(latefuse_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "NO_INSTALL"
    "VERSION;OUTPUT_DIRECTORY;CONTRACT_PARAMS;CONTRACT_TASK"
    "SOURCES;LINK_LIBRARIES;CONTRACT_CLASSES")
  set(where "latefuse_add_plugin(${name})")
  if(NOT name MATCHES "^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    message(FATAL_ERROR "${where}: a plugin name is letters, digits, '_', '.' and '-'")
  endif()
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "${where}: SOURCES is required")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${where}: unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(ARG_KEYWORDS_MISSING_VALUES)
    message(FATAL_ERROR "${where}: no value given for ${ARG_KEYWORDS_MISSING_VALUES}")
  endif()

  if(DEFINED ARG_VERSION)
    set(version "${ARG_VERSION}")
  elseif(PROJECT_VERSION)
    set(version "${PROJECT_VERSION}")
  else()
    message(FATAL_ERROR "${where}: no version: pass VERSION <x.y.z> or give the project "
                        "one (project(${PROJECT_NAME} VERSION x.y.z))")
  endif()
  # Semantic versioning, as the host reads folder names and pipeline constraints.
  set(number "(0|[1-9][0-9]*)")
  if(NOT version MATCHES "^${number}\\.${number}\\.${number}(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$")
    message(FATAL_ERROR "${where}: version '${version}' is not a semantic version "
                        "MAJOR.MINOR.PATCH (e.g. 1.0.0, 2.1.0-rc.1)")
  endif()

  set(has_contract OFF)
  if(DEFINED ARG_CONTRACT_PARAMS)
    set(has_contract ON)
  elseif(DEFINED ARG_CONTRACT_CLASSES OR DEFINED ARG_CONTRACT_TASK)
    message(FATAL_ERROR "${where}: CONTRACT_CLASSES and CONTRACT_TASK need CONTRACT_PARAMS "
                        "(the params to create the instance with; [[{}]] for none)")
  endif()
  if(NOT DEFINED ARG_CONTRACT_TASK)
    set(ARG_CONTRACT_TASK classification)
  elseif(NOT ARG_CONTRACT_TASK MATCHES "^(classification|regression)$")
    message(FATAL_ERROR "${where}: CONTRACT_TASK is classification or regression, "
                        "not '${ARG_CONTRACT_TASK}'")
  endif()
  foreach(label IN LISTS ARG_CONTRACT_CLASSES)
    if(label STREQUAL "" OR label MATCHES ",")
      message(FATAL_ERROR "${where}: CONTRACT_CLASSES: '${label}' is not a usable class "
                          "label (empty, or holding a comma)")
    endif()
  endforeach()
  list(JOIN ARG_CONTRACT_CLASSES "," classes)

  if(NOT ARG_OUTPUT_DIRECTORY)
    if(LATEFUSE_PLUGIN_OUTPUT_DIR)
      set(ARG_OUTPUT_DIRECTORY "${LATEFUSE_PLUGIN_OUTPUT_DIR}")
    else()
      set(ARG_OUTPUT_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}")
    endif()
  endif()
  set(artefact "${ARG_OUTPUT_DIRECTORY}/${name}/${version}")
  if(NOT TARGET LateFuse::harness)
    message(FATAL_ERROR "${where}: the target LateFuse::harness is missing; call "
                        "find_package(LateFuse) first")
  endif()

  set(map "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/latefuse_plugin.map")
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE LateFuse::sdk ${ARG_LINK_LIBRARIES})
  target_compile_features(${name} PRIVATE cxx_std_17)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${name}
    LIBRARY_OUTPUT_DIRECTORY "${artefact}"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS "${map}"
    BUILD_WITH_INSTALL_RPATH ON)
  target_link_options(${name} PRIVATE
    "LINKER:--version-script=${map}"
    "LINKER:--exclude-libs,ALL")
  # A sanitized plugin calls into the sanitizer runtime, which the host program carries
  # (a shared library never links it): its symbols are undefined until the plugin loads.
  if(NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize=")
    target_link_options(${name} PRIVATE "LINKER:--no-undefined")
  endif()
  # The host refuses plugins that others can write to, whatever the umask; the manifest
  # step repeats this for the folders the build itself creates.
  file(MAKE_DIRECTORY "${artefact}")
  foreach(dir IN ITEMS "${ARG_OUTPUT_DIRECTORY}" "${ARG_OUTPUT_DIRECTORY}/${name}"
                       "${artefact}")
    file(CHMOD "${dir}" DIRECTORY_PERMISSIONS
         OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
         WORLD_READ WORLD_EXECUTE)
  endforeach()

  # In this source tree LateFuse::harness is an alias of a target built here: build it
  # first. Installed, it is an imported program.
  get_target_property(harness LateFuse::harness ALIASED_TARGET)
  if(harness)
    add_dependencies(${name} ${harness})
  endif()
  add_custom_command(TARGET ${name} POST_BUILD
    COMMAND "${CMAKE_COMMAND}"
            "-DLATEFUSE_HARNESS=$<TARGET_FILE:LateFuse::harness>"
            "-DLATEFUSE_LIBRARY=$<TARGET_FILE:${name}>"
            "-DLATEFUSE_NAME=${name}"
            "-DLATEFUSE_VERSION=${version}"
            "-DLATEFUSE_HAS_CONTRACT=${has_contract}"
            "-DLATEFUSE_CONTRACT_PARAMS=${ARG_CONTRACT_PARAMS}"
            "-DLATEFUSE_CONTRACT_CLASSES=${classes}"
            "-DLATEFUSE_CONTRACT_TASK=${ARG_CONTRACT_TASK}"
            -P "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/LateFuseManifest.cmake"
    COMMENT "Writing ${name}/${version}/manifest.json"
    VERBATIM)

  if(NOT ARG_NO_INSTALL)
    # A team's `cmake --install` ships the artefact folder as built: name/version/, the
    # library byte for byte (BUILD_WITH_INSTALL_RPATH above: no RPATH rewrite on install,
    # so the manifest's sha256 holds), its folders and latefuse/plugins/ 0755 whatever
    # the umask.
    set(destination "${CMAKE_INSTALL_LIBDIR}/latefuse/plugins/${name}/${version}")
    install(TARGETS ${name} LIBRARY DESTINATION "${destination}")
    install(FILES "${artefact}/manifest.json" DESTINATION "${destination}")
    if(NOT IS_ABSOLUTE "${destination}")
      set(destination "\${CMAKE_INSTALL_PREFIX}/${destination}")
    endif()
    install(CODE "
      set(folder \"\$ENV{DESTDIR}${destination}\")
      file(CHMOD \"\${folder}\" \"\${folder}/..\" \"\${folder}/../..\" DIRECTORY_PERMISSIONS
           OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
           WORLD_READ WORLD_EXECUTE)")
  endif()
endfunction()
