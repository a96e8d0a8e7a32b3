// Crash consistency of the storage service, end to end (docs/storage.md,
// "Crash testing"). A real single-validator node runs under a steady tx load
// submitted through the api; the test kills (SIGKILL) the storage process
// alone, or all four processes at once, at random moments, restarts them and
// checks after every kill:
//   - while the processes are dead, on the store exactly as the crash left it
//     (a copy of the RocksDB directory, or Redis itself): the ledger opens
//     (its consistency check passes), no block the api showed is lost or
//     changed, every tx acknowledged since the last kill (GET /v1/txs/<hash>
//     answered 200) and a sample of the older ones are indexed, and a replay
//     of every committed block from genesis into a fresh in-process Ledger
//     (extended kill after kill) reaches the stored chain state: same height,
//     block hash, state root and receipts root;
//   - after the restart: storage's and the api's /readyz answer 200, commits
//     resume, and the api serves the txs acknowledged before the kill.
// At the end the node stops cleanly, every acknowledged tx is looked up in
// the final store, and a replay from genesis into another fresh Ledger is
// compared with it. Redis outages (redis-server killed, or frozen) are
// checked under load too.
//
// The kill delays come from a seeded generator; each test prints its seed,
// and CONSORTIA_CRASH_SEED=<seed> replays it. CONSORTIA_CRASH_CYCLES=<n>
// overrides the number of kills (for a longer soak, or a quick try).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "apps/app.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "consortia/service_api.h"
#include "consortia/storage/storage_service.h"
#include "consortia/tx_json.h"
#include "gtest/gtest.h"
#include "kv_store.h"
#include "ledger.h"
#include "nlohmann/json.hpp"
#include "node_harness.h"
#include "redis_harness.h"
#include "store_factory.h"

namespace consortia::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using storage::Ledger;
using storage::testing::RedisServer;

constexpr char kStorage[] = "consortia-storage";

// The seed of this test process: CONSORTIA_CRASH_SEED, or a random one.
uint64_t Seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("CONSORTIA_CRASH_SEED");
    uint64_t s = 0;
    if (env != nullptr && absl::SimpleAtoi(env, &s)) return s;
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }();
  return seed;
}

// CONSORTIA_CRASH_CYCLES, or `fallback`.
int Cycles(int fallback) {
  const char* env = std::getenv("CONSORTIA_CRASH_CYCLES");
  int n = 0;
  if (env != nullptr && absl::SimpleAtoi(env, &n) && n > 0) return n;
  return fallback;
}

// Announces the seed (stdout and the test's XML properties) and returns a
// generator for this test.
std::mt19937_64 SeededRng() {
  const uint64_t seed = Seed();
  std::printf("crash test seed %llu (replay with CONSORTIA_CRASH_SEED=%llu)\n",
              static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return std::mt19937_64(seed);
}

bool Eventually(const std::function<bool()>& cond,
                absl::Duration timeout = absl::Seconds(60)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return cond();
}

int HttpStatus(const HttpTarget& target, const std::string& path) {
  auto r = HttpCall(target, "GET", path, "", "", absl::Seconds(5));
  return r.ok() ? r->status : 0;
}

// A committed tx as the api showed it.
struct Ack {
  uint64_t height = 0;
  std::string block_hash;  // hex
};

// Submits kv txs through the api, two every 50 ms, on one thread; on another
// polls each until GET /v1/txs/<hash> answers 200: from then on it counts as
// acknowledged; on a third records every block the api reports as the
// latest. Errors (a process is down) are expected and just retried; separate
// threads keep each steady while some queries wait for a restarting storage.
class TxLoad {
 public:
  explicit TxLoad(const NodeHarness* node)
      : node_(node), key_(TestKey(42)), chain_(node->genesis().chain_id) {}
  ~TxLoad() { Stop(); }

  void Start() {
    stop_ = false;
    submitter_ = std::thread([this] { SubmitLoop(); });
    poller_ = std::thread([this] { PollLoop(); });
    watcher_ = std::thread([this] { WatchLoop(); });
  }
  void Stop() {
    stop_ = true;
    if (submitter_.joinable()) submitter_.join();
    if (poller_.joinable()) poller_.join();
    if (watcher_.joinable()) watcher_.join();
  }

  // Acknowledged txs: all of them, and those not yet taken by TakeNew().
  std::map<std::string, Ack> acked() const {
    absl::MutexLock l(&mu_);
    return acked_;
  }
  std::map<std::string, Ack> TakeNew() {
    absl::MutexLock l(&mu_);
    return std::exchange(new_acked_, {});
  }
  // Every block the api has shown (height -> block hash), as committed.
  std::map<uint64_t, std::string> seen_blocks() const {
    absl::MutexLock l(&mu_);
    return seen_;
  }
  uint64_t submitted() const { return submitted_.load(); }
  size_t pending() const {
    absl::MutexLock l(&mu_);
    return pending_.size();
  }

 private:
  struct Pending {
    std::string hash;  // hex
    absl::Time since;
  };

  void SubmitLoop() {
    uint64_t nonce = 0;
    while (!stop_) {
      const uint64_t height = height_.load();
      for (int i = 0; i < 2 && !stop_; ++i) {
        ++nonce;
        // valid_until stays inside the mempool's replay window (1000).
        Transaction tx = SignedTx(
            key_, chain_, nonce, height + 500, "kv", "set",
            {absl::StrCat("crash-", nonce % 64), absl::StrCat("v", nonce)});
        auto r = HttpCall(node_->api(), "POST", "/v1/txs", TxToJson(tx),
                          "application/json", absl::Seconds(5));
        if (r.ok() && r->status == 202) {
          absl::MutexLock l(&mu_);
          pending_.push_back({ToHex(TxHash(Ed25519Sha256(), tx)), absl::Now()});
          ++submitted_;
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // Reads the latest block, every 50 ms.
  void WatchLoop() {
    while (!stop_) {
      auto latest = Get("/v1/blocks/latest");
      if (latest.has_value()) {
        const uint64_t h = (*latest)["height"].get<uint64_t>();
        height_ = h;
        absl::MutexLock l(&mu_);
        seen_[h] = (*latest)["block_hash"].get<std::string>();
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  void PollLoop() {
    while (!stop_) {
      // The oldest few per round, so that the latest block is read often
      // even while queries wait for a restarting storage.
      std::vector<Pending> pending;
      {
        absl::MutexLock l(&mu_);
        const size_t n = std::min<size_t>(pending_.size(), 16);
        pending.assign(pending_.begin(), pending_.begin() + n);
        pending_.erase(pending_.begin(), pending_.begin() + n);
      }
      std::vector<Pending> still;
      for (const Pending& p : pending) {
        if (stop_) {
          still.push_back(p);
          continue;
        }
        auto rec = Get("/v1/txs/" + p.hash);
        if (rec.has_value()) {
          Ack a{(*rec)["height"].get<uint64_t>(),
                (*rec)["block_hash"].get<std::string>()};
          absl::MutexLock l(&mu_);
          acked_[p.hash] = a;
          new_acked_[p.hash] = a;
          seen_[a.height] = a.block_hash;
        } else if (absl::Now() - p.since < absl::Seconds(30)) {
          // Not committed yet. A tx that stays out this long was lost with
          // a killed mempool before it reached a block: that is allowed.
          still.push_back(p);
        }
      }
      {
        absl::MutexLock l(&mu_);
        pending_.insert(pending_.begin(), still.begin(), still.end());
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // A query sent to a storage that is down waits in the api's bus queue
  // until storage is back or the deadline passes; a short timeout here lets
  // the load go on meanwhile (the api answers the abandoned request to
  // nobody).
  std::optional<json> Get(const std::string& path) {
    auto r = HttpCall(node_->api(), "GET", path, "", "", absl::Seconds(1));
    if (!r.ok() || r->status != 200) return std::nullopt;
    json j = json::parse(r->body, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    return j;
  }

  const NodeHarness* const node_;
  const KeyPair key_;
  const std::string chain_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> submitted_{0};
  std::atomic<uint64_t> height_{0};
  mutable absl::Mutex mu_;
  std::vector<Pending> pending_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Ack> acked_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Ack> new_acked_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> seen_ ABSL_GUARDED_BY(mu_);
  std::thread submitter_;
  std::thread poller_;
  std::thread watcher_;
};

// An in-process Ledger over a store; `dir` (when set) holds its files and is
// removed with it.
struct OpenLedger {
  std::unique_ptr<storage::KvStore> store;
  std::unique_ptr<Ledger> ledger;
  std::string dir;

  ~OpenLedger() {
    ledger.reset();
    store.reset();
    if (!dir.empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
};

// What the replays and the store checks need: the chain's genesis, suite and
// apps, and how to reach the node's store.
class ChainChecker {
 public:
  ChainChecker(const Genesis& genesis, std::string work_dir,
               storage::StorageOptions store_opts, std::string data_dir)
      : genesis_(genesis),
        apps_(storage::AppRegistry::WithBuiltins(genesis.rules)),
        work_dir_(std::move(work_dir)),
        store_opts_(std::move(store_opts)),
        data_dir_(std::move(data_dir)) {
    auto suite = GetCryptoSuite(genesis_.crypto_suite);
    EXPECT_TRUE(suite.ok()) << suite.status();
    suite_ = suite.ok() ? *suite : &Ed25519Sha256();
  }

  // Opens the node's store as the crash left it: for RocksDB a copy of its
  // directory (so that the restarted process, not this test, is the first to
  // recover the original), for Redis Redis itself (only read here). The
  // storage process must not be running.
  absl::StatusOr<std::unique_ptr<OpenLedger>> OpenNodeStore() {
    auto out = std::make_unique<OpenLedger>();
    storage::StorageOptions o = store_opts_;
    if (o.backend == "rocksdb") {
      out->dir = absl::StrCat(work_dir_, "/copy-", ++copies_);
      std::error_code ec;
      fs::copy(data_dir_ + "/ledger", out->dir, fs::copy_options::recursive,
               ec);
      if (ec) {
        return absl::InternalError(
            absl::StrCat("copying the store: ", ec.message()));
      }
      o.path = out->dir;
      o.sync = false;
    }
    return Open(o, std::move(out));
  }

  // A fresh, empty ledger for a replay.
  absl::StatusOr<std::unique_ptr<OpenLedger>> OpenFresh() {
    auto out = std::make_unique<OpenLedger>();
    out->dir = absl::StrCat(work_dir_, "/replay-", ++copies_);
    storage::StorageOptions o;
    o.path = out->dir;
    o.sync = false;
    return Open(o, std::move(out));
  }

  // Commits the blocks of `from` above `to`'s height into `to`, after
  // checking that `to`'s latest block is also `from`'s block at that height;
  // then both must be in the same state.
  static void ReplayInto(Ledger& from, Ledger& to) {
    auto src = from.GetChainState();
    auto dst = to.GetChainState();
    ASSERT_TRUE(src.ok()) << src.status();
    ASSERT_TRUE(dst.ok()) << dst.status();
    ASSERT_GE(src->height, dst->height) << "the store lost blocks";
    if (dst->height > 0) {
      auto b = from.GetCertifiedBlock(dst->height);
      ASSERT_TRUE(b.ok()) << b.status();
      ASSERT_EQ(ToHex(b->block_hash), ToHex(dst->last_block_hash))
          << "the store has another block at height " << dst->height;
    }
    for (uint64_t h = dst->height + 1; h <= src->height; ++h) {
      auto b = from.GetCertifiedBlock(h);
      ASSERT_TRUE(b.ok()) << "height " << h << ": " << b.status();
      ASSERT_TRUE(b->cert.has_value()) << "height " << h << " has no cert";
      // Checks the block's roots against the replayed state of h - 1.
      auto r = to.CommitBlock(EncodeBlock(b->block), *b->cert);
      ASSERT_TRUE(r.ok()) << "replaying height " << h << ": " << r.status();
    }
    auto after = to.GetChainState();
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_EQ(after->height, src->height);
    EXPECT_EQ(ToHex(after->last_block_hash), ToHex(src->last_block_hash));
    EXPECT_EQ(ToHex(after->state_root), ToHex(src->state_root))
        << "replay from genesis gives another state root at height "
        << src->height;
    EXPECT_EQ(ToHex(after->receipts_root), ToHex(src->receipts_root));
  }

 private:
  absl::StatusOr<std::unique_ptr<OpenLedger>> Open(
      const storage::StorageOptions& o, std::unique_ptr<OpenLedger> out) {
    auto store = storage::OpenConfiguredStore(o, data_dir_);
    if (!store.ok()) return store.status();
    out->store = *std::move(store);
    Ledger::Options lo;
    lo.store = out->store.get();
    lo.genesis = &genesis_;
    lo.suite = suite_;
    lo.apps = &apps_;
    lo.location = out->store->Describe();
    auto ledger = Ledger::Open(lo);
    if (!ledger.ok()) return ledger.status();
    out->ledger = *std::move(ledger);
    return out;
  }

  const Genesis genesis_;
  const CryptoSuite* suite_ = nullptr;
  storage::AppRegistry apps_;
  const std::string work_dir_;
  const storage::StorageOptions store_opts_;
  const std::string data_dir_;
  int copies_ = 0;
};

// The chain height the api reports; 0 when it cannot tell now.
uint64_t ApiHeight(const NodeHarness& node) {
  auto r = HttpCall(node.api(), "GET", "/v1/blocks/latest", "", "",
                    absl::Seconds(5));
  if (!r.ok() || r->status != 200) return 0;
  json j = json::parse(r->body, nullptr, false);
  return j.is_object() ? j["height"].get<uint64_t>() : 0;
}

// The consensus process's consortia_consensus_height gauge; nullopt when
// its ops endpoint does not answer.
std::optional<uint64_t> ConsensusHeight(const NodeHarness& node) {
  auto r = HttpCall(node.ops().at("consortia-consensus"), "GET", "/metrics", "",
                    "", absl::Seconds(5));
  if (!r.ok() || r->status != 200) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
    if (!absl::StartsWith(line, "consortia_consensus_height ")) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(line.find(' ') + 1), &v)) {
      return static_cast<uint64_t>(v);
    }
  }
  return std::nullopt;
}

// Waits until the api serves every tx of `txs` (GET /v1/txs/<hash> 200 in
// the block it was acknowledged in).
void ExpectServed(const NodeHarness& node,
                  const std::map<std::string, Ack>& txs) {
  for (const auto& entry : txs) {
    // Not a structured binding: clang 14 cannot capture those in a lambda.
    const std::string& hash = entry.first;
    const Ack& ack = entry.second;
    std::string last;
    bool ok = Eventually(
        [&] {
          auto r = HttpCall(node.api(), "GET", "/v1/txs/" + hash, "", "",
                            absl::Seconds(5));
          if (!r.ok()) {
            last = r.status().ToString();
            return false;
          }
          last = absl::StrCat(r->status, " ", r->body);
          if (r->status != 200) return false;
          json j = json::parse(r->body, nullptr, false);
          return j.is_object() && j["height"].get<uint64_t>() == ack.height &&
                 j["block_hash"].get<std::string>() == ack.block_hash;
        },
        absl::Seconds(30));
    ASSERT_TRUE(ok) << "acknowledged tx " << hash << " (height " << ack.height
                    << ") is not served after the restart; last answer: "
                    << last << "\n"
                    << node.LogTail();
  }
}

enum class KillWhat { kStorage, kNode };

// The store checks done while the killed processes are down: `seen` are the
// blocks the api showed, `txs` the acknowledged txs to look up; `replay` is
// extended to the stored height and compared with it.
void CheckCrashedStore(ChainChecker& checker, Ledger& replay,
                       const std::map<uint64_t, std::string>& seen,
                       const std::vector<std::pair<std::string, Ack>>& txs) {
  auto crashed = checker.OpenNodeStore();
  ASSERT_TRUE(crashed.ok())
      << "the store does not open after the kill: " << crashed.status();
  Ledger& stored = *(*crashed)->ledger;
  auto chain = stored.GetChainState();
  ASSERT_TRUE(chain.ok()) << chain.status();
  // No block the api showed is lost or replaced.
  if (!seen.empty()) {
    ASSERT_GE(chain->height, seen.rbegin()->first)
        << "the store lost committed blocks";
  }
  for (const auto& [h, hash] : seen) {
    auto b = stored.GetCertifiedBlock(h);
    ASSERT_TRUE(b.ok()) << "height " << h << ": " << b.status();
    ASSERT_EQ(ToHex(b->block_hash), hash) << "block at height " << h;
  }
  for (const auto& [hash, ack] : txs) {
    auto h = HashFromHex(hash);
    ASSERT_TRUE(h.ok()) << h.status();
    auto rec = stored.GetTx(*h);
    ASSERT_TRUE(rec.ok()) << "acknowledged tx " << hash << ": " << rec.status();
    EXPECT_EQ(rec->height, ack.height) << hash;
  }
  ChainChecker::ReplayInto(stored, replay);
}

class StorageCrashTest : public ::testing::Test {
 protected:
  // Starts a node on the backend and the load.
  void StartNode(const std::string& backend) {
    storage::StorageOptions so;
    so.backend = backend;
    // The default bus deadline (5 s): a request in flight to a storage
    // process that is killed fails as soon as its connection closes, so
    // consensus retries its commit once storage is back, not at the
    // deadline.
    NodeHarnessOptions opts;
    if (backend == "redis") {
      auto redis = RedisServer::Start(dir_.path());
      ASSERT_TRUE(redis.ok()) << redis.status();
      redis_ = *std::move(redis);
      so.redis_port = redis_->port();
      so.redis_timeout_ms = 500;
      std::vector<std::string>& flags = opts.extra_flags[kStorage];
      flags.push_back("--storage_backend=redis");
      flags.push_back(absl::StrCat("--storage_redis_port=", redis_->port()));
      flags.push_back(
          absl::StrCat("--storage_redis_timeout_ms=", so.redis_timeout_ms));
    }
    fs::create_directories(dir_.path() + "/node");
    fs::create_directories(dir_.path() + "/work");
    node_ = std::make_unique<NodeHarness>(dir_.path() + "/node", opts);
    absl::Status s = node_->Start();
    ASSERT_TRUE(s.ok()) << s;
    checker_ =
        std::make_unique<ChainChecker>(node_->genesis(), dir_.path() + "/work",
                                       so, dir_.path() + "/node/data");
    auto fresh = checker_->OpenFresh();
    ASSERT_TRUE(fresh.ok()) << fresh.status();
    replay_ = *std::move(fresh);
    load_ = std::make_unique<TxLoad>(node_.get());
    load_->Start();
  }

  void TearDown() override {
    if (load_) load_->Stop();
    if (node_) {
      absl::Status s = node_->Stop();
      EXPECT_TRUE(s.ok()) << s << "\n" << node_->LogTail();
    }
  }

  // One kill: waits a random delay, kills, checks the crashed store, restarts
  // and checks the node again.
  void KillCycle(KillWhat what, std::mt19937_64& rng, int cycle) {
    SCOPED_TRACE(absl::StrCat("kill ", cycle, " of ",
                              what == KillWhat::kStorage ? "storage" : "node",
                              ", seed ", Seed()));
    std::uniform_int_distribution<int> delay_ms(20, 400);
    const int delay = delay_ms(rng);
    absl::SleepFor(absl::Milliseconds(delay));

    const std::vector<std::string> victims =
        what == KillWhat::kStorage ? std::vector<std::string>{kStorage}
                                   : std::vector<std::string>{};
    absl::Status killed = node_->Kill(victims);
    ASSERT_TRUE(killed.ok()) << killed;
    // Whatever was acknowledged, was so before the kill: nothing can be
    // acknowledged while storage is down.
    std::map<std::string, Ack> fresh = load_->TakeNew();
    std::map<std::string, Ack> all = load_->acked();
    std::map<uint64_t, std::string> seen = load_->seen_blocks();

    // All txs acknowledged since the last kill, and a sample of the older.
    std::vector<std::pair<std::string, Ack>> txs(fresh.begin(), fresh.end());
    std::vector<std::pair<std::string, Ack>> older;
    for (const auto& e : all) {
      if (fresh.count(e.first) == 0) older.push_back(e);
    }
    std::shuffle(older.begin(), older.end(), sample_rng_);
    if (older.size() > 32) older.resize(32);
    txs.insert(txs.end(), older.begin(), older.end());
    CheckCrashedStore(*checker_, *replay_->ledger, seen, txs);
    if (HasFatalFailure()) return;

    const absl::Time restart_at = absl::Now();
    absl::Status restarted = node_->Restart();
    ASSERT_TRUE(restarted.ok()) << restarted;
    EXPECT_TRUE(Eventually([&] {
      return HttpStatus(node_->ops().at(kStorage), "/readyz") == 200 &&
             HttpStatus(node_->api(), "/readyz") == 200;
    })) << "not ready after the restart:\n"
        << node_->LogTail();
    // Commits resume.
    const uint64_t before = seen.empty() ? 0 : seen.rbegin()->first;
    EXPECT_TRUE(Eventually([&] { return ApiHeight(*node_) > before; }))
        << "no block after height " << before << " since the restart\n"
        << node_->LogTail();
    const absl::Duration recovery = absl::Now() - restart_at;
    std::map<std::string, Ack> recheck(txs.begin(), txs.end());
    ExpectServed(*node_, recheck);
    // For the log only (nothing asserts on time): how long until the next
    // block after the restart.
    std::printf(
        "kill %d (%s after %d ms): height %llu, %zu txs acknowledged "
        "so far, %zu pending; next block %lld ms after the restart\n",
        cycle, what == KillWhat::kStorage ? "storage" : "node", delay,
        static_cast<unsigned long long>(before), all.size(), load_->pending(),
        static_cast<long long>(absl::ToInt64Milliseconds(recovery)));
    std::fflush(stdout);
  }

  // After the last kill: stops the load, checks that the api serves the txs
  // acknowledged since the last check, stops the node cleanly, checks every
  // acknowledged tx in the final store and replays it from genesis again
  // into a new ledger.
  void FinalCheck() {
    load_->Stop();
    std::map<std::string, Ack> all = load_->acked();
    ASSERT_FALSE(all.empty()) << "no tx was acknowledged";
    ExpectServed(*node_, load_->TakeNew());
    absl::Status s = node_->Stop();
    ASSERT_TRUE(s.ok()) << s << "\n" << node_->LogTail();
    std::vector<std::pair<std::string, Ack>> txs(all.begin(), all.end());
    CheckCrashedStore(*checker_, *replay_->ledger, load_->seen_blocks(), txs);
    auto stored = checker_->OpenNodeStore();
    ASSERT_TRUE(stored.ok()) << stored.status();
    auto fresh = checker_->OpenFresh();
    ASSERT_TRUE(fresh.ok()) << fresh.status();
    ChainChecker::ReplayInto(*(*stored)->ledger, *(*fresh)->ledger);
    auto chain = (*stored)->ledger->GetChainState();
    ASSERT_TRUE(chain.ok());
    std::printf("final: height %llu, %zu txs acknowledged of %llu submitted\n",
                static_cast<unsigned long long>(chain->height), all.size(),
                static_cast<unsigned long long>(load_->submitted()));
  }

  void RedisOutage(bool freeze);

  TempDir dir_;
  // Picks the older txs to recheck; apart from the kill delays, so that
  // those depend on the seed alone.
  std::mt19937_64 sample_rng_{Seed() + 1};
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<NodeHarness> node_;
  std::unique_ptr<ChainChecker> checker_;
  std::unique_ptr<OpenLedger> replay_;
  std::unique_ptr<TxLoad> load_;
};

TEST_F(StorageCrashTest, RocksDbSurvivesStorageKills) {
  std::mt19937_64 rng = SeededRng();
  StartNode("rocksdb");
  ASSERT_FALSE(HasFatalFailure());
  const int cycles = Cycles(50);
  for (int i = 1; i <= cycles; ++i) {
    KillCycle(KillWhat::kStorage, rng, i);
    ASSERT_FALSE(HasFatalFailure());
  }
  FinalCheck();
}

TEST_F(StorageCrashTest, RocksDbSurvivesNodeKills) {
  std::mt19937_64 rng = SeededRng();
  StartNode("rocksdb");
  ASSERT_FALSE(HasFatalFailure());
  const int cycles = Cycles(50);
  for (int i = 1; i <= cycles; ++i) {
    KillCycle(KillWhat::kNode, rng, i);
    ASSERT_FALSE(HasFatalFailure());
  }
  FinalCheck();
}

TEST_F(StorageCrashTest, RedisSurvivesStorageAndNodeKills) {
  CONSORTIA_REQUIRE_REDIS_SERVER();
  std::mt19937_64 rng = SeededRng();
  StartNode("redis");
  ASSERT_FALSE(HasFatalFailure());
  const int cycles = Cycles(10);
  for (int i = 1; i <= cycles; ++i) {
    KillCycle(i % 2 == 1 ? KillWhat::kStorage : KillWhat::kNode, rng, i);
    ASSERT_FALSE(HasFatalFailure());
  }
  FinalCheck();
}

// Redis goes away under load (killed, or frozen with SIGSTOP so that
// commands hang rather than fail): storage and the api report not ready,
// consensus waits (no process exits, the height stays), and once Redis is
// back (restarted from its AOF, or SIGCONT) commits resume with nothing
// lost.
void StorageCrashTest::RedisOutage(bool freeze) {
  StartNode("redis");
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(Eventually([&] { return load_->acked().size() >= 20; }))
      << node_->LogTail();

  if (freeze) {
    ASSERT_EQ(::kill(redis_->pid(), SIGSTOP), 0);
  } else {
    ASSERT_TRUE(redis_->Kill().ok());
  }
  EXPECT_TRUE(Eventually([&] {
    return HttpStatus(node_->ops().at(kStorage), "/readyz") == 503;
  })) << "storage stays ready without Redis";
  EXPECT_TRUE(Eventually([&] {
    return HttpStatus(node_->api(), "/readyz") == 503;
  })) << "the api stays ready without storage's store";
  const std::map<std::string, Ack> acked = load_->acked();
  const std::map<uint64_t, std::string> seen = load_->seen_blocks();
  std::optional<uint64_t> stuck = ConsensusHeight(*node_);
  ASSERT_TRUE(stuck.has_value()) << "consensus does not answer /metrics";
  ASSERT_GE(*stuck, seen.rbegin()->first);
  // Consensus keeps running but commits nothing while Redis is away.
  for (int i = 0; i < 20; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    std::optional<uint64_t> h = ConsensusHeight(*node_);
    ASSERT_TRUE(h.has_value()) << "consensus stopped answering\n"
                               << node_->LogTail();
    EXPECT_EQ(*h, *stuck) << "a block was committed without Redis";
    EXPECT_NE(HttpStatus(node_->api(), "/readyz"), 200);
  }

  std::printf(
      "redis %s: storage and api not ready, consensus held at "
      "height %llu, %zu txs acknowledged before\n",
      freeze ? "frozen" : "killed", static_cast<unsigned long long>(*stuck),
      acked.size());
  std::fflush(stdout);
  if (freeze) {
    ASSERT_EQ(::kill(redis_->pid(), SIGCONT), 0);
  } else {
    ASSERT_TRUE(redis_->Restart().ok());
  }
  EXPECT_TRUE(Eventually([&] {
    return HttpStatus(node_->ops().at(kStorage), "/readyz") == 200 &&
           HttpStatus(node_->api(), "/readyz") == 200;
  })) << "not ready once Redis is back\n"
      << node_->LogTail();
  EXPECT_TRUE(Eventually([&] { return ApiHeight(*node_) > *stuck; }))
      << "commits do not resume after Redis returned\n"
      << node_->LogTail();
  ExpectServed(*node_, acked);
  // Blocks committed after the restart of Redis get acknowledged too.
  EXPECT_TRUE(Eventually([&] { return load_->acked().size() > acked.size(); }))
      << node_->LogTail();
  FinalCheck();
}

TEST_F(StorageCrashTest, RedisKilledUnderLoad) {
  CONSORTIA_REQUIRE_REDIS_SERVER();
  RedisOutage(/*freeze=*/false);
}

TEST_F(StorageCrashTest, RedisFrozenUnderLoad) {
  CONSORTIA_REQUIRE_REDIS_SERVER();
  RedisOutage(/*freeze=*/true);
}

}  // namespace
}  // namespace consortia::testing
