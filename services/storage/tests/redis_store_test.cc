// What only the Redis backend has to prove: it refuses a Redis that would
// lose acknowledged batches, survives redis-server being killed and
// restarted from its AOF, fails fast (Unavailable, unhealthy) while Redis is
// down and reconnects by itself, never reports a batch wrongly when a reply
// is lost, and keeps nodes that share one Redis apart.
#include "redis_store.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kv_store.h"
#include "redis_harness.h"
#include "test_util.h"

namespace consortia::storage {
namespace {

using ::testing::HasSubstr;
using testing::RedisServer;
using testing::TempDir;

class StorageRedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CONSORTIA_REQUIRE_REDIS_SERVER();
    absl::StatusOr<std::unique_ptr<RedisServer>> s =
        RedisServer::Start(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  std::unique_ptr<KvStore> Open(const std::string& prefix = "t:") {
    return Open(server_->StoreOptions(prefix));
  }
  std::unique_ptr<KvStore> Open(const RedisStoreOptions& o) {
    absl::StatusOr<std::unique_ptr<KvStore>> s = OpenRedisStore(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  static WriteBatch Batch(int n) {
    WriteBatch b;
    b.Put(absl::StrCat("batch/", n), absl::StrCat(n));
    b.Put(absl::StrCat("other/", n), std::string(100, 'x'));
    b.Put("last", absl::StrCat(n));
    return b;
  }

  // Polls until `fn` is true or 30 s have passed.
  template <typename Fn>
  static bool Eventually(Fn fn) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (fn()) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<RedisServer> server_;
};

TEST_F(StorageRedisStoreTest, RefusesRedisWithoutFsyncAlways) {
  TempDir weak_dir;
  absl::StatusOr<std::unique_ptr<RedisServer>> weak =
      RedisServer::Start(weak_dir.path(), {"--appendfsync", "everysec"});
  ASSERT_TRUE(weak.ok()) << weak.status();
  RedisStoreOptions o = (*weak)->StoreOptions("w:");
  absl::StatusOr<std::unique_ptr<KvStore>> s = OpenRedisStore(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("appendfsync is 'everysec', not 'always'"));
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("--storage_redis_allow_weak_durability"));
  o.require_durability = false;
  EXPECT_TRUE(OpenRedisStore(o).ok());
}

TEST_F(StorageRedisStoreTest, RefusesRedisWithoutAppendOnlyFile) {
  TempDir weak_dir;
  absl::StatusOr<std::unique_ptr<RedisServer>> weak =
      RedisServer::Start(weak_dir.path(), {"--appendonly", "no"});
  ASSERT_TRUE(weak.ok()) << weak.status();
  absl::StatusOr<std::unique_ptr<KvStore>> s =
      OpenRedisStore((*weak)->StoreOptions("w:"));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("appendonly is 'no'"));
}

TEST_F(StorageRedisStoreTest, RefusesRedisThatEvictsKeys) {
  TempDir lru_dir;
  absl::StatusOr<std::unique_ptr<RedisServer>> lru = RedisServer::Start(
      lru_dir.path(),
      {"--maxmemory", "1gb", "--maxmemory-policy", "allkeys-lru"});
  ASSERT_TRUE(lru.ok()) << lru.status();
  RedisStoreOptions o = (*lru)->StoreOptions("w:");
  o.require_durability = false;  // eviction is refused all the same
  absl::StatusOr<std::unique_ptr<KvStore>> s = OpenRedisStore(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("maxmemory-policy 'allkeys-lru'"));
}

TEST_F(StorageRedisStoreTest, UnreachableRedisIsUnavailableAtOpen) {
  RedisStoreOptions o = server_->StoreOptions("t:");
  ASSERT_TRUE(server_->Stop().ok());
  absl::StatusOr<std::unique_ptr<KvStore>> s = OpenRedisStore(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable) << s.status();
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr(absl::StrCat("127.0.0.1:", server_->port())));
}

TEST_F(StorageRedisStoreTest, KeyPrefixesKeepNodesApart) {
  std::unique_ptr<KvStore> n0 = Open("{n0}:");
  std::unique_ptr<KvStore> n1 = Open("{n1}:");
  ASSERT_NE(n0, nullptr);
  ASSERT_NE(n1, nullptr);
  WriteBatch b;
  b.Put("k", "from n0");
  ASSERT_TRUE(n0->Write(b).ok());
  absl::StatusOr<std::optional<std::string>> v = n1->Get("k");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->has_value());
  EXPECT_FALSE(n1->NewIterator("")->Valid());
  v = n0->Get("k");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::optional<std::string>("from n0"));
}

TEST_F(StorageRedisStoreTest, KeysOfAnotherTypeUnderThePrefixAreRefused) {
  // Another program keeps a plain string where the store's hash would live.
  timeval tv{5, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", server_->port(), tv);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->err, 0) << c->errstr;
  auto* r = static_cast<redisReply*>(redisCommand(c, "SET x:data hello"));
  ASSERT_NE(r, nullptr);
  freeReplyObject(r);
  redisFree(c);

  absl::StatusOr<std::unique_ptr<KvStore>> s =
      OpenRedisStore(server_->StoreOptions("x:"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("another program uses this key prefix"));
}

// With ordered_prefixes, only those prefixes can be iterated; every key can
// still be read, overwritten and deleted.
TEST_F(StorageRedisStoreTest, OnlyOrderedPrefixesIterate) {
  RedisStoreOptions o = server_->StoreOptions("t:");
  o.ordered_prefixes = "BS";
  std::unique_ptr<KvStore> store = Open(o);
  ASSERT_NE(store, nullptr);
  WriteBatch b;
  b.Put("B1", "block");
  b.Put("Nabc", "node");
  b.Put("Nxyz", "node2");
  b.Put("S1", "state");
  ASSERT_TRUE(store->Write(b).ok());
  WriteBatch d;
  d.Delete("Nxyz");
  d.Delete("S1");
  ASSERT_TRUE(store->Write(d).ok());

  absl::StatusOr<std::vector<std::optional<std::string>>> got =
      store->MultiGet({"B1", "Nabc", "Nxyz", "S1"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)[1], std::optional<std::string>("node"));
  EXPECT_FALSE((*got)[2].has_value());
  EXPECT_FALSE((*got)[3].has_value());

  std::unique_ptr<KvIterator> it = store->NewIterator("B");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "B1");
  it->Next();
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().ok());
  EXPECT_FALSE(store->NewIterator("S")->Valid());
  EXPECT_TRUE(store->NewIterator("S")->status().ok());

  for (const char* p : {"N", ""}) {
    std::unique_ptr<KvIterator> bad = store->NewIterator(p);
    EXPECT_FALSE(bad->Valid());
    EXPECT_EQ(bad->status().code(), absl::StatusCode::kFailedPrecondition)
        << "prefix '" << p << "'";
  }

  // The index was built for "BS": a store that expects another set would
  // miss keys when iterating, so it is refused.
  o.ordered_prefixes = "BSN";
  absl::StatusOr<std::unique_ptr<KvStore>> other = OpenRedisStore(o);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("'BS'"));
  o.ordered_prefixes = "BS";
  EXPECT_TRUE(OpenRedisStore(o).ok());
}

TEST_F(StorageRedisStoreTest, WhileDownCallsFailFastAndItReconnects) {
  std::unique_ptr<KvStore> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Write(Batch(1)).ok());
  EXPECT_TRUE(store->Ping().ok());

  ASSERT_TRUE(server_->Kill().ok());
  absl::Status w = store->Write(Batch(2));
  EXPECT_EQ(w.code(), absl::StatusCode::kUnavailable) << w;
  EXPECT_EQ(store->Ping().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->Get("last").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->MultiGet({"last"}).status().code(),
            absl::StatusCode::kUnavailable);
  std::unique_ptr<KvIterator> it = store->NewIterator("batch/");
  EXPECT_FALSE(it->Valid());
  EXPECT_EQ(it->status().code(), absl::StatusCode::kUnavailable);

  ASSERT_TRUE(server_->Restart().ok());
  EXPECT_TRUE(Eventually([&] { return store->Ping().ok(); }));
  ASSERT_TRUE(store->Write(Batch(3)).ok());
  absl::StatusOr<std::vector<std::optional<std::string>>> got =
      store->MultiGet({"batch/1", "batch/2", "batch/3", "last"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)[0], std::optional<std::string>("1"));
  EXPECT_FALSE((*got)[1].has_value());  // it was refused
  EXPECT_EQ((*got)[2], std::optional<std::string>("3"));
  EXPECT_EQ((*got)[3], std::optional<std::string>("3"));
}

// redis-server is killed (SIGKILL) while a writer commits batches as fast as
// it can, and restarted from its AOF: every acknowledged batch is there,
// every refused one is not, and the writer goes on by itself.
TEST_F(StorageRedisStoreTest, KilledUnderLoadAndRestartedKeepsAcknowledged) {
  RedisStoreOptions o = server_->StoreOptions("t:");
  o.ambiguous_write_wait = absl::Seconds(30);
  std::unique_ptr<KvStore> store = Open(o);
  ASSERT_NE(store, nullptr);

  absl::Mutex mu;
  std::map<int, absl::Status> results;  // guarded by mu
  std::atomic<int> acked{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int n = 1; !stop.load() && n < 1000000; ++n) {
      absl::Status s = store->Write(Batch(n));
      if (s.ok()) ++acked;
      absl::MutexLock l(&mu);
      results[n] = s;
      if (!s.ok()) absl::SleepFor(absl::Milliseconds(5));
    }
  });

  ASSERT_TRUE(Eventually([&] { return acked.load() >= 50; }));
  ASSERT_TRUE(server_->Kill().ok());
  const int acked_at_kill = acked.load();
  absl::SleepFor(absl::Milliseconds(300));  // some writes fail meanwhile
  ASSERT_TRUE(server_->Restart().ok());
  EXPECT_TRUE(Eventually([&] { return acked.load() >= acked_at_kill + 50; }));
  stop = true;
  writer.join();

  std::unique_ptr<KvStore> fresh = Open(o);
  ASSERT_NE(fresh, nullptr);
  absl::MutexLock l(&mu);
  std::vector<std::string> keys;
  for (const auto& [n, s] : results) keys.push_back(absl::StrCat("batch/", n));
  absl::StatusOr<std::vector<std::optional<std::string>>> got =
      fresh->MultiGet(keys);
  ASSERT_TRUE(got.ok()) << got.status();
  size_t i = 0;
  int last_ok = 0;
  for (const auto& [n, s] : results) {
    const bool present = (*got)[i++].has_value();
    if (s.ok()) {
      EXPECT_TRUE(present) << "acknowledged batch " << n << " was lost";
      last_ok = n;
    } else {
      // Refused while Redis was down (a write caught mid-EXEC by the kill
      // is read back once Redis returns, and then acknowledged).
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
      EXPECT_FALSE(present)
          << "batch " << n << " was reported failed (" << s << ") but is there";
    }
  }
  absl::StatusOr<std::optional<std::string>> last = fresh->Get("last");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, std::optional<std::string>(absl::StrCat(last_ok)));
}

// Redis is paused (SIGSTOP) so that a batch's reply never comes in time; it
// is resumed while the store reads back whether the batch was applied.
// Whatever the store answers must be the truth.
TEST_F(StorageRedisStoreTest, LostReplyIsSettledBeforeAnswering) {
  RedisStoreOptions o = server_->StoreOptions("t:");
  o.timeout = absl::Milliseconds(300);
  o.ambiguous_write_wait = absl::Seconds(30);
  std::unique_ptr<KvStore> store = Open(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Write(Batch(1)).ok());

  ::kill(server_->pid(), SIGSTOP);
  absl::Status result;
  std::thread writer([&] { result = store->Write(Batch(2)); });
  absl::SleepFor(absl::Seconds(1));  // past the 300 ms reply timeout
  ::kill(server_->pid(), SIGCONT);
  writer.join();

  std::unique_ptr<KvStore> fresh = Open(o);
  ASSERT_NE(fresh, nullptr);
  absl::StatusOr<std::optional<std::string>> v = fresh->Get("batch/2");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(result.ok(), v->has_value()) << result;
  // The answer stays true: nothing applies the batch later.
  absl::SleepFor(absl::Milliseconds(300));
  v = fresh->Get("batch/2");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(result.ok(), v->has_value()) << result;
  // And the store goes on.
  ASSERT_TRUE(store->Write(Batch(3)).ok());
}

// As above, but the store gives up waiting before Redis resumes. The batch
// is settled by the next call: if it was applied after all, the store
// refuses every call (its caller believes the batch failed) until it is
// reopened; if not, it simply goes on.
TEST_F(StorageRedisStoreTest, LostReplySettledLaterFencesOrGoesOn) {
  RedisStoreOptions o = server_->StoreOptions("t:");
  o.timeout = absl::Milliseconds(200);
  o.ambiguous_write_wait = absl::Milliseconds(300);
  std::unique_ptr<KvStore> store = Open(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Write(Batch(1)).ok());

  ::kill(server_->pid(), SIGSTOP);
  absl::Status w = store->Write(Batch(2));
  EXPECT_EQ(w.code(), absl::StatusCode::kUnavailable) << w;
  EXPECT_FALSE(store->Ping().ok());
  ::kill(server_->pid(), SIGCONT);

  absl::Status ping;
  ASSERT_TRUE(Eventually([&] {
    ping = store->Ping();
    return ping.ok() || absl::IsFailedPrecondition(ping);
  })) << ping;
  RedisStoreOptions fresh_opts = o;
  fresh_opts.timeout = absl::Seconds(5);
  std::unique_ptr<KvStore> fresh = Open(fresh_opts);
  ASSERT_NE(fresh, nullptr);
  absl::StatusOr<std::optional<std::string>> v = fresh->Get("batch/2");
  ASSERT_TRUE(v.ok());
  if (ping.ok()) {
    EXPECT_FALSE(v->has_value());
    EXPECT_TRUE(store->Write(Batch(3)).ok());
  } else {
    EXPECT_TRUE(v->has_value());
    EXPECT_THAT(std::string(ping.message()), HasSubstr("restart"));
    EXPECT_TRUE(absl::IsFailedPrecondition(store->Get("last").status()));
    EXPECT_TRUE(absl::IsFailedPrecondition(store->Write(Batch(3))));
  }
}

TEST_F(StorageRedisStoreTest, CleanRestartKeepsData) {
  std::unique_ptr<KvStore> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Write(Batch(1)).ok());
  store.reset();
  ASSERT_TRUE(server_->Stop().ok());
  ASSERT_TRUE(server_->Restart().ok());
  store = Open();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::optional<std::string>> v = store->Get("batch/1");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::optional<std::string>("1"));
}

}  // namespace
}  // namespace consortia::storage
