// consortia-mempool-bench: admission throughput next to the raw signature
// verification rate of the same cores, measured in the same run.
//
// Each repetition measures, one after the other on the same pre-signed txs:
//   raw     signature verification alone (--suite, ed25519 by default): one
//   thread per core, each verifying
//           its share of the txs (message = TxSignBytes, prepared upfront);
//   submit  Mempool::Submit of fresh txs in batches, from --submitters
//           threads, with a verify pool of one thread per core (the
//           service's default) and an empty pool and signature cache;
//   bus     the same through the bus: RemoteMempool -> inproc -> ServeMempool
//           on 4 rpc threads (as the service runs it) -> Mempool.
// It prints each repetition and the medians, in txs per second of wall-clock
// time (the throughput) and per CPU-second of the process (the work done per
// tx, which a busy machine does not distort). Not a test: nothing is asserted
// but that every tx is admitted.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "consortia/bus.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "consortia/service_api.h"
#include "consortia/thread_pool.h"
#include "consortia/types.h"
#include "mempool.h"
#include "zmq.hpp"

ABSL_FLAG(size_t, txs, 20000, "Transactions per measurement.");
ABSL_FLAG(size_t, reps, 5, "Repetitions; the medians are reported.");
ABSL_FLAG(size_t, batch, 512, "Transactions per Submit call.");
ABSL_FLAG(size_t, threads, 0,
          "Verify threads, and raw verification threads (0 = one per core).");
ABSL_FLAG(size_t, submitters, 1,
          "Threads calling Submit concurrently in the 'submit' measurement.");
ABSL_FLAG(size_t, bus_submitters, 4,
          "Client threads calling Submit over the bus concurrently.");
ABSL_FLAG(bool, bus, true, "Also measure the path through the bus.");
ABSL_FLAG(bool, server_runtime, true,
          "Run with a server process's runtime settings, as the mempool "
          "service does (ConfigureServerRuntime: absl::Mutex deadlock "
          "detection off); false keeps abseil's default (on in Debian's).");
ABSL_FLAG(
    std::string, suite, "ed25519-sha256",
    "Crypto suite of the txs and the mempool: ed25519-sha256 or sm2-sm3.");

namespace consortia::mempool {
namespace {

constexpr char kChain[] = "bench";

// Rates of one measurement: txs per second of wall-clock time, and txs per
// second of CPU time used by the whole process. On a busy machine the first
// depends on the share of the cores the process gets; the second does not,
// and tells how much work admission adds to verification.
struct Rate {
  double wall = 0;
  double cpu = 0;
};

// Times the code between its construction and Finish.
class Stopwatch {
 public:
  Stopwatch() : wall_(std::chrono::steady_clock::now()), cpu_(CpuSeconds()) {}
  Rate Finish(size_t txs) const {
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_)
            .count();
    const double cpu = CpuSeconds() - cpu_;
    return {static_cast<double>(txs) / wall, static_cast<double>(txs) / cpu};
  }

 private:
  static double CpuSeconds() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
  }
  std::chrono::steady_clock::time_point wall_;
  double cpu_;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "consortia-mempool-bench: %s\n", what.c_str());
  std::exit(1);
}

const CryptoSuite& Suite() {
  static const CryptoSuite* suite = [] {
    absl::StatusOr<const CryptoSuite*> s =
        GetCryptoSuite(absl::GetFlag(FLAGS_suite));
    if (!s.ok()) Die(s.status().ToString());
    return *s;
  }();
  return *suite;
}

struct Corpus {
  std::vector<Bytes> raw;
  // For the raw measurement: what Verify is given.
  std::vector<Bytes> sender;
  std::vector<Bytes> message;
  std::vector<Bytes> signature;
};

// `n` kv "set" txs from 64 senders, signed upfront.
Corpus MakeCorpus(size_t n) {
  const CryptoSuite& suite = Suite();
  std::vector<KeyPair> keys;
  for (int i = 0; i < 64; ++i) keys.push_back(suite.GenerateKey());
  Corpus c;
  for (size_t i = 0; i < n; ++i) {
    Transaction tx;
    tx.chain_id = kChain;
    tx.nonce = i;
    tx.valid_until = 1000;
    tx.sender = keys[i % keys.size()].public_key;
    tx.app = "kv";
    tx.method = "set";
    tx.args = {absl::StrCat("invoice/", i), std::string(64, 'v')};
    Bytes msg = TxSignBytes(tx);
    absl::StatusOr<Bytes> sig =
        suite.Sign(keys[i % keys.size()].secret_key, msg);
    if (!sig.ok()) Die(sig.status().ToString());
    tx.signature = *sig;
    c.raw.push_back(EncodeTx(tx));
    c.sender.push_back(tx.sender);
    c.message.push_back(std::move(msg));
    c.signature.push_back(tx.signature);
  }
  return c;
}

// Verifications per second with `threads` threads, each on its share.
Rate RawVerifyRate(const Corpus& c, size_t threads) {
  const CryptoSuite& suite = Suite();
  const size_t n = c.raw.size();
  std::atomic<size_t> failures{0};
  std::vector<std::thread> workers;
  const Stopwatch watch;
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (size_t i = t * n / threads; i < (t + 1) * n / threads; ++i) {
        if (!suite.Verify(c.sender[i], c.message[i], c.signature[i])) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  const Rate rate = watch.Finish(n);
  if (failures.load() != 0) Die("a signature did not verify");
  return rate;
}

MempoolOptions Options(size_t n) {
  MempoolOptions o;
  o.max_txs = std::max<uint64_t>(n, o.max_txs);
  o.max_per_sender = o.max_txs;
  return o;
}

// Splits the corpus into batches and has `submitters` threads submit them
// through `api`; returns admitted txs per second.
Rate SubmitRate(MempoolApi& api, const Corpus& c, size_t batch,
                size_t submitters) {
  std::vector<std::vector<Bytes>> batches;
  for (size_t i = 0; i < c.raw.size(); i += batch) {
    batches.emplace_back(c.raw.begin() + i,
                         c.raw.begin() + std::min(c.raw.size(), i + batch));
  }
  std::atomic<size_t> next{0};
  std::atomic<size_t> admitted{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  const Stopwatch watch;
  for (size_t s = 0; s < submitters; ++s) {
    threads.emplace_back([&] {
      for (size_t b = next.fetch_add(1); b < batches.size();
           b = next.fetch_add(1)) {
        absl::StatusOr<std::vector<SubmitResult>> r = api.Submit(batches[b]);
        if (!r.ok()) {
          failed = true;
          return;
        }
        for (const SubmitResult& res : *r) {
          if (res.code == Admission::kAccepted) admitted.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const Rate rate = watch.Finish(c.raw.size());
  if (failed.load()) Die("a Submit call failed");
  if (admitted.load() != c.raw.size()) {
    Die(absl::StrCat("admitted ", admitted.load(), " of ", c.raw.size()));
  }
  return rate;
}

Rate InProcessRate(const Corpus& c, size_t threads, size_t batch,
                   size_t submitters) {
  ThreadPool verify_pool(threads);
  Mempool m(Options(c.raw.size()), kChain, Suite(), &verify_pool);
  m.SetReady();
  return SubmitRate(m, c, batch, submitters);
}

Rate BusRate(const Corpus& c, size_t threads, size_t batch, size_t submitters,
             int rep) {
  zmq::context_t ctx;
  ThreadPool verify_pool(threads);
  Mempool m(Options(c.raw.size()), kChain, Suite(), &verify_pool);
  m.SetReady();
  ThreadPool rpc_pool(4);
  const std::string endpoint = absl::StrCat("inproc://bench-mempool-", rep);
  absl::StatusOr<std::unique_ptr<BusServer>> server = StartBusServer(
      ctx, endpoint, "mempool", ServeMempool(&m, rpc_pool.AsExecutor()));
  if (!server.ok()) Die(server.status().ToString());
  absl::StatusOr<std::unique_ptr<BusClient>> client =
      ConnectBusClient(ctx, endpoint, "bench");
  if (!client.ok()) Die(client.status().ToString());
  std::unique_ptr<MempoolApi> remote =
      MakeRemoteMempool(client->get(), absl::Seconds(60));
  const Rate rate = SubmitRate(*remote, c, batch, submitters);
  remote.reset();
  client->reset();
  server->reset();
  return rate;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int Run() {
  const size_t n = absl::GetFlag(FLAGS_txs);
  const size_t reps = std::max<size_t>(1, absl::GetFlag(FLAGS_reps));
  const size_t batch = std::max<size_t>(1, absl::GetFlag(FLAGS_batch));
  size_t threads = absl::GetFlag(FLAGS_threads);
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t submitters =
      std::max<size_t>(1, absl::GetFlag(FLAGS_submitters));
  const size_t bus_submitters =
      std::max<size_t>(1, absl::GetFlag(FLAGS_bus_submitters));
  const bool bus = absl::GetFlag(FLAGS_bus);

  const Corpus corpus = MakeCorpus(n);
  size_t bytes = 0;
  for (const Bytes& tx : corpus.raw) bytes += tx.size();
  std::printf(
      "consortia-mempool-bench: %s, %zu txs (%zu bytes each on average), "
      "batches of %zu, %zu cores; verify pool of %zu threads + the calling "
      "thread\n",
      std::string(Suite().name()).c_str(), n, bytes / std::max<size_t>(1, n),
      batch, static_cast<size_t>(std::thread::hardware_concurrency()), threads);
  const std::string submit_name = absl::StrCat("submit_x", submitters);
  const std::string bus_name = absl::StrCat("bus_x", bus_submitters);
  std::printf(
      "rates in tx/s of wall-clock time [and tx per CPU-second of the "
      "process]\n");
  std::printf("%-6s %20s %20s %20s %11s %11s\n", "rep", "raw_verify",
              submit_name.c_str(), bus_name.c_str(), "submit/raw", "bus/raw");

  std::vector<Rate> raw, submit, via_bus;
  auto print = [&](const char* label, const Rate& a, const Rate& b,
                   const Rate& c) {
    std::printf(
        "%-6s %9.0f [%8.0f] %9.0f [%8.0f] %9.0f [%8.0f] %10.1f%% %10.1f%%\n",
        label, a.wall, a.cpu, b.wall, b.cpu, c.wall, c.cpu,
        100 * b.wall / a.wall, bus ? 100 * c.wall / a.wall : 0.0);
    std::fflush(stdout);
  };
  for (size_t r = 0; r < reps; ++r) {
    raw.push_back(RawVerifyRate(corpus, threads));
    submit.push_back(InProcessRate(corpus, threads, batch, submitters));
    via_bus.push_back(bus ? BusRate(corpus, threads, batch, bus_submitters,
                                    static_cast<int>(r))
                          : Rate{});
    print(std::to_string(r + 1).c_str(), raw.back(), submit.back(),
          via_bus.back());
  }
  // Medians of each column; the ratios are those of the medians.
  auto median = [](const std::vector<Rate>& v) {
    std::vector<double> wall, cpu;
    for (const Rate& r : v) {
      wall.push_back(r.wall);
      cpu.push_back(r.cpu);
    }
    return Rate{Median(wall), Median(cpu)};
  };
  const Rate raw_m = median(raw), submit_m = median(submit),
             bus_m = median(via_bus);
  print("median", raw_m, submit_m, bus_m);
  // Each repetition measures raw and admission seconds apart, so the ratio
  // within a repetition is the fairest on a machine whose load changes.
  std::vector<double> submit_ratio, bus_ratio;
  for (size_t r = 0; r < reps; ++r) {
    submit_ratio.push_back(submit[r].wall / raw[r].wall);
    bus_ratio.push_back(via_bus[r].wall / raw[r].wall);
  }
  std::printf(
      "admission / raw verification, wall clock (median of the per-repetition "
      "ratios): %.1f%% in process",
      100 * Median(submit_ratio));
  if (bus) std::printf(", %.1f%% through the bus", 100 * Median(bus_ratio));
  std::printf("\nper CPU-second (ratio of the medians): %.1f%% in process",
              100 * submit_m.cpu / raw_m.cpu);
  if (bus) std::printf(", %.1f%% through the bus", 100 * bus_m.cpu / raw_m.cpu);
  std::printf("\n");
  return 0;
}

}  // namespace
}  // namespace consortia::mempool

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_server_runtime)) consortia::ConfigureServerRuntime();
  return consortia::mempool::Run();
}
