#include "consortia/consensus/consensus_service.h"
#include "gtest/gtest.h"

namespace consortia::consensus {
namespace {

TEST(ConsensusOptionsTest, DefaultsAndFlagsAreValid) {
  EXPECT_TRUE(ConsensusOptions{}.Validate().ok());
  ConsensusOptions f = ConsensusOptions::FromFlags();
  EXPECT_TRUE(f.Validate().ok()) << f.Validate();
  EXPECT_EQ(f.block_poll_interval, absl::Milliseconds(20));
  EXPECT_EQ(f.empty_block_interval, absl::Seconds(1));
  EXPECT_EQ(f.max_block_txs, 5000u);
  EXPECT_EQ(f.max_block_bytes, uint64_t{8} << 20);
}

TEST(ConsensusOptionsTest, OutOfBoundsNamesTheFlag) {
  struct Case {
    void (*mutate)(ConsensusOptions&);
    const char* flag;
  };
  const Case cases[] = {
      {[](ConsensusOptions& o) {
         o.block_poll_interval = absl::ZeroDuration();
       },
       "consensus_block_poll_interval_ms"},
      {[](ConsensusOptions& o) { o.block_poll_interval = absl::Minutes(1); },
       "consensus_block_poll_interval_ms"},
      {[](ConsensusOptions& o) {
         o.empty_block_interval = absl::Milliseconds(5);
       },
       "consensus_empty_block_interval_ms"},
      {[](ConsensusOptions& o) { o.max_block_txs = 0; },
       "consensus_max_block_txs"},
      {[](ConsensusOptions& o) { o.max_block_bytes = 1000; },
       "consensus_max_block_bytes"},
      {[](ConsensusOptions& o) { o.max_block_bytes = uint64_t{1} << 40; },
       "consensus_max_block_bytes"},
      {[](ConsensusOptions& o) { o.timeout_propose = absl::ZeroDuration(); },
       "consensus_timeout_propose_ms"},
      {[](ConsensusOptions& o) { o.timeout_prevote = absl::Hours(1); },
       "consensus_timeout_prevote_ms"},
      {[](ConsensusOptions& o) { o.gossip_interval = absl::ZeroDuration(); },
       "consensus_gossip_interval_ms"},
  };
  for (const Case& c : cases) {
    ConsensusOptions o;
    c.mutate(o);
    absl::Status s = o.Validate();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.flag;
    EXPECT_NE(s.message().find(c.flag), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace consortia::consensus
