// `consortia bench`: a load generator that says how fast the chain commits
// next to this machine's own limit (docs/BENCHMARKS.md).
//
// 1. The limit: the chain's signature suite verified on all cores for about
//    --verify-seconds; ceiling = that rate / validators (one verification per
//    tx per node, all of them on this machine).
// 2. The network: started here (`consortia localnet`'s code, localnet.h, in a
//    fresh directory: --validators, split or --single-process, or both with
//    --compare-single), or the running one of --api.
// 3. Per mode (one tx per request, POST /v1/txs; batches of --batch txs,
//    POST /v1/txs:batch): txs pre-signed before the clock starts (client
//    signing is not measured; many sender keys, one nonce each, valid_until
//    within the replay window), sent over keep-alive connections to every
//    api at --rate txs/s (open loop: a refused tx is not sent again) or as
//    fast as they are accepted (--rate max: a request refused with 429 or
//    503, or the txs of a batch refused so one by one, are sent again after
//    a pause), for --duration seconds; then up to --drain seconds for the
//    accepted ones to commit.
// 4. What it reports: committed TPS in the steady state (from the chain's own
//    blocks, read from the api: block times and tx counts, over windows of
//    10 blocks), submit-to-commit latency (send of the request to the
//    moment its tx event arrives on GET /v1/events), refused txs by status
//    and problem type, lost txs (accepted, never committed: a failure, exit
//    code 1), and CPU seconds and peak RSS of each service process.
// 5. Options for issue 16's other figures: --reads (read throughput of
//    GET /v1/txs/{hash}, /v1/blocks/{height}, /v1/state/kv/{key} after each
//    run), --down N (the last N nodes stopped before the load), --catch-up
//    (the last node stopped during the load, then timed while it catches
//    up) and --backend redis (a redis-server per node for its storage).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "args.h"
#include "bench_load.h"
#include "commands.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "consortia/genesis_file.h"
#include "consortia/http_client.h"
#include "consortia/process.h"
#include "consortia/tx_json.h"
#include "consortia/types.h"
#include "localnet.h"
#include "nlohmann/json.hpp"

namespace consortia::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The replay window (heights) of the genesis of a network the bench starts.
constexpr uint64_t kBenchReplayWindow = 100000;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "consortia bench: %s\n",
               std::string(s.message()).c_str());
  return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch())
      .count();
}

// What a run needs to know about the network it loads.
struct Target {
  std::vector<HttpTarget> apis;
  std::string api_key;
  std::string chain_id;
  const CryptoSuite* suite = nullptr;
  uint64_t replay_window = 0;
  uint64_t validators = 0;
  // Processes whose CPU and memory are reported: name and pid.
  std::vector<std::pair<std::string, pid_t>> procs;
};

struct LoadOptions {
  bool batch_mode = false;
  uint64_t batch = 100;
  double rate = 0;  // txs/s; 0 = as fast as accepted
  double duration_s = 30;
  double drain_s = 30;
  double warmup_s = 2;
  uint64_t connections = 0;  // per api
  uint64_t max_txs = 150000;
  double reads_s = 0;  // --reads: per route, after the drain; 0 = none
  double ceiling = 0;
  double verify_ms = 0;  // CPU milliseconds of one verification
};

absl::StatusOr<Json> GetJsonFrom(const HttpTarget& api,
                                 const std::string& path) {
  auto res = HttpCall(api, "GET", path, "", "", absl::Seconds(10));
  if (!res.ok()) return res.status();
  if (res->status != 200) {
    return absl::UnavailableError(
        absl::StrCat("HTTP ", res->status, " from ", path, ": ", res->body));
  }
  Json j = Json::parse(res->body, nullptr, false);
  if (j.is_discarded()) return absl::InternalError("non-JSON from " + path);
  return j;
}

absl::StatusOr<uint64_t> LatestHeight(const HttpTarget& api) {
  auto j = GetJsonFrom(api, "/v1/blocks/latest");
  if (!j.ok()) return j.status();
  try {
    return (*j)["header"]["height"].get<uint64_t>();
  } catch (const Json::exception& e) {
    return absl::InternalError(
        absl::StrCat("unexpected block JSON: ", e.what()));
  }
}

// "429 pool-full" from an answer's status and problem body.
std::string RefusalReason(int status, const Json& problem) {
  std::string type = problem.is_object() ? problem.value("type", "") : "";
  size_t slash = type.rfind('/');
  if (slash != std::string::npos) type = type.substr(slash + 1);
  return absl::StrCat(status, " ", type.empty() ? "unknown" : type);
}

// The pre-signed txs of one run.
struct TxSet {
  std::vector<std::string> json;  // TxToJson
  std::vector<std::string> hash;  // hex
  std::unordered_map<std::string, uint32_t> index;
  std::string run;  // tx i sets kv key KvKey(i)
  std::string KvKey(uint64_t i) const {
    return absl::StrCat("bench-", run, "-", i);
  }
};

TxSet SignTxs(const Target& t, uint64_t count, uint64_t valid_until,
              uint64_t threads) {
  TxSet set;
  set.json.resize(count);
  set.hash.resize(count);
  // One sender per 2,000 txs (the mempool holds at most
  // --mempool_max_per_sender pending txs of one sender, 10,000 by default).
  const uint64_t senders = std::max<uint64_t>(8, count / 2000 + 1);
  std::vector<KeyPair> keys;
  for (uint64_t i = 0; i < senders; ++i) keys.push_back(t.suite->GenerateKey());
  std::random_device rd;
  const uint64_t nonce_base = ((uint64_t{rd()} << 32) | rd()) >> 1;
  const std::string run = absl::StrCat(nonce_base % 1000000007);
  set.run = run;
  std::vector<std::thread> pool;
  for (uint64_t w = 0; w < threads; ++w) {
    pool.emplace_back([&, w] {
      for (uint64_t i = w; i < count; i += threads) {
        const KeyPair& kp = keys[i % senders];
        Transaction tx;
        tx.chain_id = t.chain_id;
        tx.nonce = nonce_base + i;
        tx.valid_until = valid_until;
        tx.sender = kp.public_key;
        tx.app = "kv";
        tx.method = "set";
        tx.args = {set.KvKey(i), "v"};
        auto sig = t.suite->Sign(kp.secret_key, TxSignBytes(tx));
        if (sig.ok()) tx.signature = *sig;
        set.json[i] = TxToJson(tx);
        set.hash[i] = ToHex(TxHash(*t.suite, tx));
      }
    });
  }
  for (auto& th : pool) th.join();
  set.index.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    set.index.emplace(set.hash[i], static_cast<uint32_t>(i));
  }
  return set;
}

struct BlockInfo {
  uint64_t height = 0;
  uint64_t time_ms = 0;
  uint64_t tx_count = 0;
};

// Blocks from `from` to the tip, read with GET /v1/blocks (pages of 100).
absl::StatusOr<std::vector<BlockInfo>> ReadBlocks(const HttpTarget& api,
                                                  uint64_t from) {
  std::vector<BlockInfo> out;
  while (true) {
    auto j =
        GetJsonFrom(api, absl::StrCat("/v1/blocks?from=", from, "&limit=100"));
    if (!j.ok()) return j.status();
    const Json& blocks = (*j)["blocks"];
    if (!blocks.is_array() || blocks.empty()) break;
    for (const Json& b : blocks) {
      BlockInfo bi;
      bi.height = b.value("height", uint64_t{0});
      bi.tx_count = b.value("tx_count", uint64_t{0});
      bi.time_ms = b["header"].value("time_ms", uint64_t{0});
      out.push_back(bi);
    }
    if ((*j)["next_from"].is_null()) break;
    from = (*j)["next_from"].get<uint64_t>();
  }
  return out;
}

Json ProcessUsage(const Target& t) {
  Json out = Json::array();
  for (const auto& [name, pid] : t.procs) {
    auto u = ReadProcUsage(pid);
    Json p = {{"name", name}, {"pid", pid}};
    if (u.ok()) {
      p["cpu_s_total"] = u->cpu_s;
      p["peak_rss_mb"] = static_cast<double>(u->peak_rss_kb) / 1024.0;
      p["rss_mb"] = static_cast<double>(u->rss_kb) / 1024.0;
    }
    out.push_back(p);
  }
  return out;
}

uint64_t ConnectionsPerApi(const Target& t, const LoadOptions& o) {
  return o.connections > 0
             ? o.connections
             : std::max<uint64_t>(4, 32 / std::max<size_t>(t.apis.size(), 1));
}

// --reads: GET of `paths` in turn over keep-alive connections (per_api to
// every api) as fast as the answers come, for `seconds`. A non-200 answer
// or a failed exchange is counted (by status; "transport" for the latter),
// never retried.
Json ReadRoute(const Target& t, uint64_t per_api,
               const std::vector<std::string>& paths, double seconds) {
  std::mutex mu;
  std::vector<double> lat;
  std::map<std::string, uint64_t> bad;
  std::atomic<uint64_t> next{0};
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Authorization", "Bearer " + t.api_key}};
  const int64_t start_ns = NowNs();
  const int64_t end_ns = start_ns + static_cast<int64_t>(seconds * 1e9);
  auto worker = [&](const HttpTarget& api) {
    KeepAliveConnection conn(api.host, api.port, headers);
    std::vector<double> mine;
    std::map<std::string, uint64_t> mine_bad;
    while (NowNs() < end_ns) {
      const std::string& path = paths[next.fetch_add(1) % paths.size()];
      const int64_t t0 = NowNs();
      auto res = conn.Call("GET", path, "");
      mine.push_back((NowNs() - t0) / 1e6);
      if (!res.ok()) {
        ++mine_bad["transport"];
      } else if (res->status != 200) {
        ++mine_bad[absl::StrCat(res->status)];
      }
    }
    std::lock_guard<std::mutex> l(mu);
    lat.insert(lat.end(), mine.begin(), mine.end());
    for (const auto& [k, v] : mine_bad) bad[k] += v;
  };
  if (!paths.empty()) {
    std::vector<std::thread> workers;
    for (const HttpTarget& api : t.apis) {
      for (uint64_t c = 0; c < per_api; ++c) workers.emplace_back(worker, api);
    }
    for (auto& w : workers) w.join();
  }
  const double elapsed = (NowNs() - start_ns) / 1e9;
  uint64_t non_200 = 0;
  for (const auto& [k, v] : bad) non_200 += v;
  const size_t n = lat.size();
  const double p50 = Quantile(lat, 0.5), p99 = Quantile(lat, 0.99);
  return {{"items", paths.size()},
          {"reads", n},
          {"seconds", elapsed},
          {"reads_per_s", elapsed > 0 ? static_cast<double>(n) / elapsed : 0},
          {"latency_ms",
           {{"p50", p50}, {"p99", p99}, {"max", lat.empty() ? 0 : lat.back()}}},
          {"non_200", non_200},
          {"non_200_by_status", Json(bad)}};
}

// One run of one mode: the result object of the JSON file (see
// docs/BENCHMARKS.md for its fields).
absl::StatusOr<Json> RunLoad(const Target& t, const LoadOptions& o) {
  auto height = LatestHeight(t.apis[0]);
  if (!height.ok()) return height.status();
  const uint64_t reqsize = o.batch_mode ? o.batch : 1;
  // As fast as accepted: enough for the ceiling throughout, and for a full
  // pool (--mempool_max_txs, 100,000 by default) besides, up to --max-txs.
  uint64_t count =
      o.rate > 0
          ? static_cast<uint64_t>(std::ceil(o.rate * o.duration_s))
          : static_cast<uint64_t>(o.ceiling * o.duration_s * 1.5) + 100000;
  count = std::clamp<uint64_t>(count, reqsize, o.max_txs);
  count = (count + reqsize - 1) / reqsize * reqsize;
  // Valid for as long as the replay window allows (the mempool refuses a
  // valid_until beyond the next height + replay_window).
  const uint64_t valid_until =
      *height + std::max<uint64_t>(t.replay_window, 2) - 1;
  const uint64_t ncpu = std::max(1u, std::thread::hardware_concurrency());
  std::fprintf(stderr, "  signing %llu txs...\n",
               static_cast<unsigned long long>(count));
  TxSet txs = SignTxs(t, count, valid_until, ncpu);
  const uint64_t nreq = count / reqsize;

  std::vector<std::atomic<int64_t>> sent_ns(count);
  std::vector<std::atomic<int64_t>> commit_ns(count);
  std::vector<std::atomic<uint8_t>> accepted(count);
  std::atomic<uint64_t> accepted_n{0}, committed_n{0}, failed_results{0};
  std::atomic<uint64_t> transport_errors{0}, requests{0}, late_sends{0};
  std::atomic<uint64_t> sent_txs{0};
  std::atomic<int64_t> max_lag_ns{0};
  std::mutex mu;
  std::map<std::string, uint64_t> refused;
  uint64_t refused_n = 0;

  // The event stream, from the next block.
  std::atomic<bool> stop_events{false};
  uint64_t resumes = 0;
  auto height_now = LatestHeight(t.apis[0]);
  const uint64_t from = (height_now.ok() ? *height_now : *height) + 1;
  std::thread events([&] {
    const std::string key = "\"tx_hash\":\"";
    resumes = FollowEvents(
        t.apis[0].host, t.apis[0].port, from, stop_events,
        [&](const StreamEvent& e) {
          if (e.type != "tx") return;
          size_t at = e.data.find(key);
          if (at == std::string::npos) return;
          auto it = txs.index.find(e.data.substr(at + key.size(), 64));
          if (it == txs.index.end()) return;
          int64_t expected = 0;
          if (commit_ns[it->second].compare_exchange_strong(expected,
                                                            NowNs())) {
            committed_n.fetch_add(1);
            size_t code = e.data.find("\"code\":");
            if (code != std::string::npos &&
                e.data.compare(code + 7, 1, "0") != 0) {
              failed_results.fetch_add(1);
            }
          }
        });
  });
  // Let the stream open before the first tx.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  Json usage_before = ProcessUsage(t);
  auto client_before = ReadProcUsage(::getpid());
  const uint64_t per_api = ConnectionsPerApi(t, o);
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Authorization", "Bearer " + t.api_key}};
  std::atomic<uint64_t> next{0};
  const int64_t start_ns = NowNs();
  const uint64_t start_ms =
      static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  const int64_t end_ns = start_ns + static_cast<int64_t>(o.duration_s * 1e9);
  const double req_interval_ns = o.rate > 0 ? 1e9 * reqsize / o.rate : 0;
  auto worker = [&](const HttpTarget& api) {
    KeepAliveConnection conn(api.host, api.port, headers);
    const std::string path = o.batch_mode ? "/v1/txs:batch" : "/v1/txs";
    std::string body;
    while (true) {
      const uint64_t k = next.fetch_add(1);
      if (k >= nreq) return;
      if (o.rate > 0) {
        const int64_t due =
            start_ns + static_cast<int64_t>(req_interval_ns * k);
        if (due >= end_ns) return;
        int64_t now = NowNs();
        if (due > now) {
          std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
        } else if (now - due > 50'000'000) {
          late_sends.fetch_add(1);
        }
        int64_t lag = std::max<int64_t>(0, NowNs() - due);
        int64_t m = max_lag_ns.load();
        while (lag > m && !max_lag_ns.compare_exchange_weak(m, lag)) {
        }
      } else if (NowNs() >= end_ns) {
        return;
      }
      const uint64_t first = k * reqsize;
      // The txs of this request; as fast as accepted, those of a batch
      // refused one by one with 429 or 503 go again in a smaller batch.
      std::vector<uint64_t> idx(reqsize);
      for (uint64_t i = 0; i < reqsize; ++i) idx[i] = first + i;
      sent_txs.fetch_add(reqsize);
      while (true) {
        if (o.batch_mode) {
          body = "{\"txs\":[";
          for (size_t i = 0; i < idx.size(); ++i) {
            if (i > 0) body += ',';
            body += txs.json[idx[i]];
          }
          body += "]}";
        } else {
          body = txs.json[first];
        }
        const int64_t now = NowNs();
        for (uint64_t i : idx) sent_ns[i].store(now);
        requests.fetch_add(1);
        auto res = conn.Call("POST", path, body);
        if (!res.ok()) {
          transport_errors.fetch_add(idx.size());
          break;
        }
        Json j = Json::parse(res->body, nullptr, false);
        // Refused as a whole (one tx, or a batch): as fast as accepted sends
        // it again after a pause; at a fixed rate it is counted and dropped.
        const bool whole_refused =
            !(res->status == 202 || (res->status == 200 && !o.batch_mode) ||
              (res->status == 200 && o.batch_mode && j.contains("results")));
        // Whether a refusal with this status is sent again (after a pause).
        auto again = [&](int status) {
          return o.rate == 0 && (status == 429 || status == 503) &&
                 NowNs() < end_ns;
        };
        if (whole_refused) {
          const bool retry = again(res->status);
          {
            std::lock_guard<std::mutex> l(mu);
            refused[RefusalReason(res->status, j)] += idx.size();
            if (!retry) refused_n += idx.size();
          }
          if (retry) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
          }
          break;
        }
        if (!o.batch_mode) {
          accepted[first].store(1);
          accepted_n.fetch_add(1);
          break;
        }
        const Json& results = j["results"];
        static const Json kNoResult;
        std::vector<uint64_t> retry;
        for (size_t i = 0; i < idx.size(); ++i) {
          const Json& r = i < results.size() ? results[i] : kNoResult;
          if (r.is_object() && r.value("status", "") == "pending") {
            accepted[idx[i]].store(1);
            accepted_n.fetch_add(1);
            continue;
          }
          const Json p =
              r.is_object() && r.contains("problem") ? r["problem"] : Json();
          const int status = p.is_object() ? p.value("status", 0) : 0;
          std::lock_guard<std::mutex> l(mu);
          refused[RefusalReason(status, p)] += 1;
          if (again(status)) {
            retry.push_back(idx[i]);
          } else {
            ++refused_n;
          }
        }
        if (!retry.empty()) {
          idx = std::move(retry);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          continue;
        }
        break;
      }
    }
  };
  std::vector<std::thread> workers;
  for (const HttpTarget& api : t.apis) {
    for (uint64_t c = 0; c < per_api; ++c) workers.emplace_back(worker, api);
  }
  for (auto& w : workers) w.join();
  const int64_t load_end_ns = NowNs();
  const uint64_t load_end_ms =
      static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  const bool exhausted =
      next.load() >= nreq && load_end_ns < end_ns - 1'000'000'000;

  // Drain: until every accepted tx is committed, giving up after --drain
  // seconds without a new commit (a full pool takes a while to empty).
  {
    uint64_t seen = committed_n.load();
    int64_t last_progress = NowNs();
    while (committed_n.load() < accepted_n.load() &&
           NowNs() - last_progress < static_cast<int64_t>(o.drain_s * 1e9)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (committed_n.load() != seen) {
        seen = committed_n.load();
        last_progress = NowNs();
      }
    }
  }
  const double drain_s = (NowNs() - load_end_ns) / 1e9;
  stop_events = true;
  events.join();
  Json usage_after = ProcessUsage(t);
  auto client_after = ReadProcUsage(::getpid());

  // Accepted but not seen on the stream (a stream problem must not count as
  // a lost tx): a few are asked for one by one, many are looked for in the
  // blocks' tx lists; still missing: lost.
  std::vector<uint64_t> unseen;
  for (uint64_t i = 0; i < count; ++i) {
    if (accepted[i].load() != 0 && commit_ns[i].load() == 0) {
      unseen.push_back(i);
    }
  }
  uint64_t confirmed_by_query = 0, lost = 0;
  std::vector<std::string> lost_examples;
  std::vector<uint8_t> found(count, 0);
  if (unseen.size() > 200) {
    auto tip = LatestHeight(t.apis[0]);
    for (uint64_t h = from; tip.ok() && h <= *tip; ++h) {
      auto b = GetJsonFrom(t.apis[0], absl::StrCat("/v1/blocks/", h));
      if (!b.ok() || !(*b)["tx_hashes"].is_array()) continue;
      for (const Json& th : (*b)["tx_hashes"]) {
        auto it = txs.index.find(th.get<std::string>());
        if (it != txs.index.end()) found[it->second] = 1;
      }
    }
  }
  for (uint64_t i : unseen) {
    bool committed_now = found[i] != 0;
    if (!committed_now && unseen.size() <= 200) {
      auto res = HttpCall(t.apis[0], "GET", "/v1/txs/" + txs.hash[i], "", "",
                          absl::Seconds(10));
      committed_now = res.ok() && res->status == 200;
    }
    if (committed_now) {
      ++confirmed_by_query;
    } else {
      ++lost;
      if (lost_examples.size() < 5) lost_examples.push_back(txs.hash[i]);
    }
  }

  // Latency.
  std::vector<double> lat;
  lat.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const int64_t c = commit_ns[i].load();
    if (c != 0 && accepted[i].load() != 0) {
      lat.push_back((c - sent_ns[i].load()) / 1e6);
    }
  }
  const size_t nlat = lat.size();
  const double p50 = Quantile(lat, 0.5), p99 = Quantile(lat, 0.99);
  const double lmax = lat.empty() ? 0 : lat.back();

  // Steady state from the chain's blocks: those stamped within the load
  // (after --warmup), windows of 10 blocks.
  auto blocks = ReadBlocks(t.apis[0], from);
  if (!blocks.ok()) return blocks.status();
  // When the pre-signed txs ran out before --duration, the network still
  // works through its backlog: the steady state lasts until the block before
  // the last one that holds any of them.
  uint64_t steady_end_ms = load_end_ms;
  if (exhausted) {
    uint64_t last = 0, before_last = 0;
    for (const BlockInfo& b : *blocks) {
      if (b.tx_count > 0) {
        before_last = last;
        last = b.time_ms;
      }
    }
    steady_end_ms = std::max(load_end_ms, before_last);
  }
  std::vector<BlockInfo> steady;
  uint64_t block_txs = 0;
  for (const BlockInfo& b : *blocks) {
    block_txs += b.tx_count;
    if (b.time_ms >= start_ms + static_cast<uint64_t>(o.warmup_s * 1000) &&
        b.time_ms <= steady_end_ms) {
      steady.push_back(b);
    }
  }
  double tps = 0;
  std::vector<double> windows;
  constexpr size_t kWindow = 10;
  if (steady.size() >= 2 && steady.back().time_ms > steady.front().time_ms) {
    uint64_t n = 0;
    for (size_t i = 1; i < steady.size(); ++i) n += steady[i].tx_count;
    tps = n * 1000.0 / (steady.back().time_ms - steady.front().time_ms);
  }
  for (size_t j = 0; j + kWindow < steady.size(); ++j) {
    uint64_t n = 0;
    for (size_t i = j + 1; i <= j + kWindow; ++i) n += steady[i].tx_count;
    const uint64_t span = steady[j + kWindow].time_ms - steady[j].time_ms;
    if (span > 0) windows.push_back(n * 1000.0 / span);
  }
  const size_t nwin = windows.size();
  const double wmed = Quantile(windows, 0.5);
  const double wmin = windows.empty() ? 0 : windows.front();
  const double wmax = windows.empty() ? 0 : windows.back();

  const uint64_t committed = committed_n.load() + confirmed_by_query;
  Json procs = Json::array();
  double cpu_all = 0;
  for (size_t i = 0; i < usage_after.size(); ++i) {
    Json p = usage_after[i];
    if (i < usage_before.size() && usage_before[i].contains("cpu_s_total") &&
        p.contains("cpu_s_total")) {
      const double cpu = p["cpu_s_total"].get<double>() -
                         usage_before[i]["cpu_s_total"].get<double>();
      p["cpu_s"] = cpu;
      cpu_all += cpu;
      p["cpu_ms_per_committed_tx"] =
          committed > 0 ? cpu * 1000.0 / committed : 0.0;
    }
    procs.push_back(p);
  }
  Json out;
  out["mode"] = o.batch_mode ? "batch" : "single";
  out["batch"] = reqsize;
  out["offered_rate"] = o.rate > 0 ? Json(o.rate) : Json("max");
  out["duration_s"] = o.duration_s;
  out["load_s"] = (load_end_ns - start_ns) / 1e9;
  out["drain_s"] = drain_s;
  out["connections"] = per_api * t.apis.size();
  out["presigned_txs"] = count;
  out["txs_exhausted"] = exhausted;
  out["requests"] = requests.load();
  out["sent_txs"] = sent_txs.load();
  out["accepted_txs"] = accepted_n.load();
  // Txs that were never accepted; with --rate max a refused request is sent
  // again, so refusals (by reason, counted per tx and per answer) can exceed
  // the txs sent.
  out["refused_txs"] = refused_n;
  out["refusals_by_reason"] = Json(refused);
  out["transport_errors"] = transport_errors.load();
  out["committed_txs"] = committed;
  out["committed_seen_by_query_only"] = confirmed_by_query;
  out["failed_results"] = failed_results.load();
  out["lost_txs"] = lost;
  out["lost_examples"] = lost_examples;
  out["committed_tps"] = tps;
  out["ratio_to_ceiling"] = o.ceiling > 0 ? tps / o.ceiling : 0.0;
  out["tps_windows"] = {
      {"blocks_per_window", kWindow},
      {"steady_s",
       steady.size() >= 2
           ? (steady.back().time_ms - steady.front().time_ms) / 1000.0
           : 0.0},
      {"windows", nwin},
      {"steady_blocks", steady.size()},
      {"min", wmin},
      {"median", wmed},
      {"max", wmax}};
  out["blocks"] = {
      {"from_height", from}, {"count", blocks->size()}, {"txs", block_txs}};
  out["latency_ms"] = {
      {"count", nlat}, {"p50", p50}, {"p99", p99}, {"max", lmax}};
  out["send_lag"] = {{"max_ms", max_lag_ns.load() / 1e6},
                     {"late_requests", late_sends.load()}};
  out["event_stream_resumes"] = resumes;
  out["processes"] = procs;
  // The CPU view, which a shared machine disturbs less than the wall clock:
  // the service processes' CPU per committed tx against the one
  // verification per tx per node they cannot avoid.
  const double cpu_ms_per_tx =
      committed > 0 ? cpu_all * 1000.0 / static_cast<double>(committed) : 0;
  const double floor_ms = o.verify_ms * static_cast<double>(t.validators);
  out["cpu"] = {
      {"services_cpu_s", cpu_all},
      {"services_cpu_ms_per_committed_tx", cpu_ms_per_tx},
      {"verify_cpu_ms_per_tx_all_nodes", floor_ms},
      {"verify_share_of_services_cpu", t.procs.empty() || cpu_ms_per_tx <= 0
                                           ? Json(nullptr)
                                           : Json(floor_ms / cpu_ms_per_tx)},
      {"client_cpu_s", client_before.ok() && client_after.ok()
                           ? client_after->cpu_s - client_before->cpu_s
                           : 0.0}};

  // --reads, after everything above was measured: the run's committed txs,
  // its heights and the kv keys its txs set.
  if (o.reads_s > 0) {
    std::vector<std::string> tx_paths, key_paths, height_paths;
    for (uint64_t i = 0; i < count; ++i) {
      if (accepted[i].load() != 0 &&
          (commit_ns[i].load() != 0 || found[i] != 0)) {
        tx_paths.push_back("/v1/txs/" + txs.hash[i]);
        key_paths.push_back("/v1/state/kv/" + txs.KvKey(i));
      }
    }
    for (const BlockInfo& b : *blocks) {
      height_paths.push_back(absl::StrCat("/v1/blocks/", b.height));
    }
    Json reads = Json::object();
    for (const auto& [route, paths] :
         {std::pair{"/v1/txs/{hash}", &tx_paths},
          std::pair{"/v1/blocks/{height}", &height_paths},
          std::pair{"/v1/state/kv/{key}", &key_paths}}) {
      std::fprintf(stderr, "  reading GET %s (%zu items) for %.0f s...\n",
                   route, paths->size(), o.reads_s);
      reads[route] = ReadRoute(t, per_api, *paths, o.reads_s);
    }
    out["reads"] = reads;
  }
  return out;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("model name")) {
      size_t c = line.find(':');
      if (c != std::string::npos) return line.substr(c + 2);
    }
  }
  return "unknown";
}

std::string LoadAvg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return absl::StrCat(a, " ", b, " ", c);
}

void PrintPhase(const std::string& layout, const Json& r) {
  std::fprintf(
      stderr,
      "  %s %s: committed %.0f TPS (%.2f of the ceiling; %zu windows of 10 "
      "blocks), latency p50 %.0f ms p99 %.0f ms max %.0f ms, accepted %llu, "
      "refused %llu, lost %llu; services %.3f CPU-ms per tx (one verify "
      "per node: %.0f%% of it)\n",
      layout.c_str(), r["mode"].get<std::string>().c_str(),
      r["committed_tps"].get<double>(), r["ratio_to_ceiling"].get<double>(),
      r["tps_windows"]["windows"].get<size_t>(),
      r["latency_ms"]["p50"].get<double>(),
      r["latency_ms"]["p99"].get<double>(),
      r["latency_ms"]["max"].get<double>(),
      static_cast<unsigned long long>(r["accepted_txs"].get<uint64_t>()),
      static_cast<unsigned long long>(r["refused_txs"].get<uint64_t>()),
      static_cast<unsigned long long>(r["lost_txs"].get<uint64_t>()),
      r["cpu"]["services_cpu_ms_per_committed_tx"].get<double>(),
      r["cpu"]["verify_share_of_services_cpu"].is_null()
          ? 0.0
          : 100 * r["cpu"]["verify_share_of_services_cpu"].get<double>());
}

void PrintReads(const std::string& layout, const Json& r) {
  if (!r.contains("reads")) return;
  for (const auto& [route, x] : r["reads"].items()) {
    std::fprintf(
        stderr,
        "  %s %s reads GET %s: %llu reads of %llu items, %.0f reads/s, "
        "latency p50 %.1f ms p99 %.1f ms max %.1f ms, non-200 %llu\n",
        layout.c_str(), r["mode"].get<std::string>().c_str(), route.c_str(),
        static_cast<unsigned long long>(x["reads"].get<uint64_t>()),
        static_cast<unsigned long long>(x["items"].get<uint64_t>()),
        x["reads_per_s"].get<double>(), x["latency_ms"]["p50"].get<double>(),
        x["latency_ms"]["p99"].get<double>(),
        x["latency_ms"]["max"].get<double>(),
        static_cast<unsigned long long>(x["non_200"].get<uint64_t>()));
  }
}

bool PortFree(uint64_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok =
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// The API port of a bench network on base port `base`: clear of node i's
// ports (base + 100 i + {1..5, 60..63, 80..83}, localnet.cc).
uint64_t BenchApiPort(uint64_t base) { return base + 90; }

// A base port whose localnet ports (for `validators` nodes) are all free a
// moment ago, picked at random in 20000..39999 (below the ephemeral range),
// so that benches and tests started together do not collide.
uint64_t PickBasePort(uint64_t validators) {
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 200; ++attempt) {
    const uint64_t base = 20000 + rng() % 200 * 100;
    bool free = true;
    for (uint64_t i = 0; i < validators && free; ++i) {
      for (uint64_t off : {1, 2, 3, 4, 5, 60, 61, 62, 63, 80, 81, 82, 83}) {
        free = free && PortFree(base + 100 * i + off);
      }
      free = free && PortFree(BenchApiPort(base) + i);
    }
    if (free) return base;
  }
  return 0;
}

// --catch-up: starts node `node` again (stopped at height `from`) and
// polls its GET /v1/blocks/latest every 100 ms until it reaches the height
// node 0 had at the restart, for at most `limit_s` seconds. The time
// includes the processes' start; the txs are those of the blocks it caught
// up (node 0's).
Json CatchUp(Localnet& net, uint64_t node, uint64_t from, double limit_s) {
  const HttpTarget live = net.apis()[0];
  auto tip = LatestHeight(live);
  const uint64_t target = tip.ok() ? *tip : 0;
  const int64_t start_ns = NowNs();
  const absl::Status started = net.StartNode(node);
  uint64_t reached = from;
  bool done = false;
  while (started.ok()) {
    auto h = LatestHeight(net.apis()[node]);
    if (h.ok()) reached = std::max(reached, *h);
    if (reached >= target) {
      done = true;
      break;
    }
    if (NowNs() - start_ns > static_cast<int64_t>(limit_s * 1e9)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double secs = (NowNs() - start_ns) / 1e9;
  // What it caught up: to the target (it may be a block or so beyond it by
  // the time it answers), or as far as it got.
  const uint64_t upto = done ? target : reached;
  uint64_t txs = 0;
  if (auto blocks = ReadBlocks(live, from + 1); blocks.ok()) {
    for (const BlockInfo& b : *blocks) {
      if (b.height <= upto) txs += b.tx_count;
    }
  }
  const uint64_t heights = upto > from ? upto - from : 0;
  Json out = {{"node", node},
              {"from_height", from},
              {"target_height", target},
              {"reached_height", reached},
              {"reached", done},
              {"heights", heights},
              {"txs", txs},
              {"seconds", secs},
              {"heights_per_s", secs > 0 ? heights / secs : 0.0},
              {"txs_per_s", secs > 0 ? txs / secs : 0.0}};
  if (!started.ok()) out["error"] = std::string(started.message());
  return out;
}

void PrintCatchUp(const std::string& layout, const std::string& mode,
                  uint64_t node, const Json& c) {
  std::fprintf(
      stderr,
      "  %s %s catch-up of node%llu: %s height %llu -> %llu (target %llu): "
      "%llu heights, %llu txs in %.1f s (%.0f heights/s, %.0f txs/s)\n",
      layout.c_str(), mode.c_str(), static_cast<unsigned long long>(node),
      c["reached"].get<bool>() ? "caught up," : "NOT caught up,",
      static_cast<unsigned long long>(c["from_height"].get<uint64_t>()),
      static_cast<unsigned long long>(c["reached_height"].get<uint64_t>()),
      static_cast<unsigned long long>(c["target_height"].get<uint64_t>()),
      static_cast<unsigned long long>(c["heights"].get<uint64_t>()),
      static_cast<unsigned long long>(c["txs"].get<uint64_t>()),
      c["seconds"].get<double>(), c["heights_per_s"].get<double>(),
      c["txs_per_s"].get<double>());
}

// redis-server on PATH (else /usr/bin's, Debian's package), or "".
std::string FindRedisServer() {
  const char* path = std::getenv("PATH");
  std::vector<std::string> dirs;
  if (path != nullptr) dirs = absl::StrSplit(path, ':', absl::SkipEmpty());
  dirs.push_back("/usr/bin");
  for (const std::string& d : dirs) {
    const std::string bin = d + "/redis-server";
    if (::access(bin.c_str(), X_OK) == 0) return bin;
  }
  return "";
}

// True once a PING to 127.0.0.1:port is answered +PONG (not -LOADING).
bool RedisPong(uint16_t port) {
  const int fd = ConnectTcp("127.0.0.1", port);
  if (fd < 0) return false;
  timeval tv{0, 500000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  bool ok = false;
  if (::send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
    char buf[64];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    ok = n >= 5 && std::string_view(buf, 5) == "+PONG";
  }
  ::close(fd);
  return ok;
}

// --backend redis: a redis-server of one node's own on a free 127.0.0.1
// port (not one of `taken`), its files in dir, with the persistence
// docs/storage.md asks for (appendonly yes, appendfsync always, no RDB
// snapshots; the storage service refuses weaker settings). Ready once it
// answers PING.
struct RedisServer {
  ChildProcess process;
  uint16_t port = 0;
};
absl::StatusOr<RedisServer> StartRedis(
    const std::string& bin, const std::string& dir,
    const std::function<bool(uint16_t)>& taken) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  absl::Status last = absl::UnavailableError("no free port for redis-server");
  // A port picked free may be taken before redis binds it: try a few.
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto port = PickFreePort();
    if (!port.ok()) return port.status();
    if (taken(*port)) continue;
    auto p = ChildProcess::Start(
        {bin, "--port", absl::StrCat(*port), "--bind", "127.0.0.1", "--dir",
         dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
         "--daemonize", "no", "--logfile", ""},
        dir + "/redis.log");
    if (!p.ok()) return p.status();
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline && p->running() && !RedisPong(*port)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (p->running() && RedisPong(*port)) {
      return RedisServer{*std::move(p), *port};
    }
    p->Stop();
    last = absl::UnavailableError(absl::StrCat("redis-server on port ", *port,
                                               " did not start; see ", dir,
                                               "/redis.log"));
  }
  return last;
}

}  // namespace

int BenchCommand(const std::vector<std::string>& argv,
                 const std::string& self) {
  auto args = Args::Parse(
      argv, {"validators", "rate",     "duration",       "drain",   "warmup",
             "batch",      "mode",     "connections",    "max-txs", "out",
             "dir",        "api",      "api-key",        "genesis", "pids",
             "base-port",  "api-port", "verify-seconds", "reads",   "down",
             "backend"},
      {"split", "single-process", "compare-single", "keep", "catch-up"});
  if (!args.ok()) return Fail(args.status());
  auto validators = args->GetU64("validators", 1);
  auto batch = args->GetU64("batch", 100);
  auto connections = args->GetU64("connections", 0);
  auto max_txs = args->GetU64("max-txs", 150000);
  auto down = args->GetU64("down", 0);
  if (!down.ok()) return Fail(down.status());
  if (!validators.ok()) return Fail(validators.status());
  if (!batch.ok()) return Fail(batch.status());
  if (!connections.ok()) return Fail(connections.status());
  if (!max_txs.ok()) return Fail(max_txs.status());
  auto number = [&](const char* name, double def) -> absl::StatusOr<double> {
    if (!args->Has(name)) return def;
    double v = 0;
    if (!absl::SimpleAtod(args->Get(name), &v) || v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " must be a number >= 0"));
    }
    return v;
  };
  auto duration = number("duration", 30);
  auto drain = number("drain", 30);
  auto warmup = number("warmup", 2);
  auto verify_s = number("verify-seconds", 2);
  auto reads = number("reads", 0);
  for (auto* v : {&duration, &drain, &warmup, &verify_s, &reads}) {
    if (!v->ok()) return Fail(v->status());
  }
  double rate = 0;
  if (std::string r = args->Get("rate", "max"); r != "max") {
    if (!absl::SimpleAtod(r, &rate) || rate <= 0) {
      return Fail(absl::InvalidArgumentError(
          "--rate must be txs per second (> 0) or max"));
    }
  }
  const std::string mode = args->Get("mode", "both");
  if (mode != "single" && mode != "batch" && mode != "both") {
    return Fail(
        absl::InvalidArgumentError("--mode must be single, batch or both"));
  }
  if (*batch < 1 || *batch > 10000) {
    return Fail(absl::InvalidArgumentError("--batch must be in 1..10000"));
  }
  const bool external = args->Has("api");
  const bool catch_up = args->Has("catch-up");
  const std::string backend = args->Get("backend", "rocksdb");
  if (backend != "rocksdb" && backend != "redis") {
    return Fail(
        absl::InvalidArgumentError("--backend must be rocksdb or redis"));
  }
  if (external && (*down > 0 || catch_up || args->Has("backend"))) {
    return Fail(absl::InvalidArgumentError(
        "--down, --catch-up and --backend are for a network the bench starts; "
        "not with --api"));
  }
  // Stopped nodes: a chain of n validators commits with fewer than n / 3
  // of them down (BFT: more than 2/3 of the votes).
  if (*down > 0 && 3 * *down >= *validators) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--down ", *down, " stops too many of ", *validators,
        " validators: the chain commits only with fewer than validators / 3 "
        "down (e.g. --validators 4 --down 1)")));
  }
  if (catch_up && (*validators < 4 || *down > 0)) {
    return Fail(absl::InvalidArgumentError(
        "--catch-up stops one of at least 4 validators during the load: use "
        "--validators 4 or more, without --down"));
  }
  std::string redis_bin;
  if (backend == "redis") {
    redis_bin = FindRedisServer();
    if (redis_bin.empty()) {
      return Fail(absl::InvalidArgumentError(
          "--backend redis needs redis-server (Debian: apt-get install "
          "redis-server)"));
    }
  }
  std::vector<std::string> layouts;
  if (external) {
    if (args->Has("compare-single") || args->Has("single-process") ||
        args->Has("split")) {
      return Fail(absl::InvalidArgumentError(
          "--split, --single-process and --compare-single start a network; "
          "with --api the bench loads the running one"));
    }
    layouts = {"external"};
  } else if (args->Has("compare-single")) {
    if (*validators != 1) {
      return Fail(absl::InvalidArgumentError(
          "--compare-single compares one validator split and in one process: "
          "use --validators 1"));
    }
    layouts = {"split", "single-process"};
  } else if (args->Has("single-process")) {
    if (args->Has("split")) {
      return Fail(absl::InvalidArgumentError(
          "--split and --single-process exclude each other (--compare-single "
          "runs both)"));
    }
    layouts = {"single-process"};
  } else {
    layouts = {"split"};
  }

  // The chain's suite, chain id and rules: from --genesis for a running
  // network, a new localnet's otherwise.
  Genesis genesis;
  if (external) {
    auto g = LoadGenesis(args->Get("genesis"));
    if (!args->Has("genesis") || !g.ok()) {
      return Fail(absl::InvalidArgumentError(
          "--api needs --genesis FILE: the chain id, suite and validators of "
          "the running network"));
    }
    genesis = *g;
  }
  auto suite = GetCryptoSuite(genesis.crypto_suite);
  if (!suite.ok()) return Fail(suite.status());
  const uint64_t nval = external ? genesis.validators.size() : *validators;

  Json result;
  result["bench_version"] = 1;
  result["started_at"] = absl::FormatTime(absl::Now());
  const uint64_t ncpu = std::max(1u, std::thread::hardware_concurrency());
  result["machine"] = {{"nproc", ncpu},
                       {"cpu_model", CpuModel()},
                       {"loadavg_before", LoadAvg()}};
  // 1. The limit, before any load.
  std::fprintf(stderr, "measuring %s verification on %llu threads...\n",
               std::string((*suite)->name()).c_str(),
               static_cast<unsigned long long>(ncpu));
  VerifyRate vr = MeasureVerifyRate(**suite, ncpu, *verify_s);
  // With --down the stopped nodes verify nothing: the ceiling is that of
  // the running ones.
  const uint64_t running = nval - *down;
  const double ceiling = vr.per_s / static_cast<double>(running);
  result["suite"] = (*suite)->name();
  result["verify"] = {{"verifies_per_s", vr.per_s},
                      {"verifies_per_cpu_s", vr.per_cpu_s},
                      {"threads", vr.threads},
                      {"seconds", vr.seconds},
                      {"verified", vr.verified}};
  result["validators"] = nval;
  result["ceiling_tps"] = ceiling;
  std::fprintf(stderr,
               "  %.0f verifies/s on %llu threads (%.0f per CPU-second); "
               "ceiling %.0f TPS for %llu validator(s)\n",
               vr.per_s, static_cast<unsigned long long>(ncpu), vr.per_cpu_s,
               ceiling, static_cast<unsigned long long>(running));
  result["config"] = {{"rate", rate > 0 ? Json(rate) : Json("max")},
                      {"duration_s", *duration},
                      {"drain_s", *drain},
                      {"warmup_s", *warmup},
                      {"batch", *batch},
                      {"mode", mode},
                      {"connections_per_api", *connections},
                      {"max_txs", *max_txs},
                      {"reads_s", *reads},
                      {"down", *down},
                      {"catch_up", catch_up},
                      {"backend", backend}};

  LoadOptions lo;
  lo.batch = *batch;
  lo.rate = rate;
  lo.duration_s = *duration;
  lo.drain_s = *drain;
  lo.warmup_s = *warmup;
  lo.connections = *connections;
  lo.max_txs = *max_txs;
  lo.reads_s = *reads;
  lo.ceiling = ceiling;
  lo.verify_ms = vr.per_cpu_s > 0 ? 1000.0 / vr.per_cpu_s : 0;
  std::vector<bool> modes;
  if (mode != "batch") modes.push_back(false);
  if (mode != "single") modes.push_back(true);

  bool ok = true;
  Json runs = Json::array();
  std::map<std::string, std::map<std::string, double>> tps_of;  // layout, mode
  for (const std::string& layout : layouts) {
    Target t;
    t.suite = *suite;
    t.validators = running;
    // Declared before net: stopped after it.
    std::vector<RedisServer> redis;
    std::unique_ptr<Localnet> net;
    std::string dir;
    if (external) {
      for (absl::string_view u : absl::StrSplit(args->Get("api"), ',')) {
        auto target = ParseHttpUrl(std::string(u));
        if (!target.ok()) return Fail(target.status());
        if (target->tls || !target->base_path.empty()) {
          return Fail(
              absl::InvalidArgumentError("the bench talks plain HTTP to an "
                                         "api's root (http://host:port)"));
        }
        t.apis.push_back(*target);
      }
      const char* env = std::getenv("CONSORTIA_API_KEY");
      t.api_key = args->Get("api-key", env != nullptr ? env : "");
      t.chain_id = genesis.chain_id;
      t.replay_window = genesis.rules.replay_window;
      if (args->Has("pids")) {
        for (absl::string_view p : absl::StrSplit(args->Get("pids"), ',')) {
          int pid = 0;
          if (!absl::SimpleAtoi(p, &pid) || pid <= 0) {
            return Fail(absl::InvalidArgumentError("--pids takes pids: 1,2,3"));
          }
          t.procs.emplace_back(absl::StrCat("pid ", pid), pid);
        }
      }
    } else {
      // A fresh network in its own directory (the chain starts empty).
      if (args->Has("dir")) {
        dir = fs::absolute(args->Get("dir")).string() + "/" + layout;
        std::error_code ec;
        fs::remove_all(dir, ec);
        fs::create_directories(dir, ec);
      } else {
        std::string tmpl =
            (fs::temp_directory_path() / "consortia-bench-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
          return Fail(absl::InternalError("cannot make a temporary directory"));
        }
        dir = tmpl;
      }
      // The bench's own key: quotas that never limit the load.
      auto key = EnsureApiKey(
          dir + "/api_keys.json", dir + "/bench_api_key", "bench",
          OrgQuotas{1e9, 1000000000, 1e12, 1000000000000}, "consortia bench");
      if (!key.ok()) return Fail(key.status());
      t.api_key = *key;
      LocalnetOptions opt;
      opt.dir = dir;
      // Free ports unless given, so that benches started together (and a
      // localnet on the default ports) do not collide.
      auto base = args->GetU64("base-port",
                               args->Has("base-port") ? 0 : PickBasePort(nval));
      auto api_port =
          args->GetU64("api-port", BenchApiPort(base.ok() ? *base : 0));
      if (!base.ok()) return Fail(base.status());
      if (!api_port.ok()) return Fail(api_port.status());
      opt.base_port = *base;
      opt.api_port = *api_port;
      opt.validators = nval;
      opt.single_process = layout == "single-process";
      opt.verbose = false;
      if (backend == "redis") {
        // One redis-server per node, on ports clear of the network's.
        auto taken = [&](uint16_t port) {
          if (port >= opt.base_port && port < opt.base_port + 100 * nval) {
            return true;
          }
          if (port >= opt.api_port && port < opt.api_port + nval) return true;
          for (const RedisServer& r : redis) {
            if (r.port == port) return true;
          }
          return false;
        };
        for (uint64_t i = 0; i < nval; ++i) {
          auto r = StartRedis(redis_bin, absl::StrCat(dir, "/redis", i), taken);
          if (!r.ok()) return Fail(r.status());
          opt.storage_flags.push_back(
              {"--storage_backend=redis",
               absl::StrCat("--storage_redis_port=", r->port)});
          redis.push_back(*std::move(r));
        }
      }
      // Pre-signed txs must stay valid through the run and its drain: with
      // one validator an idle chain makes tens of blocks a second, so the
      // default window of 1,000 heights would expire them.
      opt.replay_window = kBenchReplayWindow;
      std::fprintf(stderr, "starting %llu validator(s), %s, in %s...\n",
                   static_cast<unsigned long long>(nval), layout.c_str(),
                   dir.c_str());
      auto started = StartLocalnet(opt, self);
      if (!started.ok()) return Fail(started.status());
      net = *std::move(started);
      auto g = LoadGenesis(dir + "/genesis.json");
      if (!g.ok()) return Fail(g.status());
      t.chain_id = g->chain_id;
      t.replay_window = g->rules.replay_window;
      // --down: the last N nodes stop before the load, for good.
      for (uint64_t i = nval - *down; i < nval; ++i) {
        std::fprintf(stderr, "  stopping node%llu (--down)\n",
                     static_cast<unsigned long long>(i));
        net->StopNode(i);
      }
    }
    // The apis loaded and the processes measured: the live nodes' (all but
    // the --down ones, and the --catch-up one while it is stopped).
    auto live_nodes = [&](uint64_t live) {
      t.apis.assign(net->apis().begin(), net->apis().begin() + live);
      t.procs.clear();
      for (LocalnetProcess& p : net->processes()) {
        if (p.stopped || p.node >= live) continue;
        t.procs.emplace_back(absl::StrCat("node", p.node, "/", p.binary),
                             p.process.pid());
      }
      for (uint64_t i = 0; i < redis.size() && i < live; ++i) {
        t.procs.emplace_back(absl::StrCat("node", i, "/redis-server"),
                             redis[i].process.pid());
      }
    };
    if (net != nullptr) live_nodes(nval - *down);
    for (bool batch_mode : modes) {
      lo.batch_mode = batch_mode;
      // --catch-up: the last node stops before the load and starts again
      // after it.
      const uint64_t lagging = nval - 1;
      uint64_t lagging_height = 0;
      if (catch_up) {
        auto h = LatestHeight(net->apis()[lagging]);
        lagging_height = h.ok() ? *h : 0;
        std::fprintf(stderr,
                     "  stopping node%llu at height %llu (--catch-up)\n",
                     static_cast<unsigned long long>(lagging),
                     static_cast<unsigned long long>(lagging_height));
        net->StopNode(lagging);
        live_nodes(lagging);
      }
      std::fprintf(stderr, "%s, %s: %s for %.0f s...\n", layout.c_str(),
                   batch_mode ? absl::StrCat("batches of ", *batch).c_str()
                              : "one tx per request",
                   rate > 0 ? absl::StrCat(rate, " txs/s").c_str()
                            : "as fast as accepted",
                   *duration);
      auto r = RunLoad(t, lo);
      if (!r.ok()) {
        std::fprintf(stderr, "  failed: %s\n",
                     std::string(r.status().message()).c_str());
        ok = false;
        runs.push_back({{"layout", layout},
                        {"mode", batch_mode ? "batch" : "single"},
                        {"error", std::string(r.status().message())}});
        if (catch_up) {
          (void)net->StartNode(lagging);
          live_nodes(nval);
        }
        continue;
      }
      (*r)["layout"] = layout;
      (*r)["replay_window"] = t.replay_window;
      (*r)["down"] = *down;
      (*r)["backend"] = backend;
      PrintPhase(layout, *r);
      PrintReads(layout, *r);
      if (catch_up) {
        Json cu = CatchUp(*net, lagging, lagging_height, *drain);
        PrintCatchUp(layout, (*r)["mode"].get<std::string>(), lagging, cu);
        if (!cu["reached"].get<bool>()) ok = false;
        (*r)["catch_up"] = cu;
        live_nodes(nval);
      }
      if ((*r)["lost_txs"].get<uint64_t>() > 0 ||
          (*r)["committed_txs"].get<uint64_t>() == 0) {
        ok = false;
      }
      tps_of[layout][(*r)["mode"].get<std::string>()] =
          (*r)["committed_tps"].get<double>();
      runs.push_back(*r);
    }
    if (net != nullptr) {
      if (const LocalnetProcess* dead = net->FirstDead(); dead != nullptr) {
        std::fprintf(stderr, "%s exited during the bench; see %s\n",
                     dead->binary.c_str(), dead->log.c_str());
        ok = false;
      }
      net->Stop();
      if (!args->Has("keep")) {
        std::error_code ec;
        fs::remove_all(dir, ec);
      }
    }
  }
  result["runs"] = runs;
  Json ratio = nullptr;
  if (tps_of.count("split") && tps_of.count("single-process")) {
    ratio = Json::object();
    for (const auto& [m, v] : tps_of["split"]) {
      const double single = tps_of["single-process"][m];
      ratio[m] = single > 0 ? v / single : 0.0;
      std::fprintf(stderr, "split / single-process (%s): %.2f\n", m.c_str(),
                   single > 0 ? v / single : 0.0);
    }
  }
  result["split_over_single"] = ratio;
  result["machine"]["loadavg_after"] = LoadAvg();
  result["ok"] = ok;
  const std::string text = result.dump(2) + "\n";
  if (args->Has("out")) {
    if (auto s = WriteFileAtomic(args->Get("out"), text); !s.ok()) {
      return Fail(s);
    }
  } else {
    std::fputs(text.c_str(), stdout);
  }
  if (!ok) {
    std::fprintf(stderr,
                 "consortia bench: FAILED (lost txs, nothing committed, a "
                 "process died or a run failed; see the JSON)\n");
  }
  return ok ? 0 : 1;
}

}  // namespace consortia::cli
