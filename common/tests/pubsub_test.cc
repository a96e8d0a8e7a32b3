#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "bus_internal.h"
#include "bus_test_util.h"
#include "consortia/bus.h"
#include "gtest/gtest.h"
#include "zmq.hpp"

namespace consortia {
namespace {

using ::consortia::bus_internal::SeqTracker;
using ::consortia::testing::CountingMetrics;
using ::consortia::testing::FreeTcpEndpoint;
using ::consortia::testing::UniqueInproc;
using ::consortia::testing::WaitFor;

TEST(SeqTrackerTest, ReportsGapsPerTopic) {
  SeqTracker t;
  EXPECT_EQ(t.Observe("a", 5), 0u);  // first event seen: no gap
  EXPECT_EQ(t.Observe("a", 6), 0u);
  EXPECT_EQ(t.Observe("a", 10), 3u);  // 7, 8, 9 missed
  EXPECT_EQ(t.Observe("b", 1), 0u);   // topics are independent
  EXPECT_EQ(t.Observe("b", 3), 1u);
  EXPECT_EQ(t.Observe("a", 11), 0u);
}

TEST(SeqTrackerTest, LowerOrEqualSequenceMeansThePublisherRestarted) {
  SeqTracker t;
  EXPECT_EQ(t.Observe("a", 100), 0u);
  EXPECT_EQ(t.Observe("a", 1), 0u);  // restart: accepted, history reset
  EXPECT_EQ(t.Observe("a", 2), 0u);
  EXPECT_EQ(t.Observe("a", 4), 1u);
  EXPECT_EQ(t.Observe("a", 4), 0u);  // a repeat is treated as a restart too
  EXPECT_EQ(t.Observe("a", 5), 0u);
  t.Reset();
  EXPECT_EQ(t.Observe("a", 50), 0u);
}

struct Seen {
  std::string topic;
  Envelope env;
  std::string payload;
  uint64_t missed;
};

// Collects what a Subscriber delivers. Thread-safe.
class Collector {
 public:
  Subscriber::Callback callback() {
    return [this](std::string_view topic, const Envelope& env, Bytes payload,
                  uint64_t missed) {
      absl::MutexLock l(&mu_);
      seen_.push_back(
          {std::string(topic), env, std::string(AsString(payload)), missed});
    };
  }
  std::vector<Seen> seen() {
    absl::MutexLock l(&mu_);
    return seen_;
  }
  size_t size() {
    absl::MutexLock l(&mu_);
    return seen_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
};

class PubSubTest : public ::testing::Test {
 protected:
  zmq::context_t ctx_;  // destroyed last
  CountingMetrics metrics_;
};

TEST_F(PubSubTest, SequencesStartAtOnePerTopic) {
  auto pub = StartPublisher(ctx_, UniqueInproc("pub"), "storage");
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ((*pub)->Publish("a", 1, Bytes()), 1u);
  EXPECT_EQ((*pub)->Publish("a", 1, Bytes()), 2u);
  EXPECT_EQ((*pub)->Publish("b", 1, Bytes()), 1u);
  EXPECT_EQ((*pub)->Publish("a", 1, Bytes()), 3u);
}

TEST_F(PubSubTest, SubscriberReceivesItsTopicsInOrder) {
  std::string ep = UniqueInproc("pub");
  auto pub = StartPublisher(ctx_, ep, "storage");
  ASSERT_TRUE(pub.ok()) << pub.status();
  Collector got;
  auto sub =
      StartSubscriber(ctx_, ep, {"block.committed"}, got.callback(), &metrics_);
  ASSERT_TRUE(sub.ok()) << sub.status();

  // A subscription takes effect asynchronously: publish until one arrives.
  ASSERT_TRUE(WaitFor([&] {
    (*pub)->Publish("block.committed", 100, ToBytes("warmup"));
    return got.size() > 0;
  }));
  uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    (*pub)->Publish("block.committed.other", 100, ToBytes("prefix only"));
    (*pub)->Publish("other", 100, ToBytes("not subscribed"));
    last = (*pub)->Publish("block.committed", 100,
                           ToBytes(absl::StrCat("event", i)), /*trace_id=*/7);
  }
  ASSERT_TRUE(WaitFor([&] {
    auto seen = got.seen();
    return !seen.empty() && seen.back().env.id == last;
  }));
  std::vector<Seen> seen = got.seen();
  ASSERT_GE(seen.size(), 5u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].topic, "block.committed");
    EXPECT_EQ(seen[i].env.kind, EnvelopeKind::kEvent);
    EXPECT_EQ(seen[i].env.type, 100);
    EXPECT_EQ(seen[i].env.sender, "storage");
    EXPECT_EQ(seen[i].missed, 0u);
    if (i > 0) {
      EXPECT_EQ(seen[i].env.id, seen[i - 1].env.id + 1);
    }
  }
  for (int i = 0; i < 5; ++i) {
    const Seen& s = seen[seen.size() - 5 + i];
    EXPECT_EQ(s.payload, absl::StrCat("event", i));
    EXPECT_EQ(s.env.trace_id, 7u);
  }
  EXPECT_EQ(metrics_.gaps.load(), 0);
}

// A hand-driven PUB socket skips sequence numbers; the subscriber reports
// how many it missed, and accepts a restarted sequence.
TEST_F(PubSubTest, SubscriberReportsGapsAndRestarts) {
  std::string ep = UniqueInproc("pub");
  zmq::socket_t raw(ctx_, zmq::socket_type::pub);
  raw.set(zmq::sockopt::linger, 0);
  raw.bind(ep);
  auto publish = [&](uint64_t seq, std::string payload) {
    Envelope env;
    env.kind = EnvelopeKind::kEvent;
    env.type = 100;
    env.id = seq;
    Bytes wire = EncodeEnvelope(env);
    raw.send(zmq::buffer(std::string("t")), zmq::send_flags::sndmore);
    raw.send(zmq::buffer(wire.data(), wire.size()), zmq::send_flags::sndmore);
    raw.send(zmq::buffer(payload), zmq::send_flags::none);
  };
  Collector got;
  auto sub = StartSubscriber(ctx_, ep, {"t"}, got.callback(), &metrics_);
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(WaitFor([&] {
    publish(1, "warmup");
    return got.size() > 0;
  }));
  publish(2, "two");
  publish(3, "three");
  publish(6, "six");
  publish(1, "restarted");
  publish(2, "after restart");
  ASSERT_TRUE(WaitFor([&] {
    auto seen = got.seen();
    return !seen.empty() && seen.back().payload == "after restart";
  }));
  std::vector<Seen> seen = got.seen();
  while (!seen.empty() && seen.front().payload == "warmup") {
    EXPECT_EQ(seen.front().missed, 0u);
    seen.erase(seen.begin());
  }
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[0].payload, "two");
  EXPECT_EQ(seen[0].missed, 0u);
  EXPECT_EQ(seen[1].missed, 0u);
  EXPECT_EQ(seen[2].payload, "six");
  EXPECT_EQ(seen[2].missed, 2u);
  EXPECT_EQ(seen[3].payload, "restarted");
  EXPECT_EQ(seen[3].missed, 0u);
  EXPECT_EQ(seen[4].missed, 0u);
  EXPECT_EQ(metrics_.gaps.load(), 1);
  EXPECT_EQ(metrics_.missed_total.load(), 2u);

  // A malformed event is counted and dropped; the next one still arrives.
  raw.send(zmq::buffer(std::string("t")), zmq::send_flags::sndmore);
  raw.send(zmq::buffer(std::string("not an envelope")),
           zmq::send_flags::sndmore);
  raw.send(zmq::buffer(std::string("x")), zmq::send_flags::none);
  publish(3, "after garbage");
  EXPECT_TRUE(WaitFor([&] {
    auto s = got.seen();
    return s.back().payload == "after garbage";
  }));
  EXPECT_EQ(metrics_.malformed.load(), 1);
}

TEST_F(PubSubTest, RestartedPublisherRebindsItsInprocNameAtOnce) {
  const std::string ep = UniqueInproc("rebind");
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<std::unique_ptr<Publisher>> pub =
        StartPublisher(ctx_, ep, "storage");
    ASSERT_TRUE(pub.ok()) << "restart " << i << ": " << pub.status();
  }
}

TEST_F(PubSubTest, SubscriberFollowsARestartedPublisherOverTcp) {
  std::string ep = FreeTcpEndpoint();
  Collector got;
  auto sub = StartSubscriber(ctx_, ep, {"t"}, got.callback(), &metrics_);
  ASSERT_TRUE(sub.ok()) << sub.status();
  {
    auto pub = StartPublisher(ctx_, ep, "first");
    ASSERT_TRUE(pub.ok()) << pub.status();
    // Reach a high sequence so that the restart goes backwards.
    ASSERT_TRUE(WaitFor([&] {
      (*pub)->Publish("t", 1, ToBytes("first"));
      return got.size() > 0;
    }));
    for (int i = 0; i < 1000; ++i) (*pub)->Publish("t", 1, ToBytes("first"));
    ASSERT_TRUE(WaitFor([&] { return got.seen().back().env.id >= 1000; }));
  }
  std::unique_ptr<Publisher> second;
  ASSERT_TRUE(WaitFor([&] {
    auto pub = StartPublisher(ctx_, ep, "second");
    if (!pub.ok()) return false;
    second = *std::move(pub);
    return true;
  }));
  // Slowly, so that the new sequence stays far below the old one until the
  // subscriber has reconnected (at most about a second).
  ASSERT_TRUE(WaitFor([&] {
    second->Publish("t", 1, ToBytes("second"));
    absl::SleepFor(absl::Milliseconds(20));
    return got.seen().back().env.sender == "second";
  }));
  std::vector<Seen> seen = got.seen();
  auto first_new = std::find_if(seen.begin(), seen.end(), [](const Seen& s) {
    return s.env.sender == "second";
  });
  ASSERT_NE(first_new, seen.end());
  EXPECT_EQ(first_new->missed, 0u);
}

TEST_F(PubSubTest, BadEndpointsAreReported) {
  auto ignore = [](std::string_view, const Envelope&, Bytes, uint64_t) {};
  EXPECT_EQ(StartSubscriber(ctx_, "bogus://x", {"t"}, ignore).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string ep = UniqueInproc("pub");
  auto pub = StartPublisher(ctx_, ep, "p");
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(StartPublisher(ctx_, ep, "dup").status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace consortia
