#include "block_checker.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "consortia/log.h"

namespace consortia::consensus {
namespace {

using tendermint::BlockVerdict;

uint64_t NowMs(const Clock* clock) {
  return static_cast<uint64_t>(
      std::max<int64_t>(0, absl::ToUnixMillis(clock->Now())));
}

}  // namespace

BlockChecker::BlockChecker(const Genesis& genesis, const CryptoSuite& suite,
                           MempoolApi* mempool, BlockSource* blocks,
                           ThreadPool* verify_pool, const Clock* clock,
                           ConsensusMetrics metrics)
    : genesis_(genesis),
      suite_(suite),
      mempool_(mempool),
      blocks_(blocks),
      verify_pool_(verify_pool),
      clock_(clock),
      metrics_(std::move(metrics)) {}

std::string BlockChecker::HeaderProblem(const Block& block,
                                        const ChainState& parent) const {
  const BlockHeader& h = block.header;
  if (h.height != parent.height + 1) {
    return absl::StrCat("is for height ", h.height, ", not ",
                        parent.height + 1);
  }
  if (h.chain_id != genesis_.chain_id) return "is for another chain";
  if (h.prev_hash != parent.last_block_hash) {
    return "does not link to the last block";
  }
  if (h.state_root != parent.state_root ||
      h.receipts_root != parent.receipts_root) {
    return "carries other roots than executing the last block gave";
  }
  if (h.time_ms <= parent.last_time_ms) {
    return absl::StrCat("has time ", h.time_ms, ", not after the last block's ",
                        parent.last_time_ms);
  }
  const ChainRules& rules = parent.next_rules.value_or(genesis_.rules);
  if (block.txs.size() > rules.max_block_txs) {
    return absl::StrCat("holds ", block.txs.size(), " txs, over the limit of ",
                        rules.max_block_txs);
  }
  uint64_t bytes = 0;
  for (const Bytes& tx : block.txs) bytes += tx.size();
  if (bytes > rules.max_block_bytes) {
    return absl::StrCat("holds ", bytes, " tx bytes, over the limit of ",
                        rules.max_block_bytes);
  }
  return "";
}

BlockVerdict BlockChecker::Check(const Block& block, const ChainState& parent) {
  const absl::Time start = absl::Now();
  const uint64_t height = block.header.height;
  auto done = [&](BlockVerdict v, Counter& outcome) {
    outcome.Inc();
    metrics_.check_duration.Observe(absl::ToDoubleSeconds(absl::Now() - start));
    return v;
  };
  if (std::string problem = HeaderProblem(block, parent); !problem.empty()) {
    spdlog::warn("proposed block {} is invalid: it {}", height, problem);
    return done(BlockVerdict::kInvalid, metrics_.checks_invalid);
  }
  if (block.header.time_ms > NowMs(clock_) + kMaxClockAheadMs) {
    spdlog::warn(
        "proposed block {} has a time {} ms ahead of this node's clock; "
        "undecided this round",
        height, block.header.time_ms - NowMs(clock_));
    return done(BlockVerdict::kUndecided, metrics_.checks_undecided);
  }
  if (block.txs.empty()) {
    return done(BlockVerdict::kValid, metrics_.checks_valid_by_mempool);
  }
  absl::StatusOr<std::vector<ProposalTxCheck>> checks =
      mempool_ != nullptr ? mempool_->CheckProposal(block.txs, height)
                          : absl::UnavailableError("no mempool");
  if (checks.ok() && checks->size() == block.txs.size()) {
    for (size_t i = 0; i < checks->size(); ++i) {
      const Admission code = (*checks)[i].code;
      if (code != Admission::kAccepted) {
        spdlog::warn("proposed block {} is invalid: tx {} is {}", height, i,
                     AdmissionName(code));
        return done(BlockVerdict::kInvalid, metrics_.checks_invalid);
      }
    }
    return done(BlockVerdict::kValid, metrics_.checks_valid_by_mempool);
  }
  spdlog::info(
      "mempool gave no verdict on proposed block {} ({}); checking its {} "
      "txs here",
      height,
      checks.ok() ? std::string("wrong number of answers")
                  : checks.status().ToString(),
      block.txs.size());
  const BlockVerdict v =
      SelfCheck(block, height, parent.next_rules.value_or(genesis_.rules));
  switch (v) {
    case BlockVerdict::kValid:
      return done(v, metrics_.checks_valid_self_checked);
    case BlockVerdict::kInvalid:
      return done(v, metrics_.checks_invalid);
    case BlockVerdict::kUndecided:
      break;
  }
  return done(v, metrics_.checks_undecided);
}

BlockVerdict BlockChecker::SelfCheck(const Block& block, uint64_t height,
                                     const ChainRules& rules) {
  const size_t n = block.txs.size();
  std::vector<Hash32> hashes(n);
  // Index of the first tx that fails, or n.
  std::atomic<size_t> first_bad{n};
  std::vector<std::string> why(n);
  auto fail = [&](size_t i, std::string reason) {
    why[i] = std::move(reason);
    size_t cur = first_bad.load();
    while (i < cur && !first_bad.compare_exchange_weak(cur, i)) {
    }
  };
  const uint64_t window = rules.replay_window;
  ParallelFor(verify_pool_, n, 4, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (first_bad.load(std::memory_order_relaxed) < i) return;
      absl::StatusOr<Transaction> tx = DecodeTx(block.txs[i]);
      if (!tx.ok()) {
        fail(i, std::string(tx.status().message()));
        continue;
      }
      if (std::optional<std::string> p = TxFieldProblem(suite_, *tx)) {
        fail(i, *std::move(p));
        continue;
      }
      if (tx->chain_id != genesis_.chain_id) {
        fail(i, "is for another chain");
        continue;
      }
      if (tx->valid_until < height || tx->valid_until - height > window) {
        fail(i,
             absl::StrCat("has valid_until ", tx->valid_until,
                          ", outside heights ", height, "..", height + window));
        continue;
      }
      const Bytes sign_bytes = TxSignBytes(*tx);
      hashes[i] = suite_.Hash(sign_bytes);
      metrics_.self_verified_txs.Inc();
      if (!suite_.Verify(tx->sender, sign_bytes, tx->signature)) {
        fail(i, "has a signature that does not verify");
      }
    }
  });
  if (const size_t bad = first_bad.load(); bad < n) {
    spdlog::warn("proposed block {} is invalid: tx {} {}", height, bad,
                 why[bad]);
    return BlockVerdict::kInvalid;
  }
  absl::flat_hash_set<Hash32> seen;
  seen.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!seen.insert(hashes[i]).second) {
      spdlog::warn("proposed block {} is invalid: tx {} appears twice", height,
                   i);
      return BlockVerdict::kInvalid;
    }
  }
  // The replay window, for the whole block in one storage read.
  absl::StatusOr<std::vector<uint64_t>> committed =
      blocks_ != nullptr ? blocks_->CommittedHeights(hashes)
                         : absl::UnavailableError("no storage");
  if (!committed.ok() || committed->size() != n) {
    spdlog::warn(
        "cannot check proposed block {} against committed txs: {}; "
        "undecided",
        height,
        committed.ok() ? std::string("wrong number of answers")
                       : committed.status().ToString());
    return BlockVerdict::kUndecided;
  }
  for (size_t i = 0; i < n; ++i) {
    if ((*committed)[i] != 0 && (*committed)[i] < height) {
      spdlog::warn(
          "proposed block {} is invalid: tx {} was committed at height {}",
          height, i, (*committed)[i]);
      return BlockVerdict::kInvalid;
    }
  }
  return BlockVerdict::kValid;
}

}  // namespace consortia::consensus
