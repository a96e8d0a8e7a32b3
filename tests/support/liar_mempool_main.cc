// Test-only: consortia-mempool-liar, the mempool of a consortium member that
// lies. It takes the real mempool's flags and serves MempoolApi on the node's
// mempool endpoint, but admits every tx that decodes without checking its
// signature, chain or replay window, hands all of them out in every Reap, and
// vouches for every tx of every proposal. The end-to-end tests put it on one
// validator to show that the others never commit a forged tx. Built only
// with the tests (tests/CMakeLists.txt); never installed, never a flag of a
// shipped binary.
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "consortia/bus.h"
#include "consortia/config.h"
#include "consortia/genesis_file.h"
#include "consortia/log.h"
#include "consortia/mempool/mempool_service.h"
#include "consortia/metrics.h"
#include "consortia/service_api.h"
#include "consortia/service_main.h"
#include "consortia/thread_pool.h"
#include "consortia/types.h"
#include "zmq.hpp"

namespace consortia::testing {
namespace {

class LiarMempool final : public MempoolApi {
 public:
  explicit LiarMempool(const CryptoSuite& suite) : suite_(suite) {}

  absl::StatusOr<std::vector<SubmitResult>> Submit(
      const std::vector<Bytes>& raw_txs) override {
    std::vector<SubmitResult> out;
    absl::MutexLock lock(&mu_);
    for (const Bytes& raw : raw_txs) {
      SubmitResult r;
      absl::StatusOr<Transaction> tx = DecodeTx(raw);
      if (!tx.ok()) {
        r.code = Admission::kMalformed;
        r.detail = std::string(tx.status().message());
      } else {
        r.tx_hash = TxHash(suite_, *tx);
        pending_.push_back(raw);  // no signature check: the lie
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  absl::StatusOr<std::vector<Bytes>> Reap(const ReapRequest& req) override {
    absl::MutexLock lock(&mu_);
    std::vector<Bytes> out;
    uint64_t bytes = 0;
    for (const Bytes& t : pending_) {
      if (out.size() >= req.max_txs || bytes + t.size() > req.max_bytes) break;
      bytes += t.size();
      out.push_back(t);
    }
    return out;
  }

  absl::StatusOr<std::vector<ProposalTxCheck>> CheckProposal(
      const std::vector<Bytes>& raw_txs, uint64_t) override {
    std::vector<ProposalTxCheck> out(raw_txs.size());
    for (size_t i = 0; i < raw_txs.size(); ++i) {
      absl::StatusOr<Transaction> tx = DecodeTx(raw_txs[i]);
      if (tx.ok()) out[i].tx_hash = TxHash(suite_, *tx);
    }
    return out;  // every tx "accepted"
  }

 private:
  const CryptoSuite& suite_;
  absl::Mutex mu_;
  std::deque<Bytes> pending_ ABSL_GUARDED_BY(mu_);
};

class LiarMempoolService {
 public:
  static absl::StatusOr<std::unique_ptr<LiarMempoolService>> Start(
      const NodeConfig& node, const mempool::MempoolOptions&,
      zmq::context_t& ctx, MetricsRegistry&) {
    absl::StatusOr<Genesis> genesis = LoadGenesis(node.genesis_path);
    if (!genesis.ok()) return genesis.status();
    absl::StatusOr<const CryptoSuite*> suite =
        GetCryptoSuite(genesis->crypto_suite);
    if (!suite.ok()) return suite.status();
    auto s = std::unique_ptr<LiarMempoolService>(new LiarMempoolService());
    s->mempool_ = std::make_unique<LiarMempool>(**suite);
    s->pool_ = std::make_unique<ThreadPool>(2);
    absl::StatusOr<std::unique_ptr<BusServer>> server =
        StartBusServer(ctx, node.mempool_endpoint, "mempool-liar",
                       ServeMempool(s->mempool_.get(), s->pool_->AsExecutor()));
    if (!server.ok()) return server.status();
    s->server_ = *std::move(server);
    spdlog::warn(
        "TEST-ONLY lying mempool serving on {}: it checks no "
        "signature",
        node.mempool_endpoint);
    return s;
  }
  ~LiarMempoolService() {
    server_.reset();
    pool_.reset();
  }
  bool Ready() const { return true; }

 private:
  LiarMempoolService() = default;
  std::unique_ptr<LiarMempool> mempool_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<BusServer> server_;
};

}  // namespace
}  // namespace consortia::testing

int main(int argc, char** argv) {
  return consortia::RunServiceProcess<consortia::testing::LiarMempoolService,
                                      consortia::mempool::MempoolOptions>(
      argc, argv, "mempool-liar",
      "consortia-mempool-liar: TEST ONLY, a mempool that checks no signature.");
}
