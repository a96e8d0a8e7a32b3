# Every dependency comes from a Debian 12 package (scripts/install-deps.sh).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(absl REQUIRED)
find_package(cppzmq REQUIRED)
find_package(spdlog REQUIRED)
find_package(prometheus-cpp REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(RocksDB REQUIRED)
find_package(GTest REQUIRED)
find_package(benchmark REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(Boost 1.81 REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)

# The allocator the executables link: tcmalloc (libtcmalloc-minimal4). A
# commit allocates and frees tens of thousands of small strings and nodes
# on several threads, where glibc's malloc spends a third of the ledger's
# CPU (docs/BENCHMARKS.md). Not with the sanitizers, which bring their own.
option(CONSORTIA_TCMALLOC "Link the executables with tcmalloc" ON)
if(CONSORTIA_TCMALLOC AND NOT CONSORTIA_SANITIZE)
  pkg_check_modules(TCMALLOC REQUIRED IMPORTED_TARGET libtcmalloc_minimal)
endif()
# Links `target` (an executable) with the allocator chosen above.
function(consortia_link_allocator target)
  if(TARGET PkgConfig::TCMALLOC)
    target_link_libraries(${target} PRIVATE PkgConfig::TCMALLOC)
  endif()
endfunction()
