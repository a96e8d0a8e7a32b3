#include "consortia/testing/fake_storage_queries.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "consortia/crypto_suite.h"
#include "consortia/types.h"

namespace consortia::testing {

// ---------------------------------------------------------- CommitHistory

void FakeCommitHistory::AddEvent(CommittedEvent e) {
  absl::MutexLock lock(&mu_);
  latest_ = std::max(latest_, e.height);
  events_[e.height] = std::move(e);
}

void FakeCommitHistory::GrowTo(uint64_t h) {
  uint64_t from;
  {
    absl::MutexLock lock(&mu_);
    from = latest_ + 1;
  }
  for (uint64_t i = from; i <= h; ++i)
    AddEvent({i, {}, {}, {}, false, std::nullopt});
}

void FakeCommitHistory::FailNext(int n) {
  absl::MutexLock lock(&mu_);
  failures_ = n;
}

void FakeCommitHistory::SetMaxTxsPerCall(size_t n) {
  absl::MutexLock lock(&mu_);
  max_txs_per_call_ = n;
}

std::vector<std::pair<uint64_t, uint64_t>> FakeCommitHistory::committed_calls()
    const {
  absl::MutexLock lock(&mu_);
  return committed_calls_;
}

int FakeCommitHistory::chain_tip_calls() const {
  absl::MutexLock lock(&mu_);
  return chain_tip_calls_;
}

absl::Status FakeCommitHistory::TakeFailure() {
  if (failures_ == 0) return absl::OkStatus();
  --failures_;
  return absl::UnavailableError("storage is down");
}

absl::StatusOr<ChainTip> FakeCommitHistory::GetChainTip() {
  absl::MutexLock lock(&mu_);
  ++chain_tip_calls_;
  if (absl::Status s = TakeFailure(); !s.ok()) return s;
  if (latest_ == 0) return ChainTip{};
  return ChainTip{latest_, events_[latest_].block_hash};
}

absl::StatusOr<CommittedPage> FakeCommitHistory::GetCommitted(uint64_t from,
                                                              uint64_t to) {
  absl::MutexLock lock(&mu_);
  committed_calls_.emplace_back(from, to);
  if (absl::Status s = TakeFailure(); !s.ok()) return s;
  if (from == 0 || to < from || to - from + 1 > 1000) {
    return absl::InvalidArgumentError(
        "from must be 1.. and at most 1000 heights per call");
  }
  CommittedPage page;
  page.next_height = from;
  size_t txs = 0;
  for (auto it = events_.find(from);
       it != events_.end() && it->first == page.next_height && it->first <= to;
       ++it) {
    page.events.push_back(it->second);
    page.next_height = it->first + 1;
    txs += it->second.txs.size();
    if (max_txs_per_call_ > 0 && txs >= max_txs_per_call_) break;
  }
  return page;
}

void FakeCommitHistory::SetMembers(std::vector<Bytes> keys, bool permissioned) {
  absl::MutexLock lock(&mu_);
  members_ = std::set<Bytes>(std::make_move_iterator(keys.begin()),
                             std::make_move_iterator(keys.end()));
  permissioned_ = permissioned;
}

std::vector<Bytes> FakeCommitHistory::list_members_calls() const {
  absl::MutexLock lock(&mu_);
  return list_members_calls_;
}

void FakeCommitHistory::SetRules(std::optional<ChainRules> rules) {
  absl::MutexLock lock(&mu_);
  rules_ = rules;
}

absl::StatusOr<MemberPage> FakeCommitHistory::ListMembers(const Bytes& cursor,
                                                          uint32_t limit) {
  absl::MutexLock lock(&mu_);
  list_members_calls_.push_back(cursor);
  if (limit == 0 || limit > kMaxListMembers) {
    return absl::InvalidArgumentError("limit out of range");
  }
  MemberPage page;
  page.height = latest_;
  page.permissioned = permissioned_;
  page.rules = rules_;
  auto it = cursor.empty() ? members_.begin() : members_.upper_bound(cursor);
  for (; it != members_.end(); ++it) {
    if (page.public_keys.size() == limit) {
      page.next_cursor = page.public_keys.back();
      break;
    }
    page.public_keys.push_back(*it);
  }
  return page;
}

// ------------------------------------------------------------ BlockSource

FakeBlockSource::FakeBlockSource(const FakeLedger* ledger) : ledger_(ledger) {}

int FakeBlockSource::range_reads() const {
  absl::MutexLock lock(&mu_);
  return range_reads_;
}

int FakeBlockSource::blocks_read() const {
  absl::MutexLock lock(&mu_);
  return blocks_read_;
}

int FakeBlockSource::committed_reads() const {
  absl::MutexLock lock(&mu_);
  return committed_reads_;
}

absl::StatusOr<std::vector<BlockRecord>> FakeBlockSource::ReadCertifiedBlocks(
    uint64_t from, uint32_t limit, uint64_t max_bytes) {
  if (from == 0 || limit == 0 || limit > kMaxCertifiedBlocks ||
      max_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad block range: from ",
                                                   from, ", limit ", limit,
                                                   ", max_bytes ", max_bytes));
  }
  const std::vector<Block> blocks = ledger_->blocks();
  const std::vector<CommitCertificate> certs = ledger_->certs();
  std::vector<BlockRecord> out;
  uint64_t bytes = 0;
  for (uint64_t h = from;
       h < from + limit && h <= blocks.size() && bytes < max_bytes; ++h) {
    BlockRecord r;
    r.block = blocks[h - 1];
    r.block_hash = BlockHash(Ed25519Sha256(), r.block.header);
    r.cert = certs[h - 1];
    bytes += EncodeBlock(r.block).size();
    out.push_back(std::move(r));
  }
  absl::MutexLock lock(&mu_);
  ++range_reads_;
  blocks_read_ += static_cast<int>(out.size());
  return out;
}

absl::StatusOr<std::vector<uint64_t>> FakeBlockSource::CommittedHeights(
    const std::vector<Hash32>& tx_hashes) {
  if (tx_hashes.size() > kMaxCommittedHeightsQuery) {
    return absl::InvalidArgumentError(absl::StrCat(
        tx_hashes.size(), " tx hashes, over ", kMaxCommittedHeightsQuery));
  }
  std::map<Hash32, uint64_t> at;
  const std::vector<Block> blocks = ledger_->blocks();
  for (size_t h = 0; h < blocks.size(); ++h) {
    for (const Bytes& raw : blocks[h].txs) {
      absl::StatusOr<Transaction> tx = DecodeTx(raw);
      if (tx.ok()) at.emplace(TxHash(Ed25519Sha256(), *tx), h + 1);
    }
  }
  std::vector<uint64_t> out;
  out.reserve(tx_hashes.size());
  for (const Hash32& hash : tx_hashes) {
    auto it = at.find(hash);
    out.push_back(it == at.end() ? 0 : it->second);
  }
  absl::MutexLock lock(&mu_);
  ++committed_reads_;
  return out;
}

// ----------------------------------------------------------- ChainQueries

void FakeChainQueries::AddBlock(const BlockRecord& b) {
  absl::MutexLock l(&mu_);
  blocks_[b.block.header.height] = b;
}

void FakeChainQueries::AddTx(const Hash32& hash, const TxRecord& r) {
  absl::MutexLock l(&mu_);
  txs_[hash] = r;
}

void FakeChainQueries::AddEvidence(EvidenceRecord r) {
  absl::MutexLock l(&mu_);
  r.seq = evidence_.size() + 1;
  evidence_.push_back(std::move(r));
}

void FakeChainQueries::SetFailure(absl::Status s) {
  absl::MutexLock l(&mu_);
  failure_ = std::move(s);
}

void FakeChainQueries::SetMaxListed(uint32_t n) {
  absl::MutexLock l(&mu_);
  max_listed_ = n;
}

void FakeChainQueries::HoldGetTx() {
  absl::MutexLock l(&mu_);
  hold_get_tx_ = true;
}

void FakeChainQueries::Release() {
  absl::MutexLock l(&mu_);
  released_ = true;
}

bool FakeChainQueries::WaitForHeld(int n) {
  absl::MutexLock l(&mu_);
  auto held = [this, n]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&held), absl::Seconds(30));
}

int FakeChainQueries::get_tx_calls() const {
  absl::MutexLock l(&mu_);
  return get_tx_calls_;
}

int FakeChainQueries::chain_tip_calls() const {
  absl::MutexLock l(&mu_);
  return chain_tip_calls_;
}

int FakeChainQueries::block_reads() const {
  absl::MutexLock l(&mu_);
  return block_reads_;
}

absl::StatusOr<ChainTip> FakeChainQueries::GetChainTip() {
  absl::MutexLock l(&mu_);
  ++chain_tip_calls_;
  if (!failure_.ok()) return failure_;
  if (blocks_.empty()) return ChainTip{};
  const BlockRecord& last = std::prev(blocks_.end())->second;
  return ChainTip{last.block.header.height, last.block_hash};
}

absl::StatusOr<BlockRecord> FakeChainQueries::GetCertifiedBlock(
    std::optional<uint64_t> height) {
  absl::MutexLock l(&mu_);
  ++block_reads_;
  if (!failure_.ok()) return failure_;
  if (blocks_.empty()) return absl::NotFoundError("no blocks");
  auto it =
      height.has_value() ? blocks_.find(*height) : std::prev(blocks_.end());
  if (it == blocks_.end()) return absl::NotFoundError("no such height");
  return it->second;
}

absl::StatusOr<BlockRecord> FakeChainQueries::GetCertifiedBlockByHash(
    const Hash32& hash) {
  absl::MutexLock l(&mu_);
  ++block_reads_;
  if (!failure_.ok()) return failure_;
  for (const auto& [h, b] : blocks_) {
    if (b.block_hash == hash) return b;
  }
  return absl::NotFoundError("no such block");
}

absl::StatusOr<std::vector<BlockSummary>> FakeChainQueries::ListBlockSummaries(
    uint64_t from, uint32_t limit) {
  absl::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  if (from == 0 || limit == 0 || limit > kMaxBlockSummaries) {
    return absl::InvalidArgumentError("bad from or limit");
  }
  std::vector<BlockSummary> out;
  for (auto it = blocks_.lower_bound(from);
       it != blocks_.end() && out.size() < std::min(limit, max_listed_); ++it) {
    out.push_back(
        BlockSummary{it->second.block.header, it->second.block_hash,
                     static_cast<uint32_t>(it->second.block.txs.size())});
  }
  return out;
}

absl::StatusOr<TxRecord> FakeChainQueries::GetTx(const Hash32& hash) {
  absl::MutexLock l(&mu_);
  ++get_tx_calls_;
  if (hold_get_tx_) {
    ++held_;
    mu_.Await(absl::Condition(&released_));
  }
  if (!failure_.ok()) return failure_;
  auto it = txs_.find(hash);
  if (it == txs_.end()) return absl::NotFoundError("no such tx");
  return it->second;
}

void FakeChainQueries::AddValidatorChange(const StateRecord& r) {
  absl::MutexLock l(&mu_);
  validator_changes_[r.height] = r;
}

std::vector<uint64_t> FakeChainQueries::validator_changes_asked() const {
  absl::MutexLock l(&mu_);
  return validator_changes_asked_;
}

absl::StatusOr<std::vector<StateRecord>> FakeChainQueries::ListValidatorChanges(
    uint64_t up_to_height) {
  absl::MutexLock l(&mu_);
  validator_changes_asked_.push_back(up_to_height);
  if (!failure_.ok()) return failure_;
  std::vector<StateRecord> out;
  for (const auto& [height, r] : validator_changes_) {
    if (height <= up_to_height) out.push_back(r);
  }
  return out;
}

absl::StatusOr<std::vector<EvidenceRecord>> FakeChainQueries::ListEvidence(
    uint64_t from_seq, uint32_t limit) {
  absl::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  if (from_seq == 0 || limit == 0 || limit > kMaxListEvidence) {
    return absl::InvalidArgumentError("bad from or limit");
  }
  std::vector<EvidenceRecord> out;
  for (const EvidenceRecord& r : evidence_) {
    if (r.seq >= from_seq && out.size() < std::min(limit, max_listed_)) {
      out.push_back(r);
    }
  }
  return out;
}

absl::StatusOr<std::vector<BlockWithReceipts>>
FakeChainQueries::ReadBlocksWithReceipts(uint64_t from, uint32_t limit,
                                         uint64_t max_bytes) {
  absl::MutexLock l(&mu_);
  ++receipt_reads_;
  if (!failure_.ok()) return failure_;
  if (from == 0 || limit == 0 || limit > kMaxBlocksWithReceipts ||
      max_bytes == 0) {
    return absl::InvalidArgumentError("bad from, limit or max_bytes");
  }
  std::vector<BlockWithReceipts> out;
  for (auto it = blocks_.lower_bound(from);
       it != blocks_.end() && out.size() < std::min(limit, max_listed_); ++it) {
    BlockWithReceipts b;
    b.block = it->second.block;
    b.block_hash = it->second.block_hash;
    b.receipts.resize(b.block.txs.size());
    for (const auto& [hash, rec] : txs_) {
      if (rec.height == it->first && rec.index < b.receipts.size()) {
        b.receipts[rec.index] = rec.receipt;
      }
    }
    out.push_back(std::move(b));
  }
  return out;
}

int FakeChainQueries::blocks_with_receipts_reads() const {
  absl::MutexLock l(&mu_);
  return receipt_reads_;
}

// ----------------------------------------------------------- StateQueries

void FakeStateQueries::SetState(const std::string& app, const std::string& key,
                                StateRecord r) {
  absl::MutexLock l(&mu_);
  state_[{app, key}] = std::move(r);
}

void FakeStateQueries::SetHeight(uint64_t height) {
  absl::MutexLock l(&mu_);
  height_ = height;
}

void FakeStateQueries::SetFailure(absl::Status s) {
  absl::MutexLock l(&mu_);
  failure_ = std::move(s);
}

std::vector<uint64_t> FakeStateQueries::heights_asked() const {
  absl::MutexLock l(&mu_);
  return heights_asked_;
}

absl::StatusOr<StateRecord> FakeStateQueries::GetState(const std::string& app,
                                                       const std::string& key) {
  absl::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  auto it = state_.find({app, key});
  if (it == state_.end()) return StateRecord{};
  return it->second;
}

absl::StatusOr<StateRecord> FakeStateQueries::GetStateAt(const std::string& app,
                                                         const std::string& key,
                                                         uint64_t height) {
  absl::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  heights_asked_.push_back(height);
  if (height > height_) {
    return absl::NotFoundError(
        absl::StrCat("height ", height, " is beyond the tip ", height_));
  }
  auto it = state_.find({app, key});
  StateRecord r = it == state_.end() ? StateRecord{} : it->second;
  r.height = height;
  return r;
}

absl::StatusOr<StatePage> FakeStateQueries::ScanState(const std::string& app,
                                                      const std::string& prefix,
                                                      const std::string& cursor,
                                                      uint32_t limit) {
  absl::MutexLock l(&mu_);
  if (!failure_.ok()) return failure_;
  if (limit == 0 || limit > kMaxScanState) {
    return absl::InvalidArgumentError("bad limit");
  }
  if (!cursor.empty() && cursor.rfind(prefix, 0) != 0) {
    return absl::InvalidArgumentError("cursor outside the prefix");
  }
  auto first = state_.lower_bound({app, std::string()});
  if (first == state_.end() || first->first.first != app) {
    return absl::InvalidArgumentError(absl::StrCat("unknown app ", app));
  }
  StatePage page;
  page.height = height_;
  for (auto it = first; it != state_.end() && it->first.first == app; ++it) {
    const std::string& key = it->first.second;
    if (key.rfind(prefix, 0) != 0) continue;
    if (!cursor.empty() && key <= cursor) continue;
    if (page.items.size() == limit) {
      page.next_cursor = page.items.back().key;
      break;
    }
    page.items.push_back(StateItem{key, it->second.value, it->second.owner});
  }
  return page;
}

}  // namespace consortia::testing
