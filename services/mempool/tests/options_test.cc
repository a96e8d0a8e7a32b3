#include "consortia/mempool/mempool_service.h"
#include "gtest/gtest.h"

namespace consortia::mempool {
namespace {

TEST(MempoolOptionsTest, DefaultsAndFlagsAreValid) {
  EXPECT_TRUE(MempoolOptions{}.Validate().ok());
  MempoolOptions f = MempoolOptions::FromFlags();
  EXPECT_TRUE(f.Validate().ok()) << f.Validate();
  EXPECT_EQ(f.max_tx_bytes, 64u * 1024);
  EXPECT_EQ(f.max_txs, 100000u);
  EXPECT_EQ(f.max_bytes, uint64_t{256} << 20);
  EXPECT_EQ(f.max_per_sender, 10000u);
  EXPECT_EQ(f.replay_window, 1000u);
  EXPECT_EQ(f.verify_threads, 0u);
  EXPECT_EQ(f.sig_cache_size, 100000u);
  // Gossip is off unless an endpoint is given.
  EXPECT_EQ(f.p2p_endpoint, "");
  EXPECT_EQ(f.gossip_interval, absl::Milliseconds(20));
  EXPECT_EQ(f.gossip_batch_txs, 256u);
  EXPECT_EQ(f.gossip_batch_bytes, 256u * 1024);
  EXPECT_EQ(f.gossip_queue_txs, 10000u);
  EXPECT_EQ(f.gossip_peer_queue_batches, 64u);
  EXPECT_EQ(f.gossip_peer_queue_bytes, uint64_t{8} << 20);
  EXPECT_EQ(f.gossip_fail_threshold, 3u);
  EXPECT_EQ(f.gossip_fail_window, absl::Seconds(10));
  EXPECT_EQ(f.gossip_throttle, absl::Seconds(1));
  EXPECT_EQ(f.gossip_max_throttle, absl::Seconds(60));
}

TEST(MempoolOptionsTest, OutOfBoundsNamesTheFlag) {
  struct Case {
    void (*mutate)(MempoolOptions&);
    const char* flag;
  };
  const Case cases[] = {
      {[](MempoolOptions& o) { o.max_tx_bytes = 0; }, "mempool_max_tx_bytes"},
      {[](MempoolOptions& o) { o.max_tx_bytes = 1 << 30; },
       "mempool_max_tx_bytes"},
      {[](MempoolOptions& o) { o.max_txs = 0; }, "mempool_max_txs"},
      {[](MempoolOptions& o) { o.max_bytes = 10; }, "mempool_max_bytes"},
      {[](MempoolOptions& o) { o.max_per_sender = 0; },
       "mempool_max_per_sender"},
      {[](MempoolOptions& o) { o.max_per_sender = o.max_txs + 1; },
       "mempool_max_per_sender"},
      {[](MempoolOptions& o) { o.replay_window = 0; }, "replay_window"},
      {[](MempoolOptions& o) { o.verify_threads = 100000; },
       "mempool_verify_threads"},
      {[](MempoolOptions& o) { o.sig_cache_size = 20'000'000; },
       "mempool_sig_cache_size"},
      {[](MempoolOptions& o) { o.reap_wait = absl::ZeroDuration(); },
       "reap_wait"},
      {[](MempoolOptions& o) { o.p2p_endpoint = "tcp://127.0.0.1:1"; },
       "mempool_p2p_key"},
      {[](MempoolOptions& o) { o.gossip_interval = absl::ZeroDuration(); },
       "mempool_gossip_interval_ms"},
      {[](MempoolOptions& o) { o.gossip_batch_txs = 0; },
       "mempool_gossip_batch_txs"},
      {[](MempoolOptions& o) { o.gossip_batch_txs = 10001; },
       "mempool_gossip_batch_txs"},
      {[](MempoolOptions& o) { o.gossip_batch_bytes = 10; },
       "mempool_gossip_batch_bytes"},
      {[](MempoolOptions& o) { o.gossip_batch_bytes = uint64_t{1} << 30; },
       "mempool_gossip_batch_bytes"},
      {[](MempoolOptions& o) { o.gossip_queue_txs = 0; },
       "mempool_gossip_queue_txs"},
      {[](MempoolOptions& o) { o.gossip_peer_queue_batches = 0; },
       "mempool_gossip_peer_queue_batches"},
      {[](MempoolOptions& o) { o.gossip_peer_queue_batches = 1'000'000; },
       "mempool_gossip_peer_queue_batches"},
      {[](MempoolOptions& o) { o.gossip_peer_queue_bytes = 1024; },
       "mempool_gossip_peer_queue_bytes"},
      {[](MempoolOptions& o) { o.gossip_peer_queue_bytes = uint64_t{1} << 40; },
       "mempool_gossip_peer_queue_bytes"},
      {[](MempoolOptions& o) { o.gossip_fail_threshold = 0; },
       "mempool_gossip_fail_threshold"},
      {[](MempoolOptions& o) { o.gossip_fail_window = absl::Milliseconds(1); },
       "mempool_gossip_fail_window_ms"},
      {[](MempoolOptions& o) { o.gossip_throttle = absl::ZeroDuration(); },
       "mempool_gossip_throttle_ms"},
      {[](MempoolOptions& o) { o.gossip_throttle = absl::Hours(2); },
       "mempool_gossip_throttle_ms"},
      {[](MempoolOptions& o) {
         o.gossip_max_throttle = absl::Milliseconds(500);
       },
       "mempool_gossip_max_throttle_ms"},
  };
  for (const Case& c : cases) {
    MempoolOptions o;
    c.mutate(o);
    absl::Status s = o.Validate();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.flag;
    EXPECT_NE(s.message().find(c.flag), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace consortia::mempool
