// consortia-consensus: the consensus service as its own process.
#include "consortia/consensus/consensus_service.h"
#include "consortia/service_main.h"

int main(int argc, char** argv) {
  using consortia::consensus::ConsensusOptions;
  using consortia::consensus::ConsensusService;
  return consortia::RunServiceProcess<ConsensusService, ConsensusOptions>(
      argc, argv, "consensus",
      "consortia-consensus: agrees on blocks with the other validators and "
      "hands them to storage.");
}
