# latefuse_add_plugin(<name> SOURCES <src>... [LINK_LIBRARIES <lib>...]
#                     [OUTPUT_DIRECTORY <dir>])
#
# Builds a latefuse plugin as a shared library named <name>.so, the way the host expects:
# hidden visibility, only the entry symbol exported (a version script), no undefined
# symbols, and the static libraries it links kept private (--exclude-libs,ALL). The file
# is made not group- or world-writable, since the host refuses such files.
#
#   find_package(LateFuse 1.0 REQUIRED)
#   latefuse_add_plugin(my_model SOURCES my_model.cc)

function(latefuse_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "OUTPUT_DIRECTORY" "SOURCES;LINK_LIBRARIES")
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "latefuse_add_plugin(${name}): SOURCES is required")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "latefuse_add_plugin(${name}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_OUTPUT_DIRECTORY)
    if(LATEFUSE_PLUGIN_OUTPUT_DIR)
      set(ARG_OUTPUT_DIRECTORY "${LATEFUSE_PLUGIN_OUTPUT_DIR}")
    else()
      set(ARG_OUTPUT_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}")
    endif()
  endif()

  set(map "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/latefuse_plugin.map")
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE LateFuse::sdk ${ARG_LINK_LIBRARIES})
  target_compile_features(${name} PRIVATE cxx_std_17)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${name}
    LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS "${map}")
  target_link_options(${name} PRIVATE
    "LINKER:--version-script=${map}"
    "LINKER:--no-undefined"
    "LINKER:--exclude-libs,ALL")
  # The host refuses plugins that others can write to, whatever the umask.
  file(MAKE_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  file(CHMOD "${ARG_OUTPUT_DIRECTORY}" DIRECTORY_PERMISSIONS
       OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
       WORLD_READ WORLD_EXECUTE)
  add_custom_command(TARGET ${name} POST_BUILD
    COMMAND chmod go-w "$<TARGET_FILE:${name}>"
    VERBATIM)
endfunction()
