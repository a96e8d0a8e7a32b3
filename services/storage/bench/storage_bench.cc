// consortia-storage-bench: block commit throughput per KvStore backend, next
// to the raw rate of the backend measured in the same run, so that the
// ratio says whether storage is the bottleneck (goal: >= 50% of raw).
//
// In one run, for blocks of --txs kv `set` transactions:
//   1. A warm-up ledger on a scratch RocksDB builds the chain (blocks with
//      valid certificates) and records the exact batches the ledger writes.
//   2. Each repetition (--reps), on fresh stores:
//      raw rocksdb      rocksdb::DB::Write of those batches, sync = true
//      store rocksdb    KvStore::Write of those batches (RocksDbStore)
//      ledger rocksdb   Ledger::CommitBlock of the blocks
//      raw redis        hiredis: MULTI, MSET / DEL of those batches, EXEC,
//                       pipelined, on a redis-server with appendfsync always
//      store redis      KvStore::Write (RedisStore: hash + ordered index of
//                       the prefixes the ledger iterates, as in the service)
//      ledger redis     Ledger::CommitBlock of the blocks
//   3. Prints the median blocks/s and txs/s of each, the ratios of those
//      medians, the median of the per-repetition ratios (raw and ledger
//      run seconds apart in one repetition, so a change of the machine's
//      load between repetitions does not enter it), and where the ledger's
//      commit time went (Ledger::commit_timings).
// Between runs, the finished run's store is closed and removed and the
// kernel's dirty pages are written out (sync), so that no run's synced
// writes compete with the write-back of the one before.
// redis-server (Debian's /usr/bin/redis-server) is started on a free
// loopback port with its data in --dir and stopped at the end.
#include <hiredis/hiredis.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "apps/app.h"
#include "consortia/crypto_suite.h"
#include "consortia/merkle.h"
#include "consortia/service_api.h"
#include "consortia/types.h"
#include "kv_store.h"
#include "ledger.h"
#include "redis_harness.h"
#include "redis_store.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"
#include "store_factory.h"

ABSL_FLAG(int, blocks, 40,
          "Blocks per repetition. The ledger keeps 16 state versions, so "
          "from block 17 on every block also prunes one: 40 blocks measure "
          "mostly that steady state.");
ABSL_FLAG(int, txs, 1000, "kv set transactions per block.");
ABSL_FLAG(int, reps, 5, "Repetitions; the medians are printed.");
ABSL_FLAG(std::string, dir, "",
          "Working directory (RocksDB stores, Redis AOF); empty = a new "
          "directory under the system temp dir, removed at the end.");

namespace consortia::storage {
namespace {

const CryptoSuite& Suite() { return Ed25519Sha256(); }

// A KvStore that forwards to another and keeps a copy of every batch
// (writes come from one thread at a time).
class RecordingStore : public KvStore {
 public:
  explicit RecordingStore(KvStore* inner) : inner_(inner) {}
  absl::StatusOr<std::optional<std::string>> Get(std::string_view k) override {
    ++gets;
    return inner_->Get(k);
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    ++multigets;
    multiget_keys += keys.size();
    return inner_->MultiGet(keys);
  }
  std::unique_ptr<KvIterator> NewIterator(std::string_view p) override {
    ++iterators;
    return inner_->NewIterator(p);
  }
  absl::Status Write(const WriteBatch& b) override {
    batches_.push_back(b);
    return inner_->Write(b);
  }
  std::string Describe() const override { return inner_->Describe(); }
  const std::vector<WriteBatch>& batches() const { return batches_; }

  // Reads the ledger made (each one a round trip on Redis); the ledger
  // reads from several threads.
  std::atomic<size_t> gets = 0;
  std::atomic<size_t> multigets = 0;
  std::atomic<size_t> multiget_keys = 0;
  std::atomic<size_t> iterators = 0;

 private:
  KvStore* inner_;
  std::vector<WriteBatch> batches_;
};

struct Workload {
  Genesis genesis;
  std::vector<Bytes> blocks;  // EncodeBlock of each, as consensus sends them
  std::vector<CommitCertificate> certs;
  std::vector<WriteBatch> batches;  // what the ledger wrote for each block
  double gets_per_block = 0;
  double multigets_per_block = 0;
  double multiget_keys_per_block = 0;
  double iterators_per_block = 0;
};

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "consortia-storage-bench: %s: %s\n", what.c_str(),
               s.ToString().c_str());
  std::exit(1);
}

std::unique_ptr<Ledger> OpenLedger(KvStore* store, const Workload& w,
                                   const AppRegistry& apps) {
  Ledger::Options o;
  o.store = store;
  o.genesis = &w.genesis;
  o.suite = &Suite();
  o.apps = &apps;
  o.location = store->Describe();
  absl::StatusOr<std::unique_ptr<Ledger>> l = Ledger::Open(o);
  if (!l.ok()) Die("open ledger", l.status());
  return *std::move(l);
}

// Builds `blocks` blocks of `txs` kv sets each, with certificates, by
// committing them on a scratch store, and records the ledger's batches.
Workload Build(const std::string& dir, int blocks, int txs,
               const AppRegistry& apps) {
  Workload w;
  KeyPair validator = Suite().GenerateKey();
  w.genesis.chain_id = "bench";
  w.genesis.crypto_suite = "ed25519-sha256";
  w.genesis.genesis_time_ms = 1700000000000;
  w.genesis.validators.push_back(Validator{"v0", validator.public_key, 1});
  std::vector<KeyPair> senders;
  for (int i = 0; i < 16; ++i) senders.push_back(Suite().GenerateKey());

  absl::StatusOr<std::unique_ptr<KvStore>> scratch =
      OpenRocksDbStore(RocksDbStoreOptions{dir + "/warmup", false});
  if (!scratch.ok()) Die("open warm-up store", scratch.status());
  RecordingStore rec(scratch->get());
  std::unique_ptr<Ledger> ledger = OpenLedger(&rec, w, apps);

  uint64_t nonce = 0;
  for (int b = 0; b < blocks; ++b) {
    absl::StatusOr<ChainState> st = ledger->GetChainState();
    if (!st.ok()) Die("chain state", st.status());
    std::vector<Bytes> raw;
    raw.reserve(static_cast<size_t>(txs));
    for (int i = 0; i < txs; ++i) {
      const KeyPair& key = senders[static_cast<size_t>(i) % senders.size()];
      Transaction tx;
      tx.chain_id = w.genesis.chain_id;
      tx.nonce = ++nonce;
      tx.valid_until = 1000000;
      tx.sender = key.public_key;
      tx.app = "kv";
      tx.method = "set";
      // Invoice-like records: a 24-byte key and a 96-byte value.
      tx.args = {
          absl::StrCat("invoice-", b, "-", i, "-0000000000").substr(0, 24),
          std::string(96, static_cast<char>('a' + i % 26))};
      absl::StatusOr<Bytes> sig = Suite().Sign(key.secret_key, TxSignBytes(tx));
      if (!sig.ok()) Die("sign tx", sig.status());
      tx.signature = *sig;
      raw.push_back(EncodeTx(tx));
    }
    Block block;
    block.header.chain_id = w.genesis.chain_id;
    block.header.height = st->height + 1;
    block.header.time_ms =
        w.genesis.genesis_time_ms + 1000 * block.header.height;
    block.header.proposer = validator.public_key;
    block.header.prev_hash = st->last_block_hash;
    block.header.tx_root = MerkleRoot(Suite(), raw);
    block.header.state_root = st->state_root;
    block.header.receipts_root = st->receipts_root;
    block.txs = std::move(raw);

    Vote v;
    v.type = VoteType::kPrecommit;
    v.height = block.header.height;
    v.round = 0;
    v.block_hash = BlockHash(Suite(), block.header);
    v.validator_index = 0;
    absl::StatusOr<Bytes> vsig = Suite().Sign(
        validator.secret_key, VoteSignBytes(w.genesis.chain_id, v));
    if (!vsig.ok()) Die("sign vote", vsig.status());
    CommitCertificate cert;
    cert.height = v.height;
    cert.round = 0;
    cert.block_hash = v.block_hash;
    cert.sigs.push_back(CommitSig{0, *vsig});

    Bytes encoded = EncodeBlock(block);
    absl::StatusOr<CommitResult> r = ledger->CommitBlock(encoded, cert);
    if (!r.ok()) Die("warm-up commit", r.status());
    w.blocks.push_back(std::move(encoded));
    w.certs.push_back(std::move(cert));
  }
  w.batches = rec.batches();
  const double n = blocks;
  w.gets_per_block = static_cast<double>(rec.gets) / n;
  w.multigets_per_block = static_cast<double>(rec.multigets) / n;
  w.multiget_keys_per_block = static_cast<double>(rec.multiget_keys) / n;
  w.iterators_per_block = static_cast<double>(rec.iterators) / n;
  return w;
}

// Seconds to commit every block of `w` on `store` through a fresh Ledger;
// adds the ledger's phase times to `phases`.
double RunLedger(KvStore* store, const Workload& w, const AppRegistry& apps,
                 Ledger::CommitTimings* phases) {
  std::unique_ptr<Ledger> ledger = OpenLedger(store, w, apps);
  const absl::Time start = absl::Now();
  for (size_t i = 0; i < w.blocks.size(); ++i) {
    absl::StatusOr<CommitResult> r =
        ledger->CommitBlock(w.blocks[i], w.certs[i]);
    if (!r.ok()) Die("commit", r.status());
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  const Ledger::CommitTimings t = ledger->commit_timings();
  phases->blocks += t.blocks;
  phases->validate += t.validate;
  phases->execute += t.execute;
  phases->tree += t.tree;
  phases->write += t.write;
  return secs;
}

// Seconds to write every recorded batch through KvStore::Write.
double RunStore(KvStore* store, const Workload& w) {
  const absl::Time start = absl::Now();
  for (const WriteBatch& b : w.batches) {
    if (absl::Status s = store->Write(b); !s.ok()) Die("store write", s);
  }
  return absl::ToDoubleSeconds(absl::Now() - start);
}

// Seconds to write every recorded batch with rocksdb directly, synced.
double RunRawRocks(const std::string& path, const Workload& w) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) Die("open raw rocksdb", absl::InternalError(s.ToString()));
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  const absl::Time start = absl::Now();
  for (const WriteBatch& b : w.batches) {
    rocksdb::WriteBatch wb;
    for (const WriteBatch::Op& op : b.ops()) {
      if (op.is_delete) {
        wb.Delete(op.key);
      } else {
        wb.Put(op.key, op.value);
      }
    }
    s = db->Write(wo, &wb);
    if (!s.ok()) Die("raw rocksdb write", absl::InternalError(s.ToString()));
  }
  return absl::ToDoubleSeconds(absl::Now() - start);
}

// Seconds to write every recorded batch with hiredis directly: MULTI, MSET
// (puts, 512 pairs per command), DEL (deletes), EXEC, pipelined, one
// round trip per batch. Keys get `prefix`.
double RunRawRedis(uint16_t port, const std::string& prefix,
                   const Workload& w) {
  timeval tv{30, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err != 0) {
    Die("raw redis connect", absl::UnavailableError(c ? c->errstr : "?"));
  }
  redisSetTimeout(c, tv);
  const absl::Time start = absl::Now();
  for (const WriteBatch& b : w.batches) {
    std::vector<std::string> keys;
    keys.reserve(b.ops().size());
    for (const WriteBatch::Op& op : b.ops()) keys.push_back(prefix + op.key);
    int commands = 0;
    redisAppendCommand(c, "MULTI");
    ++commands;
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    auto flush = [&] {
      if (argv.size() <= 1) return;
      redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(),
                             lens.data());
      ++commands;
      argv.clear();
      lens.clear();
    };
    auto start_cmd = [&](const char* cmd) {
      argv.assign(1, cmd);
      lens.assign(1, std::strlen(cmd));
    };
    start_cmd("MSET");
    for (size_t i = 0; i < b.ops().size(); ++i) {
      const WriteBatch::Op& op = b.ops()[i];
      if (op.is_delete) continue;
      argv.push_back(keys[i].data());
      lens.push_back(keys[i].size());
      argv.push_back(op.value.data());
      lens.push_back(op.value.size());
      if (argv.size() >= 1 + 2 * 512) {
        flush();
        start_cmd("MSET");
      }
    }
    flush();
    start_cmd("DEL");
    for (size_t i = 0; i < b.ops().size(); ++i) {
      if (!b.ops()[i].is_delete) continue;
      argv.push_back(keys[i].data());
      lens.push_back(keys[i].size());
    }
    flush();
    redisAppendCommand(c, "EXEC");
    ++commands;
    for (int i = 0; i < commands; ++i) {
      void* reply = nullptr;
      if (redisGetReply(c, &reply) != REDIS_OK) {
        Die("raw redis write", absl::UnavailableError(c->errstr));
      }
      auto* r = static_cast<redisReply*>(reply);
      if (r->type == REDIS_REPLY_ERROR) {
        Die("raw redis write",
            absl::InternalError(std::string(r->str, r->len)));
      }
      freeReplyObject(r);
    }
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  redisFree(c);
  return secs;
}

// Removes a finished run's RocksDB directory (if any) and waits until the
// kernel has written every dirty page: a store closing flushes its memtable,
// and that write-back would otherwise slow the next run's synced writes.
void Quiesce(const std::string& done_dir) {
  if (!done_dir.empty()) std::filesystem::remove_all(done_dir);
  ::sync();
}

void Flush(uint16_t port) {
  timeval tv{30, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr || c->err != 0) return;
  if (void* r = redisCommand(c, "FLUSHALL"); r != nullptr) freeReplyObject(r);
  redisFree(c);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int Main() {
  spdlog::set_level(spdlog::level::warn);  // the ledger logs every commit
  const int blocks = absl::GetFlag(FLAGS_blocks);
  const int txs = absl::GetFlag(FLAGS_txs);
  const int reps = absl::GetFlag(FLAGS_reps);
  if (blocks < 1 || txs < 1 || reps < 1) {
    std::fprintf(stderr, "--blocks, --txs and --reps must be >= 1\n");
    return 2;
  }
  std::string dir = absl::GetFlag(FLAGS_dir);
  const bool own_dir = dir.empty();
  if (own_dir) {
    dir = (std::filesystem::temp_directory_path() /
           absl::StrCat("consortia-storage-bench-", getpid()))
              .string();
  }
  std::filesystem::create_directories(dir + "/redis");
  if (!testing::RedisServer::Installed()) {
    std::fprintf(stderr, "%s is not installed (package redis-server)\n",
                 testing::RedisServer::kBinary);
    return 1;
  }
  // No automatic AOF rewrite: its background fork would land in some
  // repetitions and not others on a 2-core machine.
  absl::StatusOr<std::unique_ptr<testing::RedisServer>> redis =
      testing::RedisServer::Start(dir + "/redis",
                                  {"--auto-aof-rewrite-percentage", "0"});
  if (!redis.ok()) Die("start redis-server", redis.status());
  const uint16_t port = (*redis)->port();

  const AppRegistry apps = AppRegistry::WithBuiltins();
  std::printf("building %d blocks of %d kv txs...\n", blocks, txs);
  Workload w = Build(dir, blocks, txs, apps);
  size_t ops = 0;
  size_t bytes = 0;
  for (const WriteBatch& b : w.batches) {
    ops += b.ops().size();
    bytes += b.ByteSize();
  }
  std::printf("one block's batch: %zu puts/deletes, %.0f KiB; by key prefix:",
              ops / w.batches.size(),
              static_cast<double>(bytes) / w.batches.size() / 1024);
  std::map<char, size_t> by_prefix;
  for (const WriteBatch& b : w.batches) {
    for (const WriteBatch::Op& op : b.ops()) {
      ++by_prefix[op.key.empty() ? '?' : op.key[0]];
    }
  }
  for (const auto& [p, count] : by_prefix) {
    std::printf(" %c=%zu", p, count / w.batches.size());
  }
  std::printf("\n");
  std::printf(
      "ledger reads per block: %.1f Get, %.1f MultiGet (%.0f keys), %.1f "
      "iterators\n",
      w.gets_per_block, w.multigets_per_block, w.multiget_keys_per_block,
      w.iterators_per_block);

  std::map<std::string, std::vector<double>> secs;
  std::map<std::string, Ledger::CommitTimings> phases;
  for (int rep = 0; rep < reps; ++rep) {
    const std::string r = absl::StrCat(dir, "/rep", rep);
    secs["raw rocksdb"].push_back(RunRawRocks(r + "-raw", w));
    Quiesce(r + "-raw");
    {
      auto s = OpenRocksDbStore(RocksDbStoreOptions{r + "-store", true});
      if (!s.ok()) Die("open rocksdb store", s.status());
      secs["store rocksdb"].push_back(RunStore(s->get(), w));
    }
    Quiesce(r + "-store");
    {
      auto s = OpenRocksDbStore(RocksDbStoreOptions{r + "-ledger", true});
      if (!s.ok()) Die("open rocksdb store", s.status());
      secs["ledger rocksdb"].push_back(
          RunLedger(s->get(), w, apps, &phases["rocksdb"]));
    }
    Quiesce(r + "-ledger");

    Flush(port);
    Quiesce("");
    secs["raw redis"].push_back(RunRawRedis(port, "raw:", w));
    Flush(port);
    Quiesce("");
    {
      RedisStoreOptions o = (*redis)->StoreOptions("store:");
      o.timeout = absl::Seconds(30);
      o.ordered_prefixes = LedgerOrderedPrefixes();
      auto s = OpenRedisStore(o);
      if (!s.ok()) Die("open redis store", s.status());
      secs["store redis"].push_back(RunStore(s->get(), w));
    }
    Flush(port);
    Quiesce("");
    {
      RedisStoreOptions o = (*redis)->StoreOptions("ledger:");
      o.timeout = absl::Seconds(30);
      o.ordered_prefixes = LedgerOrderedPrefixes();
      auto s = OpenRedisStore(o);
      if (!s.ok()) Die("open redis store", s.status());
      secs["ledger redis"].push_back(
          RunLedger(s->get(), w, apps, &phases["redis"]));
    }
    std::printf("repetition %d/%d done\n", rep + 1, reps);
  }

  const double n = static_cast<double>(w.blocks.size());
  auto rate = [&](const std::string& k) { return n / Median(secs[k]); };
  std::printf("\nmedian of %d repetitions, %d blocks of %d txs each\n", reps,
              blocks, txs);
  std::printf("%-16s %12s %12s\n", "", "blocks/s", "txs/s");
  for (const char* k : {"raw rocksdb", "store rocksdb", "ledger rocksdb",
                        "raw redis", "store redis", "ledger redis"}) {
    std::printf("%-16s %12.1f %12.0f\n", k, rate(k), rate(k) * txs);
  }
  std::printf("\nratios (goal: ledger >= 50%% of raw)\n");
  for (const char* b : {"rocksdb", "redis"}) {
    const std::string raw = absl::StrCat("raw ", b);
    std::printf("%-8s store/raw %5.1f%%   ledger/raw %5.1f%%\n", b,
                100 * rate(absl::StrCat("store ", b)) / rate(raw),
                100 * rate(absl::StrCat("ledger ", b)) / rate(raw));
  }
  std::printf("\nmedian of the per-repetition ratios\n");
  for (const char* b : {"rocksdb", "redis"}) {
    // A rate ratio is the inverse ratio of the seconds.
    auto per_rep = [&](const std::string& row) {
      const std::vector<double>& raw = secs[absl::StrCat("raw ", b)];
      const std::vector<double>& other = secs[absl::StrCat(row, " ", b)];
      std::vector<double> r;
      for (size_t i = 0; i < raw.size(); ++i) r.push_back(raw[i] / other[i]);
      return 100 * Median(r);
    };
    std::printf("%-8s store/raw %5.1f%%   ledger/raw %5.1f%%\n", b,
                per_rep("store"), per_rep("ledger"));
  }
  std::printf(
      "\nledger commit phases, ms per block (mean of all repetitions)\n");
  std::printf("%-8s %9s %9s %9s %9s\n", "", "validate", "execute", "tree",
              "write");
  for (const char* b : {"rocksdb", "redis"}) {
    const Ledger::CommitTimings& t = phases[b];
    const double per =
        1000.0 / static_cast<double>(std::max<uint64_t>(t.blocks, 1));
    std::printf("%-8s %9.2f %9.2f %9.2f %9.2f\n", b, t.validate * per,
                t.execute * per, t.tree * per, t.write * per);
  }
  redis->reset();
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace consortia::storage

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "consortia-storage-bench: block commit throughput per storage backend "
      "next to the raw backend rate.\nUsage: consortia-storage-bench "
      "[--blocks=40] [--txs=1000] [--reps=5] [--dir=DIR]");
  absl::ParseCommandLine(argc, argv);
  return consortia::storage::Main();
}
