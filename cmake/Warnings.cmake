# Project-wide compile options: strict warnings, and optional sanitizers.
add_compile_options(-Wall -Wextra -Werror)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 at -O3 reports out-of-bounds reads inside libstdc++'s own vector
  # and string code (false positives, GCC bugs 105329 and 105651); they stay
  # warnings, but do not fail the build. Clang builds keep them as errors.
  add_compile_options(-Wno-error=stringop-overread -Wno-error=stringop-overflow
                      -Wno-error=array-bounds -Wno-error=restrict)
endif()

if(CONSORTIA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(CONSORTIA_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CONSORTIA_FUZZ needs clang (CXX=clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# consortia_add_test(NAME SOURCES... LIBS... [LABELS...] [RESOURCE_LOCK r]):
# one GoogleTest binary, its tests registered with ctest one by one so that
# they run in parallel. Label "e2e" marks tests that start real processes.
# Tests that share a RESOURCE_LOCK never run at the same time (used for the
# multi-node networks, 16+ processes each, on a 2-core CI machine).
#
# With CONSORTIA_UNIT_TESTS=OFF a test labelled only "unit" is still defined
# but left out of the default build and of ctest: scripts/test.sh builds the
# release flavour so, because the sanitizer stage builds and runs every unit
# test anyway. Tests labelled "e2e", "static" or "unit-sim" (the seeded
# consensus simulations, which run all their seeds only in the release build;
# `ctest -L unit` matches that label too) stay. One label per call: ctest
# would take a second one for a property name.
function(consortia_add_test name)
  cmake_parse_arguments(T "" "RESOURCE_LOCK" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  set(lock)
  if(T_RESOURCE_LOCK)
    set(lock RESOURCE_LOCK ${T_RESOURCE_LOCK})
  endif()
  set(unit_only TRUE)
  foreach(label e2e static unit-sim)
    if(label IN_LIST T_LABELS)
      set(unit_only FALSE)
    endif()
  endforeach()
  if(unit_only AND NOT CONSORTIA_UNIT_TESTS)
    add_executable(${name} EXCLUDE_FROM_ALL ${T_SOURCES})
    target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
    return()
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
                       PROPERTIES TIMEOUT 300 LABELS "${T_LABELS}" ${lock})
endfunction()

# consortia_add_fuzzer(NAME SOURCE LIBS...): a libFuzzer target, built only
# with CONSORTIA_FUZZ.
function(consortia_add_fuzzer name source)
  if(CONSORTIA_FUZZ)
    add_executable(${name} ${source})
    target_link_libraries(${name} PRIVATE ${ARGN})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  endif()
endfunction()
