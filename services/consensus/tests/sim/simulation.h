// A deterministic, seeded simulation of n Tendermint validators (each a
// StateMachine) over a network that drops, delays, duplicates and reorders
// messages and splits into partitions that heal at a global stabilisation
// time (GST). Up to f validators are faulty: crashed, equivocating (two
// proposals per round to two halves of the network, double prevotes and
// precommits), or run twice with one key ("twins"). Honest validators may
// also crash and restart before GST, with amnesia: a new state machine that
// knows only its decided blocks and what it signed at the unfinished height,
// replayed as the consensus service replays its write-ahead log (they stay
// honest: the invariants hold them to it). Virtual time only: no
// thread, no clock, no sleep; one seed always replays the same run.
//
// Invariants, checked whenever an event produces a decision or evidence:
//   agreement  no two honest validators decide different blocks at a height;
//   certificate every honest decision's certificate passes VerifyCertificate
//              for the decided header;
//   validity   every honestly decided block was proposed by someone, links to
//              the agreed previous block, and has only well-formed txs (no
//              liar's forged tx);
//   evidence   honest validators only ever accuse faulty validators, and the
//              evidence verifies;
//   liveness   within `liveness_budget_ms` of GST every honest validator
//              decides `heights_after_gst` more heights than the highest
//              honest height at GST.
#ifndef CONSORTIA_CONSENSUS_TESTS_SIM_SIMULATION_H_
#define CONSORTIA_CONSENSUS_TESTS_SIM_SIMULATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tendermint/state_machine.h"

namespace consortia::consensus::tendermint::sim {

enum class Fault {
  kHonest,
  kCrash,       // stops for good at a random time before GST
  kEquivocate,  // conflicting proposals and double votes
  kTwins,       // two instances, one key, each seeing part of the network
  kLiar,        // proposes blocks that carry a forged tx, and prevotes for any
                // block without checking it
  kTimeLiar,    // proposes blocks whose time is a minute behind or 30 s ahead
                // of its clock (with SimConfig::block_time)
};
const char* FaultName(Fault f);

struct SimConfig {
  uint64_t seed = 1;
  int validators = 4;
  // One entry per validator (missing entries are honest).
  std::vector<Fault> faults;

  // The network before GST. Every message is delayed uniformly in
  // [1, max_delay_ms] ms (so messages overtake each other), dropped with
  // probability `drop`, and sent twice with probability `duplicate`.
  double drop = 0.1;
  double duplicate = 0.05;
  int64_t max_delay_ms = 500;
  // Windows before GST in which the endpoints are split in two groups that
  // cannot talk to each other (all healed at GST).
  int partitions = 2;
  int64_t gst_ms = 8000;
  // Crash-restarts of honest validators before GST (each down 50-3000 ms).
  int restarts = 0;
  // UNSAFE: a restarted validator replays nothing of what it signed (no
  // write-ahead log), to show that the checks catch the double signing.
  bool restart_without_wal = false;
  // After GST: no drops, no partitions, delays in [1, delta_ms].
  int64_t delta_ms = 100;

  // The node's own services answer the machine's requests for a block to
  // propose and for valid(v) after a delay in [0, answer_delay_ms] (after
  // GST: [0, delta_ms]). Before GST a validity answer is kUndecided with
  // probability `undecided` (the mempool and storage unreachable, slow or
  // restarting).
  int64_t answer_delay_ms = 0;
  double undecided = 0;
  // UNSAFE: an undecided validity answer counts as valid (the fail-open
  // rule the consensus driver once had), to show that the checks catch a
  // liar's forged tx then.
  bool unsafe_fail_open = false;

  // Each endpoint relays GossipMessages() and its height to one random peer
  // every gossip_ms (a peer that is behind answers with decided blocks).
  int64_t gossip_ms = 600;
  uint64_t heights_after_gst = 3;
  int64_t liveness_budget_ms = 120000;

  // ed25519 instead of the cheap insecure simulation suite.
  bool real_crypto = false;
  TimeoutConfig timeouts = SimTimeouts();
  // Applied to every honest validator (to show that the checks catch a
  // broken protocol).
  UnsafeTestOnlyOptions unsafe;
  // The certificate invariant; off only to show that, with a broken quorum,
  // the agreement invariant catches the protocol on its own.
  bool check_certificates = true;
  // Print every event to stderr.
  bool trace = false;
  // Proposer-based block time: each node's clock is the virtual time plus
  // a skew drawn in [-clock_skew_ms, clock_skew_ms]; a block carries its
  // builder's clock, and a delivered message goes to the machine with the
  // receiver's clock as its receipt time. Invariant: no honest node decides
  // a time liar's block, nor a block more than the genesis precision ahead
  // of every honest clock. Off: no receipt times (timeliness not judged).
  bool block_time = false;
  int64_t clock_skew_ms = 0;

  static TimeoutConfig SimTimeouts();
};

struct SimResult {
  bool ok = true;
  // The first violated invariant, with the virtual time; empty when ok.
  std::string violation;
  int64_t end_time_ms = 0;
  uint64_t events = 0;
  uint64_t delivered = 0;
  uint64_t dropped = 0;
  uint64_t min_honest_height = 0;  // lowest height decided by all honest
  uint64_t max_round = 0;          // highest round any honest node reached
  uint64_t honest_evidence = 0;    // evidence reports by honest validators
  // How much of the algorithm the run exercised (honest validators only).
  uint64_t reproposals = 0;        // proposals of a validValue (line 16)
  uint64_t rounds_skipped = 0;     // line 55
  uint64_t commits_accepted = 0;   // heights decided from a peer's Commit
  uint64_t restarts = 0;           // honest validators restarted
  uint64_t undecided_answers = 0;  // kUndecided verdicts given to honest nodes
  uint64_t invalid_verdicts = 0;   // kInvalid verdicts given to honest nodes
  uint64_t liar_proposals = 0;     // blocks with a forged tx proposed
  uint64_t time_liar_proposals = 0;  // blocks with a lying time proposed
  uint64_t untimely_judged = 0;  // fresh proposals honest nodes found untimely
};

SimResult RunSimulation(const SimConfig& config);

// A one-line description of a configuration, for failure messages.
std::string DescribeConfig(const SimConfig& config);

// A chaotic network configuration drawn from the seed: drop in [0, 0.3],
// duplicate in [0, 0.2], max delay 20..1500 ms, 0..3 partitions, GST at
// 1..12 s, answers of the node's services delayed 0..400 ms and undecided
// with probability 0..0.3 before GST. `faults` is placed on random
// validators.
SimConfig ChaosConfig(uint64_t seed, int validators, std::vector<Fault> faults);

}  // namespace consortia::consensus::tendermint::sim

#endif  // CONSORTIA_CONSENSUS_TESTS_SIM_SIMULATION_H_
