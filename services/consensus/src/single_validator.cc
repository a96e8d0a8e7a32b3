#include "single_validator.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/log.h"

namespace consortia::consensus {
namespace {

// Pause before asking storage again after it failed to answer.
constexpr absl::Duration kStorageRetry = absl::Milliseconds(100);
// Repeated errors of the loop are logged at most this often.
constexpr absl::Duration kErrorLogInterval = absl::Seconds(5);

}  // namespace

absl::StatusOr<std::unique_ptr<SingleValidator>> SingleValidator::Create(
    const ConsensusOptions& options, const Genesis& genesis,
    const CryptoSuite& suite, const NodeKey& key, MempoolApi* mempool,
    LedgerApi* ledger, const Clock* clock, ConsensusMetrics metrics) {
  if (genesis.validators.size() != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("this build runs one validator; genesis has ",
                     genesis.validators.size()));
  }
  if (key.crypto_suite != genesis.crypto_suite) {
    return absl::InvalidArgumentError(
        absl::StrCat("node key is for crypto suite \"", key.crypto_suite,
                     "\" but the chain uses \"", genesis.crypto_suite, "\""));
  }
  const Validator& v = genesis.validators[0];
  if (v.public_key != key.public_key) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node key ", ToHex(key.public_key), " is not the genesis validator \"",
        v.name, "\" (", ToHex(v.public_key), ")"));
  }
  // Refuse a key whose secret does not match its public key now rather than
  // at the first block.
  absl::StatusOr<std::unique_ptr<tendermint::KeySigner>> signer =
      tendermint::KeySigner::Create(suite, key.secret_key, key.public_key);
  if (!signer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("node key: ", signer.status().message()));
  }
  return std::unique_ptr<SingleValidator>(
      new SingleValidator(options, genesis, suite, key, *std::move(signer),
                          mempool, ledger, clock, std::move(metrics)));
}

SingleValidator::SingleValidator(
    const ConsensusOptions& options, const Genesis& genesis,
    const CryptoSuite& suite, const NodeKey& key,
    std::unique_ptr<tendermint::MessageSigner> signer, MempoolApi* mempool,
    LedgerApi* ledger, const Clock* clock, ConsensusMetrics metrics)
    : options_(options),
      chain_id_(genesis.chain_id),
      genesis_rules_(genesis.rules),
      suite_(suite),
      mempool_(mempool),
      ledger_(ledger),
      clock_(clock),
      metrics_(std::move(metrics)),
      builder_(genesis.chain_id, suite, key.public_key),
      signer_(std::move(signer)) {}

SingleValidator::~SingleValidator() { Stop(); }

void SingleValidator::Start() {
  last_block_at_ = clock_->Now();
  thread_ = std::thread([this] { Loop(); });
}

void SingleValidator::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool SingleValidator::Ready() const {
  absl::MutexLock lock(&mu_);
  return ready_;
}

uint64_t SingleValidator::height() const {
  absl::MutexLock lock(&mu_);
  return height_;
}

bool SingleValidator::Sleep(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  if (d > absl::ZeroDuration()) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  }
  return !stopping_;
}

void SingleValidator::LogError(const char* what, const absl::Status& s) {
  const absl::Time now = absl::Now();
  if (now - last_error_log_ < kErrorLogInterval) {
    ++suppressed_errors_;
    return;
  }
  if (suppressed_errors_ > 0) {
    spdlog::error("{}: {} ({} similar errors since the last report)", what,
                  s.ToString(), suppressed_errors_);
  } else {
    spdlog::error("{}: {}", what, s.ToString());
  }
  last_error_log_ = now;
  suppressed_errors_ = 0;
}

void SingleValidator::Loop() {
  while (Sleep(Step())) {
  }
}

absl::Duration SingleValidator::Step() {
  if (!state_.has_value()) {
    absl::StatusOr<ChainState> state = ledger_->GetChainState();
    if (!state.ok()) {
      metrics_.chain_state_errors.Inc();
      LogError("cannot read the chain state from storage", state.status());
      return std::max(kStorageRetry, options_.block_poll_interval);
    }
    state_ = *state;
    metrics_.height.Set(static_cast<double>(state_->height));
    absl::MutexLock lock(&mu_);
    if (!ready_) {
      spdlog::info("chain is at height {}; producing blocks", state_->height);
    }
    ready_ = true;
    height_ = state_->height;
  }

  const uint64_t height = state_->height + 1;
  // The chain rules of the height bound what the block may carry.
  const ChainRules rules = state_->next_rules.value_or(genesis_rules_);
  absl::StatusOr<std::vector<Bytes>> txs =
      mempool_->Reap({std::min(options_.max_block_txs, rules.max_block_txs),
                      std::min(options_.max_block_bytes, rules.max_block_bytes),
                      state_->height});
  if (!txs.ok()) {
    metrics_.reap_errors.Inc();
    LogError("cannot reap transactions from the mempool", txs.status());
    return options_.block_poll_interval;
  }
  const absl::Time now = clock_->Now();
  if (txs->empty() && now - last_block_at_ < options_.empty_block_interval) {
    return options_.block_poll_interval;
  }

  const size_t tx_count = txs->size();
  const uint64_t now_ms =
      static_cast<uint64_t>(std::max<int64_t>(0, absl::ToUnixMillis(now)));
  Block block = builder_.Build(*state_, *std::move(txs), now_ms);
  const Hash32 block_hash = BlockHash(suite_, block.header);
  Vote precommit;
  precommit.type = VoteType::kPrecommit;
  precommit.height = height;
  precommit.round = 0;
  precommit.block_hash = block_hash;
  precommit.validator_index = 0;
  absl::StatusOr<Bytes> sig =
      signer_->SignVote(precommit, VoteSignBytes(chain_id_, precommit));
  if (!sig.ok()) {
    metrics_.sign_errors.Inc();
    LogError("cannot sign the precommit", sig.status());
    return options_.block_poll_interval;
  }
  precommit.signature = *std::move(sig);
  absl::StatusOr<CommitCertificate> cert =
      BuildCertificate(height, 0, block_hash, {std::move(precommit)});
  if (!cert.ok()) {
    metrics_.sign_errors.Inc();
    LogError("cannot build the commit certificate", cert.status());
    return options_.block_poll_interval;
  }

  // Encoded once, here: storage decodes these bytes and keeps them as the
  // block.
  const Bytes block_bytes = EncodeBlock(block);
  const absl::Time commit_start = absl::Now();
  absl::StatusOr<CommitResult> result =
      ledger_->CommitBlock(block_bytes, *cert);
  const absl::Time commit_end = absl::Now();
  if (!result.ok()) {
    metrics_.commit_errors.Inc();
    LogError(absl::StrCat("storage did not commit block ", height).c_str(),
             result.status());
    // Storage may or may not have it: start again from what it says.
    state_.reset();
    return options_.block_poll_interval;
  }

  state_ = ChainState{height,
                      block_hash,
                      block.header.time_ms,
                      result->state_root,
                      result->receipts_root,
                      std::move(result->next_validators),
                      result->next_rules};
  last_block_at_ = now;
  metrics_.commit_duration.Observe(
      absl::ToDoubleSeconds(commit_end - commit_start));
  if (last_commit_real_.has_value()) {
    metrics_.block_interval.Observe(
        absl::ToDoubleSeconds(commit_end - *last_commit_real_));
  }
  last_commit_real_ = commit_end;
  metrics_.blocks_committed.Inc();
  metrics_.block_txs.Observe(static_cast<double>(tx_count));
  metrics_.height.Set(static_cast<double>(height));
  {
    absl::MutexLock lock(&mu_);
    height_ = height;
  }
  spdlog::debug("committed block {} with {} txs", height, tx_count);
  // More txs may be waiting: reap again at once.
  return tx_count > 0 ? absl::ZeroDuration() : options_.block_poll_interval;
}

}  // namespace consortia::consensus
