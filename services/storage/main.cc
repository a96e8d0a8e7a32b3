// consortia-storage: the storage service as its own process.
#include "consortia/service_main.h"
#include "consortia/storage/storage_service.h"

int main(int argc, char** argv) {
  using consortia::storage::StorageOptions;
  using consortia::storage::StorageService;
  return consortia::RunServiceProcess<StorageService, StorageOptions>(
      argc, argv, "storage",
      "consortia-storage: executes and persists committed blocks, serves "
      "queries and proofs.\nUsage: consortia-storage --genesis=FILE "
      "--data_dir=DIR [flags]");
}
