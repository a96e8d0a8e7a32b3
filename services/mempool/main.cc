// consortia-mempool: the mempool service as its own process.
#include "consortia/mempool/mempool_service.h"
#include "consortia/service_main.h"

int main(int argc, char** argv) {
  using consortia::mempool::MempoolOptions;
  using consortia::mempool::MempoolService;
  return consortia::RunServiceProcess<MempoolService, MempoolOptions>(
      argc, argv, "mempool",
      "consortia-mempool: admits transactions and hands them to consensus.");
}
