# consortia_check_no_zmq(TARGET...): fails the configure step when a target
# links ZeroMQ (libzmq or cppzmq), directly or through any library it links,
# for the libraries that promise to stay usable without it (the proof
# bundles: `consortia verify` and client libraries link them alone).
# The ctest `proof_bundle_links_no_zmq` checks the built archives as well.

# Appends to `out_var` every library name in the link closure of `target`.
function(_consortia_link_closure target out_var)
  set(seen ${${out_var}})
  set(todo ${target})
  while(todo)
    list(POP_FRONT todo item)
    # $<LINK_ONLY:x> wraps the private dependencies of static libraries.
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" item "${item}")
    if(item STREQUAL "" OR item MATCHES "^\\$<" OR item IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${item})
    if(TARGET ${item})
      foreach(prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
        get_target_property(deps ${item} ${prop})
        if(deps)
          list(APPEND todo ${deps})
        endif()
      endforeach()
    endif()
  endwhile()
  set(${out_var} ${seen} PARENT_SCOPE)
endfunction()

function(consortia_check_no_zmq)
  foreach(target ${ARGN})
    set(closure)
    _consortia_link_closure(${target} closure)
    foreach(lib ${closure})
      string(TOLOWER "${lib}" lower)
      if(lower MATCHES "zmq")
        message(FATAL_ERROR
          "${target} must not link ZeroMQ, but it reaches ${lib} "
          "(its link closure: ${closure})")
      endif()
    endforeach()
  endforeach()
endfunction()
