// Seeded simulations of the Tendermint state machine under a hostile network
// and faulty validators (tests/sim/simulation.h lists the invariants).
//
// Environment:
//   CONSORTIA_SIM_SEED=<s>   run only seed s (every test), and with
//   CONSORTIA_SIM_TRACE=1    print its events to stderr;
//   CONSORTIA_SIM_SEEDS=<k>  run k seeds per test instead of the default.
//   CONSORTIA_SIM_MAX_SEEDS=<k>  at most k seeds per test (not for the tests
//                            that must find a violation).
// A failing seed is printed with the one-line command that replays it.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/simulation.h"

namespace consortia::consensus::tendermint::sim {
namespace {

std::optional<uint64_t> EnvNumber(const char* name) {
  const char* v = std::getenv(name);
  uint64_t x = 0;
  if (v == nullptr || !absl::SimpleAtoi(v, &x)) return std::nullopt;
  return x;
}

std::string CurrentTestName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return absl::StrCat(info->test_suite_name(), ".", info->name());
}

struct Totals {
  uint64_t seeds = 0;
  uint64_t failures = 0;
  uint64_t events = 0;
  uint64_t heights = 0;
  uint64_t max_round = 0;
  uint64_t evidence = 0;
  uint64_t reproposals = 0;
  uint64_t rounds_skipped = 0;
  uint64_t commits_accepted = 0;
  uint64_t restarts = 0;
  uint64_t undecided_answers = 0;
  uint64_t invalid_verdicts = 0;
  uint64_t liar_proposals = 0;
  uint64_t time_liar_proposals = 0;
  uint64_t untimely_judged = 0;
  std::vector<std::string> violations;
  std::vector<uint64_t> failing_seeds;
};

// Runs make(seed) for the seeds of this test. Every failure is reported with
// its seed and replay command, unless expect_violation is set: then failures
// are collected for the caller to check, and the run stops at the first
// violation that mentions expect_violation.
Totals RunSeeds(uint64_t default_seeds,
                const std::function<SimConfig(uint64_t)>& make,
                const char* expect_violation = nullptr) {
  std::vector<uint64_t> seeds;
  const std::optional<uint64_t> only = EnvNumber("CONSORTIA_SIM_SEED");
  if (only.has_value()) {
    seeds.push_back(*only);
  } else {
    uint64_t count = EnvNumber("CONSORTIA_SIM_SEEDS").value_or(default_seeds);
    // A cap for slow builds (the sanitizer stage of scripts/test.sh). A test
    // that must find a violation keeps its count: it stops at the first.
    if (const auto cap = EnvNumber("CONSORTIA_SIM_MAX_SEEDS");
        cap.has_value() && expect_violation == nullptr) {
      count = std::min(count, *cap);
    }
    for (uint64_t s = 1; s <= count; ++s) seeds.push_back(s);
  }
  const bool trace =
      only.has_value() && EnvNumber("CONSORTIA_SIM_TRACE").value_or(0) != 0;
  const std::string test = CurrentTestName();
  Totals t;
  for (uint64_t seed : seeds) {
    SimConfig config = make(seed);
    config.trace = trace;
    const SimResult r = RunSimulation(config);
    ++t.seeds;
    t.events += r.events;
    t.heights += r.min_honest_height;
    t.max_round = std::max(t.max_round, r.max_round);
    t.evidence += r.honest_evidence;
    t.reproposals += r.reproposals;
    t.rounds_skipped += r.rounds_skipped;
    t.commits_accepted += r.commits_accepted;
    t.restarts += r.restarts;
    t.undecided_answers += r.undecided_answers;
    t.invalid_verdicts += r.invalid_verdicts;
    t.liar_proposals += r.liar_proposals;
    t.time_liar_proposals += r.time_liar_proposals;
    t.untimely_judged += r.untimely_judged;
    if (r.ok) continue;
    ++t.failures;
    t.violations.push_back(r.violation);
    t.failing_seeds.push_back(seed);
    if (expect_violation != nullptr) {
      if (r.violation.find(expect_violation) != std::string::npos) {
        std::printf("seed %llu (%s) violates as expected: %s\n",
                    static_cast<unsigned long long>(seed),
                    DescribeConfig(config).c_str(), r.violation.c_str());
        break;
      }
    } else {
      ADD_FAILURE() << "seed " << seed << " (" << DescribeConfig(config)
                    << "): " << r.violation
                    << "\n  replay: CONSORTIA_SIM_SEED=" << seed
                    << " CONSORTIA_SIM_TRACE=1 ./consortia_tendermint_test"
                    << " --gtest_filter=" << test;
      if (t.failures >= 5) break;  // enough to debug; keep the log readable
    }
  }
  std::printf(
      "%s: %llu seeds, %llu failed, %llu events, %.1f heights per seed "
      "(lowest honest), highest round %llu, %llu evidence reports, "
      "%llu validValue re-proposals, %llu round skips, %llu heights "
      "decided from a peer's Commit, %llu restarts, %llu undecided and %llu "
      "invalid verdicts, %llu forged proposals\n",
      test.c_str(), static_cast<unsigned long long>(t.seeds),
      static_cast<unsigned long long>(t.failures),
      static_cast<unsigned long long>(t.events),
      t.seeds ? static_cast<double>(t.heights) / t.seeds : 0.0,
      static_cast<unsigned long long>(t.max_round),
      static_cast<unsigned long long>(t.evidence),
      static_cast<unsigned long long>(t.reproposals),
      static_cast<unsigned long long>(t.rounds_skipped),
      static_cast<unsigned long long>(t.commits_accepted),
      static_cast<unsigned long long>(t.restarts),
      static_cast<unsigned long long>(t.undecided_answers),
      static_cast<unsigned long long>(t.invalid_verdicts),
      static_cast<unsigned long long>(t.liar_proposals));
  return t;
}

// The f faulty validators of a run, drawn from the seed.
std::vector<Fault> Faults(uint64_t seed, int f,
                          const std::vector<Fault>& kinds) {
  std::vector<Fault> out;
  uint64_t x = seed * 2654435761u + 7;
  for (int i = 0; i < f; ++i) {
    out.push_back(kinds[x % kinds.size()]);
    x /= kinds.size();
  }
  return out;
}

const std::vector<Fault> kAnyFault = {Fault::kHonest, Fault::kCrash,
                                      Fault::kEquivocate, Fault::kLiar};

TEST(TendermintSim, HonestValidatorsRestartFromTheirLog) {
  // Crash-restarts of honest validators (amnesia but for the WAL and the
  // decided blocks) next to one faulty validator of any kind: a restarted
  // validator must keep its locks and never contradict what it signed.
  const Totals t = RunSeeds(500, [](uint64_t seed) {
    SimConfig c = ChaosConfig(seed, 4, Faults(seed, 1, kAnyFault));
    c.restarts = 1 + static_cast<int>(seed % 4);
    return c;
  });
  EXPECT_EQ(t.failures, 0u);
  EXPECT_GT(t.restarts, 0u);
}

TEST(TendermintSim, RestartWithoutTheLogIsCaught) {
  // Negative control: the same restarts without replaying the log make an
  // honest validator sign conflicting votes; the invariants must notice.
  const Totals t = RunSeeds(
      500,
      [](uint64_t seed) {
        SimConfig c = ChaosConfig(seed, 4, {});
        c.restarts = 4;
        c.restart_without_wal = true;
        return c;
      },
      "evidence: ");
  EXPECT_GT(t.failures, 0u);
}

TEST(TendermintSim, FourValidatorsOneFaulty) {
  const Totals t = RunSeeds(1500, [](uint64_t seed) {
    return ChaosConfig(seed, 4, Faults(seed, 1, kAnyFault));
  });
  EXPECT_EQ(t.failures, 0u);
  // The runs reach the corners of the algorithm, not only the happy path.
  EXPECT_GT(t.evidence, 0u) << "equivocation never detected";
  EXPECT_GT(t.reproposals, 0u) << "line 16 never ran";
  EXPECT_GT(t.rounds_skipped, 0u) << "line 55 never ran";
  EXPECT_GT(t.commits_accepted, 0u) << "no node ever caught up";
}

// A member that lies: its proposals carry a tx "signed" by another member
// (its own mempool let it in), and it prevotes for anything. The honest
// validators' own checks answer late, or not at all (their mempool and
// storage slow, stopped or restarting): no forged tx may ever be decided,
// and the chain goes on after GST.
TEST(TendermintSim, LyingProposers) {
  const Totals t = RunSeeds(500, [](uint64_t seed) {
    const int n = seed % 3 == 2 ? 7 : 4;
    SimConfig c =
        ChaosConfig(seed, n, std::vector<Fault>((n - 1) / 3, Fault::kLiar));
    c.undecided = std::max(c.undecided, 0.2);
    return c;
  });
  EXPECT_EQ(t.failures, 0u);
  EXPECT_GT(t.liar_proposals, t.seeds) << "the liars hardly proposed";
  EXPECT_GT(t.invalid_verdicts, 0u) << "no forged block was ever judged";
  EXPECT_GT(t.undecided_answers, 0u) << "validity never went unanswered";
}

// Proposer-based block time under chaos: every node's clock is off by up to
// 200 ms (pairs within the genesis precision of 500 ms), blocks carry their
// builder's clock and proposals are judged against the receiver's. Time
// liars (f of n) propose blocks a minute behind or 30 s ahead of their
// clock: none may be decided, no decided block may be more than the
// precision ahead of every honest clock, and the chain stays live after GST.
TEST(TendermintSim, ProposerBasedTimeWithTimeLiars) {
  const Totals t = RunSeeds(500, [](uint64_t seed) {
    const int n = seed % 3 == 2 ? 7 : 4;
    SimConfig c =
        ChaosConfig(seed, n, std::vector<Fault>((n - 1) / 3, Fault::kTimeLiar));
    c.block_time = true;
    c.clock_skew_ms = 200;
    return c;
  });
  EXPECT_EQ(t.failures, 0u);
  EXPECT_GT(t.time_liar_proposals, t.seeds) << "the liars hardly proposed";
  EXPECT_GT(t.untimely_judged, t.seeds) << "nothing was judged untimely";
}

// The same rule with the other faults (crash, equivocation, twins) and
// honest restarts: timeliness must not cost liveness.
TEST(TendermintSim, ProposerBasedTimeWithAnyFault) {
  const Totals t = RunSeeds(500, [](uint64_t seed) {
    SimConfig c = ChaosConfig(seed, 4, Faults(seed, 1, kAnyFault));
    c.block_time = true;
    c.clock_skew_ms = 200;
    c.restarts = static_cast<int>(seed % 3);
    return c;
  });
  EXPECT_EQ(t.failures, 0u);
  EXPECT_GT(t.reproposals, 0u) << "line 16 never ran";
}

// Negative control: counting "no answer" as "valid" (what the driver did
// before valid(v) became fail-closed) lets a liar's forged tx be decided,
// and the validity invariant must catch it.
TEST(TendermintSim, FailingOpenIsCaught) {
  const Totals t = RunSeeds(
      300,
      [](uint64_t seed) {
        SimConfig c = ChaosConfig(seed, 4, {Fault::kLiar});
        c.undecided = 0.6;
        c.unsafe_fail_open = true;
        return c;
      },
      /*expect_violation=*/"validity");
  if (EnvNumber("CONSORTIA_SIM_SEED").has_value()) return;
  ASSERT_GT(t.failures, 0u) << "failing open never decided a forged tx";
  EXPECT_NE(t.violations.back().find("validity"), std::string::npos)
      << t.violations.back();
}

TEST(TendermintSim, SevenValidatorsTwoFaulty) {
  const Totals t = RunSeeds(500, [](uint64_t seed) {
    return ChaosConfig(seed, 7, Faults(seed, 2, kAnyFault));
  });
  EXPECT_EQ(t.failures, 0u);
}

TEST(TendermintSim, EquivocatingValidators) {
  const Totals t = RunSeeds(500, [](uint64_t seed) {
    const int n = seed % 2 == 0 ? 4 : 7;
    return ChaosConfig(seed, n,
                       std::vector<Fault>((n - 1) / 3, Fault::kEquivocate));
  });
  EXPECT_EQ(t.failures, 0u);
  // Honest validators saw (and verified) the double votes and proposals.
  EXPECT_GT(t.evidence, t.seeds);
}

TEST(TendermintSim, Twins) {
  const Totals t = RunSeeds(500, [](uint64_t seed) {
    // One validator of four run twice with its key; every fourth seed, two
    // of seven.
    const int n = seed % 4 == 3 ? 7 : 4;
    return ChaosConfig(seed, n, std::vector<Fault>((n - 1) / 3, Fault::kTwins));
  });
  EXPECT_EQ(t.failures, 0u);
  EXPECT_GT(t.evidence, 0u) << "twins never caught equivocating";
}

TEST(TendermintSim, RealEd25519Signatures) {
  const Totals t = RunSeeds(40, [](uint64_t seed) {
    SimConfig c = ChaosConfig(seed, 4, Faults(seed, 1, kAnyFault));
    c.real_crypto = true;
    return c;
  });
  EXPECT_EQ(t.failures, 0u);
}

TEST(TendermintSim, QuietNetworkDecidesEveryHeightInRoundZero) {
  const Totals t = RunSeeds(50, [](uint64_t seed) {
    SimConfig c;
    c.seed = seed;
    c.validators = 4;
    c.drop = 0;
    c.duplicate = 0;
    c.max_delay_ms = 50;
    c.partitions = 0;
    c.gst_ms = 3000;
    return c;
  });
  EXPECT_EQ(t.failures, 0u);
  EXPECT_EQ(t.max_round, 0u);
  // 3 s of 50 ms hops: well over ten heights per run.
  EXPECT_GT(t.heights, 10 * t.seeds);
}

TEST(TendermintSim, SameSeedReplaysTheSameRun) {
  SimConfig c = ChaosConfig(77, 4, {Fault::kEquivocate});
  const SimResult a = RunSimulation(c);
  const SimResult b = RunSimulation(c);
  EXPECT_EQ(a.ok, b.ok);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.delivered, b.delivered);
  EXPECT_EQ(a.end_time_ms, b.end_time_ms);
  EXPECT_EQ(a.min_honest_height, b.min_honest_height);
  EXPECT_EQ(a.honest_evidence, b.honest_evidence);
}

// The checks above are only worth something if they can fail: with a quorum
// of f+1 instead of 2f+1, an equivocating validator splits the honest ones,
// and the simulation must catch the disagreement (the certificate check is
// off here, or it would catch every such decision first; see the next test).
TEST(TendermintSim, BrokenQuorumIsCaught) {
  const Totals t = RunSeeds(
      300,
      [](uint64_t seed) {
        SimConfig c = ChaosConfig(seed, 4, {Fault::kEquivocate});
        c.unsafe.weak_quorum = true;
        c.check_certificates = false;
        return c;
      },
      /*expect_violation=*/"agreement");
  if (EnvNumber("CONSORTIA_SIM_SEED").has_value()) return;
  ASSERT_GT(t.failures, 0u) << "no seed found a violation with a weak quorum";
  EXPECT_NE(t.violations.back().find("agreement"), std::string::npos)
      << "no agreement violation in " << t.seeds
      << " seeds; last: " << t.violations.back();
}

// Locking is what keeps a block decided in one round from losing to another
// in a later round. Without it the simulation must find a disagreement.
TEST(TendermintSim, IgnoringLocksIsCaught) {
  const Totals t = RunSeeds(
      1500,
      [](uint64_t seed) {
        SimConfig c = ChaosConfig(seed, 4, {Fault::kEquivocate});
        c.unsafe.ignore_locks = true;
        return c;
      },
      /*expect_violation=*/"agreement");
  if (EnvNumber("CONSORTIA_SIM_SEED").has_value()) return;
  ASSERT_GT(t.failures, 0u) << "no seed found a violation without locks";
  EXPECT_NE(t.violations.back().find("agreement"), std::string::npos)
      << t.violations.back();
}

// With the certificate check on, the same broken quorum is caught by it: a
// decision backed by f+1 precommits does not verify.
TEST(TendermintSim, BrokenQuorumCertificatesAreCaught) {
  const Totals t = RunSeeds(
      50,
      [](uint64_t seed) {
        SimConfig c = ChaosConfig(seed, 4, {});
        c.unsafe.weak_quorum = true;
        return c;
      },
      /*expect_violation=*/"certificate");
  if (EnvNumber("CONSORTIA_SIM_SEED").has_value()) return;
  ASSERT_GT(t.failures, 0u);
  EXPECT_NE(t.violations.back().find("certificate"), std::string::npos)
      << t.violations.back();
}

}  // namespace
}  // namespace consortia::consensus::tendermint::sim
