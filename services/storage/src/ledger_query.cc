// The ledger's query path: blocks, txs, state with its proofs, committed tx
// pages and the chain tip, read concurrently with a commit and never half a
// block.
#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "consortia/codec.h"
#include "consortia/state_proof.h"
#include "ledger.h"

namespace consortia::storage {
namespace {

// Records a duration in seconds when it goes out of scope.
class ScopedTimer {
 public:
  explicit ScopedTimer(Histogram h) : h_(h), start_(absl::Now()) {}
  ~ScopedTimer() { h_.Observe(absl::ToDoubleSeconds(absl::Now() - start_)); }

 private:
  Histogram h_;
  absl::Time start_;
};

}  // namespace

absl::StatusOr<ChainState> Ledger::GetChainState() {
  ScopedTimer t(opts_.metrics.query_chain_state);
  absl::ReaderMutexLock l(&state_mu_);
  ChainState out = chain_;
  out.next_validators = ValidatorsAt(*epochs_, out.height + 1);
  return out;
}
absl::StatusOr<ChainTip> Ledger::GetChainTip() {
  ScopedTimer t(opts_.metrics.query_chain_state);
  // The tip is in memory, but whoever asks wants to know that storage can
  // serve reads now (the api's readiness probe): the store must answer.
  if (absl::Status s = opts_.store->Ping(); !s.ok()) return StoreError(s);
  absl::ReaderMutexLock l(&state_mu_);
  return ChainTip{chain_.height, chain_.last_block_hash};
}

absl::StatusOr<BlockRecord> Ledger::GetCertifiedBlock(
    std::optional<uint64_t> height) {
  ScopedTimer t(opts_.metrics.query_block);
  uint64_t h = 0;
  uint64_t latest = 0;
  {
    absl::ReaderMutexLock l(&state_mu_);
    latest = chain_.height;
  }
  h = height.value_or(latest);
  if (h == 0 || h > latest) {
    return absl::NotFoundError(height.has_value()
                                   ? absl::StrCat("no block at height ", h)
                                   : std::string("no block committed yet"));
  }
  // Committed blocks never change, so no lock is needed from here on.
  absl::StatusOr<std::vector<std::optional<std::string>>> vals =
      opts_.store->MultiGet({keys::Block(h), keys::Cert(h)});
  if (!vals.ok()) return StoreError(vals.status());
  if (!(*vals)[0].has_value()) {
    return Corrupt("block",
                   absl::NotFoundError(absl::StrCat("missing at height ", h)));
  }
  absl::StatusOr<Block> block = DecodeBlock(AsBytes(*(*vals)[0]));
  if (!block.ok()) return Corrupt("block", block.status());
  BlockRecord rec;
  rec.block_hash = BlockHash(suite_, block->header);
  rec.block = *std::move(block);
  if ((*vals)[1].has_value()) {
    absl::StatusOr<CommitCertificate> cert =
        DecodeCertificate(AsBytes(*(*vals)[1]));
    if (!cert.ok()) return Corrupt("certificate", cert.status());
    rec.cert = *std::move(cert);
  }
  return rec;
}

absl::StatusOr<std::vector<uint64_t>> Ledger::CommittedHeights(
    const std::vector<Hash32>& tx_hashes) {
  if (tx_hashes.size() > kMaxCommittedHeightsQuery) {
    return absl::InvalidArgumentError(
        absl::StrCat("asked for ", tx_hashes.size(), " tx hashes, over ",
                     kMaxCommittedHeightsQuery));
  }
  ScopedTimer t(opts_.metrics.query_tx);
  std::vector<std::string> index_keys;
  index_keys.reserve(tx_hashes.size());
  for (const Hash32& h : tx_hashes) index_keys.push_back(keys::Tx(h));
  absl::StatusOr<std::vector<std::optional<std::string>>> locs =
      opts_.store->MultiGet(index_keys);
  if (!locs.ok()) return StoreError(locs.status());
  std::vector<uint64_t> heights(tx_hashes.size(), 0);
  for (size_t i = 0; i < heights.size(); ++i) {
    if (!(*locs)[i].has_value()) continue;
    absl::StatusOr<keys::TxLocation> loc = keys::DecodeTxLocation(*(*locs)[i]);
    if (!loc.ok()) return Corrupt("tx location", loc.status());
    heights[i] = loc->height;
  }
  return heights;
}

absl::StatusOr<TxRecord> Ledger::GetTx(const Hash32& hash) {
  ScopedTimer t(opts_.metrics.query_tx);
  absl::StatusOr<std::optional<std::string>> loc_raw =
      opts_.store->Get(keys::Tx(hash));
  if (!loc_raw.ok()) return StoreError(loc_raw.status());
  if (!loc_raw->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no committed transaction ", ToHex(hash)));
  }
  absl::StatusOr<keys::TxLocation> loc = keys::DecodeTxLocation(**loc_raw);
  if (!loc.ok()) return Corrupt("tx location", loc.status());
  const uint64_t h = loc->height;

  // The tx's block is immutable once indexed; the next block and its
  // certificate are read in one snapshot, so both or neither are seen.
  absl::StatusOr<std::vector<std::optional<std::string>>> vals =
      opts_.store->MultiGet({keys::Block(h), keys::Cert(h), keys::Receipts(h),
                             keys::Header(h + 1), keys::Cert(h + 1)});
  if (!vals.ok()) return StoreError(vals.status());
  for (size_t i = 0; i < 3; ++i) {
    if (!(*vals)[i].has_value()) {
      return Corrupt("block data", absl::NotFoundError(
                                       absl::StrCat("missing for height ", h)));
    }
  }
  absl::StatusOr<Block> block = DecodeBlock(AsBytes(*(*vals)[0]));
  if (!block.ok()) return Corrupt("block", block.status());
  absl::StatusOr<CommitCertificate> cert =
      DecodeCertificate(AsBytes(*(*vals)[1]));
  if (!cert.ok()) return Corrupt("certificate", cert.status());
  absl::StatusOr<std::vector<Bytes>> receipts =
      keys::DecodeReceiptList(*(*vals)[2]);
  if (!receipts.ok()) return Corrupt("receipts", receipts.status());
  if (loc->index >= block->txs.size() ||
      receipts->size() != block->txs.size()) {
    return Corrupt("tx location", absl::OutOfRangeError(absl::StrCat(
                                      "index ", loc->index, " in block ", h,
                                      " of ", block->txs.size(), " txs")));
  }
  absl::StatusOr<Receipt> receipt = DecodeReceipt((*receipts)[loc->index]);
  if (!receipt.ok()) return Corrupt("receipt", receipt.status());
  absl::StatusOr<MerkleProof> inclusion =
      MerkleProve(suite_, block->txs, loc->index);
  if (!inclusion.ok()) return inclusion.status();

  TxRecord rec;
  rec.raw_tx = block->txs[loc->index];
  rec.height = h;
  rec.index = loc->index;
  rec.receipt = *std::move(receipt);
  rec.inclusion = *std::move(inclusion);
  rec.header = block->header;
  rec.cert = *std::move(cert);
  // The receipt proof is given even before block h + 1 exists: the receipts
  // root it leads to is already fixed, and will be in that block's header.
  absl::StatusOr<MerkleProof> rproof =
      MerkleProve(suite_, *receipts, loc->index);
  if (!rproof.ok()) return rproof.status();
  rec.receipt_proof = *std::move(rproof);
  if ((*vals)[3].has_value() && (*vals)[4].has_value()) {
    absl::StatusOr<BlockHeader> next = keys::DecodeHeaderValue(*(*vals)[3]);
    if (!next.ok()) return Corrupt("header", next.status());
    absl::StatusOr<CommitCertificate> next_cert =
        DecodeCertificate(AsBytes(*(*vals)[4]));
    if (!next_cert.ok()) return Corrupt("certificate", next_cert.status());
    rec.next_header = *std::move(next);
    rec.next_cert = *std::move(next_cert);
  }
  return rec;
}

absl::StatusOr<StateRecord> Ledger::GetState(const std::string& app,
                                             const std::string& key) {
  uint64_t latest = 0;
  {
    absl::ReaderMutexLock l(&state_mu_);
    latest = chain_.height;
  }
  return GetStateAt(app, key, latest);
}

absl::StatusOr<StateRecord> Ledger::GetStateAt(const std::string& app,
                                               const std::string& key,
                                               uint64_t height) {
  ScopedTimer t(opts_.metrics.query_state);
  const NativeApp* native = opts_.apps->Find(app);
  if (native == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no app named '", app, "'"));
  }
  if (absl::Status s = native->CheckQueryKey(key); !s.ok()) return s;

  StateRecord rec;
  rec.height = height;
  uint64_t latest = 0;
  {
    // The latest root and height come from the same moment; older roots are
    // stored and never change.
    absl::ReaderMutexLock l(&state_mu_);
    latest = chain_.height;
    if (height == latest) rec.state_root = chain_.state_root;
  }
  if (height > latest) {
    return absl::NotFoundError(absl::StrCat("no state at height ", height,
                                            ": the chain is at ", latest));
  }
  auto not_kept = [&](uint64_t now) {
    return absl::NotFoundError(absl::StrCat("the state at height ", height,
                                            " is no longer kept: storage keeps "
                                            "heights ",
                                            OldestKept(now), "..", now));
  };
  if (height < OldestKept(latest)) return not_kept(latest);
  if (height != latest && height > 0) {
    absl::StatusOr<CommitResult> roots = StoredResult(height);
    if (!roots.ok()) return roots.status();
    rec.state_root = roots->state_root;
  }

  // The walk runs without the lock: the tree of `height` stays whole until
  // state_versions more blocks are committed, which the check below sees.
  absl::StatusOr<SmtLookup> lookup =
      tree_.Prove(rec.state_root, StateKeyPath(suite_, app, key));
  if (!lookup.ok()) {
    if (absl::IsNotFound(lookup.status())) {
      absl::ReaderMutexLock l(&state_mu_);
      if (height < OldestKept(chain_.height)) return not_kept(chain_.height);
    }
    if (absl::IsNotFound(lookup.status()) ||
        absl::IsDataLoss(lookup.status())) {
      return Corrupt("state tree", lookup.status());
    }
    return StoreError(lookup.status());
  }
  rec.proof = std::move(lookup->proof);
  if (lookup->value_record.has_value()) {
    absl::StatusOr<StateEntry> entry =
        keys::DecodeStateEntry(*lookup->value_record);
    if (!entry.ok()) return Corrupt("state record", entry.status());
    rec.found = true;
    rec.value = std::move(entry->value);
    rec.owner = std::move(entry->owner);
  }

  // Block height + 1 certifies this state once it exists; its header and
  // certificate are read in one snapshot, so both or neither are seen.
  absl::StatusOr<std::vector<std::optional<std::string>>> next =
      opts_.store->MultiGet({keys::Header(height + 1), keys::Cert(height + 1)});
  if (!next.ok()) return StoreError(next.status());
  if ((*next)[0].has_value() && (*next)[1].has_value()) {
    absl::StatusOr<BlockHeader> header = keys::DecodeHeaderValue(*(*next)[0]);
    if (!header.ok()) return Corrupt("header", header.status());
    absl::StatusOr<CommitCertificate> cert =
        DecodeCertificate(AsBytes(*(*next)[1]));
    if (!cert.ok()) return Corrupt("certificate", cert.status());
    rec.next_header = *std::move(header);
    rec.next_cert = *std::move(cert);
  }
  return rec;
}

absl::StatusOr<BlockRecord> Ledger::GetCertifiedBlockByHash(
    const Hash32& hash) {
  absl::StatusOr<std::optional<std::string>> at =
      opts_.store->Get(keys::BlockHash(hash));
  if (!at.ok()) return StoreError(at.status());
  if (!at->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no block with hash ", ToHex(hash)));
  }
  absl::StatusOr<uint64_t> height = keys::DecodeU64(**at);
  if (!height.ok()) return Corrupt("block hash index", height.status());
  return GetCertifiedBlock(*height);
}

absl::StatusOr<std::vector<BlockSummary>> Ledger::ListBlockSummaries(
    uint64_t from, uint32_t limit) {
  ScopedTimer t(opts_.metrics.query_block);
  if (from == 0) return absl::InvalidArgumentError("heights start at 1");
  if (limit == 0 || limit > kMaxBlockSummaries) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be 1..", kMaxBlockSummaries, ", not ", limit));
  }
  uint64_t latest = 0;
  {
    absl::ReaderMutexLock l(&state_mu_);
    latest = chain_.height;
  }
  std::vector<BlockSummary> out;
  if (from > latest) return out;
  const uint64_t last = std::min(latest, from + (limit - 1));
  std::vector<std::string> ks;
  for (uint64_t h = from; h <= last; ++h) {
    ks.push_back(keys::Header(h));
    ks.push_back(keys::TxCount(h));
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> vals =
      opts_.store->MultiGet(ks);
  if (!vals.ok()) return StoreError(vals.status());
  for (uint64_t h = from; h <= last; ++h) {
    const std::optional<std::string>& header_raw = (*vals)[2 * (h - from)];
    const std::optional<std::string>& count_raw = (*vals)[2 * (h - from) + 1];
    if (!header_raw.has_value() || !count_raw.has_value()) {
      return Corrupt("block header", absl::NotFoundError(absl::StrCat(
                                         "missing at height ", h)));
    }
    absl::StatusOr<BlockHeader> header = keys::DecodeHeaderValue(*header_raw);
    if (!header.ok()) return Corrupt("header", header.status());
    absl::StatusOr<uint32_t> count = keys::DecodeU32(*count_raw);
    if (!count.ok()) return Corrupt("tx count", count.status());
    BlockSummary b;
    b.block_hash = BlockHash(suite_, *header);
    b.header = *std::move(header);
    b.tx_count = *count;
    out.push_back(std::move(b));
  }
  return out;
}

absl::StatusOr<std::vector<BlockRecord>> Ledger::ReadCertifiedBlocks(
    uint64_t from, uint32_t limit, uint64_t max_bytes) {
  ScopedTimer t(opts_.metrics.query_block);
  if (from == 0) return absl::InvalidArgumentError("heights start at 1");
  if (limit == 0 || limit > kMaxCertifiedBlocks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "limit must be 1..", kMaxCertifiedBlocks, ", not ", limit));
  }
  if (max_bytes == 0) {
    return absl::InvalidArgumentError("max_bytes must be at least 1");
  }
  uint64_t latest = 0;
  {
    absl::ReaderMutexLock l(&state_mu_);
    latest = chain_.height;
  }
  std::vector<BlockRecord> out;
  if (from > latest) return out;
  // Committed blocks never change, so no lock is needed from here on.
  constexpr uint64_t kFirstRead = 8;
  const uint64_t last = std::min(latest, from + (limit - 1));
  uint64_t bytes = 0;
  uint64_t largest = 0;
  for (uint64_t h = from; h <= last && bytes < max_bytes;) {
    const uint64_t n = largest == 0
                           ? std::min(last - h + 1, kFirstRead)
                           : std::clamp<uint64_t>((max_bytes - bytes) / largest,
                                                  1, last - h + 1);
    std::vector<std::string> ks;
    ks.reserve(2 * n);
    for (uint64_t i = h; i < h + n; ++i) {
      ks.push_back(keys::Block(i));
      ks.push_back(keys::Cert(i));
    }
    absl::StatusOr<std::vector<std::optional<std::string>>> vals =
        opts_.store->MultiGet(ks);
    if (!vals.ok()) return StoreError(vals.status());
    for (uint64_t i = 0; i < n && bytes < max_bytes; ++i) {
      const std::optional<std::string>& block_raw = (*vals)[2 * i];
      const std::optional<std::string>& cert_raw = (*vals)[2 * i + 1];
      if (!block_raw.has_value()) {
        return Corrupt("block", absl::NotFoundError(
                                    absl::StrCat("missing at height ", h + i)));
      }
      absl::StatusOr<Block> block = DecodeBlock(AsBytes(*block_raw));
      if (!block.ok()) return Corrupt("block", block.status());
      BlockRecord rec;
      rec.block_hash = BlockHash(suite_, block->header);
      rec.block = *std::move(block);
      if (cert_raw.has_value()) {
        absl::StatusOr<CommitCertificate> cert =
            DecodeCertificate(AsBytes(*cert_raw));
        if (!cert.ok()) return Corrupt("certificate", cert.status());
        rec.cert = *std::move(cert);
      }
      out.push_back(std::move(rec));
      bytes += block_raw->size();
      largest = std::max<uint64_t>(largest, block_raw->size());
    }
    h += n;
  }
  return out;
}

absl::StatusOr<std::vector<BlockWithReceipts>> Ledger::ReadBlocksWithReceipts(
    uint64_t from, uint32_t limit, uint64_t max_bytes) {
  ScopedTimer t(opts_.metrics.query_block);
  if (from == 0) return absl::InvalidArgumentError("heights start at 1");
  if (limit == 0 || limit > kMaxBlocksWithReceipts) {
    return absl::InvalidArgumentError(absl::StrCat(
        "limit must be 1..", kMaxBlocksWithReceipts, ", not ", limit));
  }
  if (max_bytes == 0) {
    return absl::InvalidArgumentError("max_bytes must be at least 1");
  }
  uint64_t latest = 0;
  {
    absl::ReaderMutexLock l(&state_mu_);
    latest = chain_.height;
  }
  std::vector<BlockWithReceipts> out;
  if (from > latest) return out;
  // Committed blocks and their receipts never change: no lock from here on.
  constexpr uint64_t kPerRead = 8;
  const uint64_t last = std::min(latest, from + (limit - 1));
  uint64_t bytes = 0;
  for (uint64_t h = from; h <= last && bytes < max_bytes;) {
    const uint64_t n = std::min(last - h + 1, kPerRead);
    std::vector<std::string> ks;
    ks.reserve(2 * n);
    for (uint64_t i = h; i < h + n; ++i) {
      ks.push_back(keys::Block(i));
      ks.push_back(keys::Receipts(i));
    }
    absl::StatusOr<std::vector<std::optional<std::string>>> vals =
        opts_.store->MultiGet(ks);
    if (!vals.ok()) return StoreError(vals.status());
    for (uint64_t i = 0; i < n && bytes < max_bytes; ++i) {
      const std::optional<std::string>& block_raw = (*vals)[2 * i];
      const std::optional<std::string>& receipts_raw = (*vals)[2 * i + 1];
      if (!block_raw.has_value() || !receipts_raw.has_value()) {
        return Corrupt("block data", absl::NotFoundError(absl::StrCat(
                                         "missing at height ", h + i)));
      }
      absl::StatusOr<Block> block = DecodeBlock(AsBytes(*block_raw));
      if (!block.ok()) return Corrupt("block", block.status());
      absl::StatusOr<std::vector<Bytes>> receipts =
          keys::DecodeReceiptList(*receipts_raw);
      if (!receipts.ok()) return Corrupt("receipts", receipts.status());
      if (receipts->size() != block->txs.size()) {
        return Corrupt("receipts",
                       absl::OutOfRangeError(absl::StrCat(
                           receipts->size(), " receipts for ",
                           block->txs.size(), " txs at height ", h + i)));
      }
      BlockWithReceipts rec;
      rec.receipts.reserve(receipts->size());
      for (const Bytes& raw : *receipts) {
        absl::StatusOr<Receipt> r = DecodeReceipt(raw);
        if (!r.ok()) return Corrupt("receipt", r.status());
        rec.receipts.push_back(*std::move(r));
      }
      rec.block_hash = BlockHash(suite_, block->header);
      rec.block = *std::move(block);
      out.push_back(std::move(rec));
      bytes += block_raw->size();
    }
    h += n;
  }
  return out;
}

absl::StatusOr<StatePage> Ledger::ScanState(const std::string& app,
                                            const std::string& prefix,
                                            const std::string& cursor,
                                            uint32_t limit) {
  ScopedTimer t(opts_.metrics.query_state);
  if (opts_.apps->Find(app) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no app named '", app, "'"));
  }
  if (limit == 0 || limit > kMaxScanState) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be 1..", kMaxScanState, ", not ", limit));
  }
  if (!cursor.empty() && !absl::StartsWith(cursor, prefix)) {
    return absl::InvalidArgumentError(
        "the cursor does not start with the prefix: it is from another scan");
  }
  StatePage page;
  std::unique_ptr<KvIterator> it;
  {
    // The iterator's snapshot and the height are of the same moment.
    absl::ReaderMutexLock l(&state_mu_);
    it = opts_.store->NewIterator(keys::State(app, prefix));
    page.height = chain_.height;
  }
  if (!cursor.empty()) {
    it->Seek(std::string_view(cursor).substr(prefix.size()));
    const std::string after = keys::State(app, cursor);
    if (it->Valid() && it->key() == after) it->Next();
  }
  for (; it->Valid(); it->Next()) {
    absl::StatusOr<keys::AppKey> ak = keys::ParseState(it->key());
    if (!ak.ok()) return Corrupt("state key", ak.status());
    if (page.items.size() == limit) {
      page.next_cursor = page.items.back().key;
      break;
    }
    absl::StatusOr<StateEntry> entry = keys::DecodeStateEntry(it->value());
    if (!entry.ok()) return Corrupt("state entry", entry.status());
    page.items.push_back(StateItem{std::string(ak->key),
                                   std::move(entry->value),
                                   std::move(entry->owner)});
  }
  if (absl::Status s = it->status(); !s.ok()) return StoreError(s);
  return page;
}

absl::StatusOr<MemberPage> Ledger::ListMembers(const Bytes& cursor,
                                               uint32_t limit) {
  ScopedTimer t(opts_.metrics.query_members);
  if (limit == 0 || limit > kMaxListMembers) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be 1..", kMaxListMembers, ", not ", limit));
  }
  if (cursor.size() > kMaxMemberKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a cursor is a member key of at most ", kMaxMemberKeyBytes, " bytes"));
  }
  const std::string prefix(kMemberKeyPrefix);
  MemberPage page;
  std::unique_ptr<KvIterator> it;
  {
    // The iterator's snapshot, the height and the flag are of one moment.
    absl::ReaderMutexLock l(&state_mu_);
    it = opts_.store->NewIterator(keys::State(admin::kAppName, prefix));
    page.height = chain_.height;
    page.permissioned = permissioned_;
    page.rules = chain_.next_rules;
  }
  if (!cursor.empty()) {
    const std::string hex = ToHex(cursor);
    it->Seek(hex);
    if (it->Valid() &&
        it->key() == keys::State(admin::kAppName, prefix + hex)) {
      it->Next();
    }
  }
  for (; it->Valid(); it->Next()) {
    absl::StatusOr<keys::AppKey> ak = keys::ParseState(it->key());
    if (!ak.ok()) return Corrupt("state key", ak.status());
    const std::string_view hex = ak->key.substr(prefix.size());
    absl::StatusOr<Bytes> key = FromHex(hex);
    // As AdmissionOf: a record that is not a member key's is not listed.
    if (!key.ok() || key->empty() || key->size() > kMaxMemberKeyBytes ||
        ToHex(*key) != hex) {
      continue;
    }
    if (page.public_keys.size() == limit) {
      page.next_cursor = page.public_keys.back();
      break;
    }
    page.public_keys.push_back(*std::move(key));
  }
  if (absl::Status s = it->status(); !s.ok()) return StoreError(s);
  return page;
}

void Ledger::TestOnlySetMaxCommittedTxsPerCall(size_t max_txs) {
  max_committed_txs_.store(max_txs == 0 ? kMaxCommittedTxsPerCall : max_txs,
                           std::memory_order_relaxed);
}

absl::StatusOr<CommittedPage> Ledger::GetCommitted(uint64_t from, uint64_t to) {
  ScopedTimer t(opts_.metrics.query_committed);
  if (from == 0) return absl::InvalidArgumentError("heights start at 1");
  if (from > to) {
    return absl::InvalidArgumentError(
        absl::StrCat("empty range: from ", from, " > to ", to));
  }
  uint64_t latest = 0;
  {
    absl::ReaderMutexLock l(&state_mu_);
    latest = chain_.height;
  }
  CommittedPage page;
  page.next_height = from;
  if (from > latest) return page;
  const uint64_t last =
      std::min({to, latest, from + (kMaxCommittedHeightsPerCall - 1)});
  const size_t max_txs = max_committed_txs_.load(std::memory_order_relaxed);

  // Blocks are read a chunk at a time so memory stays bounded.
  constexpr uint64_t kChunk = 32;
  size_t total_txs = 0;
  for (uint64_t lo = from; lo <= last; lo += kChunk) {
    const uint64_t hi = std::min(last, lo + kChunk - 1);
    // Each height's block, then its admission record (absent on an open
    // chain), from one snapshot.
    std::vector<std::string> ks;
    for (uint64_t h = lo; h <= hi; ++h) {
      ks.push_back(keys::Block(h));
      ks.push_back(keys::Admission(h));
    }
    absl::StatusOr<std::vector<std::optional<std::string>>> vals =
        opts_.store->MultiGet(ks);
    if (!vals.ok()) return StoreError(vals.status());
    for (uint64_t h = lo; h <= hi; ++h) {
      const std::optional<std::string>& raw = (*vals)[2 * (h - lo)];
      if (!raw.has_value()) {
        return Corrupt("block", absl::NotFoundError(
                                    absl::StrCat("missing at height ", h)));
      }
      absl::StatusOr<Block> block = DecodeBlock(AsBytes(*raw));
      if (!block.ok()) return Corrupt("block", block.status());
      page.events.push_back(
          EventForBlock(suite_, *block, BlockHash(suite_, block->header)));
      CommittedEvent& ev = page.events.back();
      if (const std::optional<std::string>& adm = (*vals)[2 * (h - lo) + 1];
          adm.has_value()) {
        absl::StatusOr<keys::AdmissionRecord> rec = keys::DecodeAdmission(*adm);
        if (!rec.ok()) return Corrupt("admission record", rec.status());
        ev.member_changes = std::move(rec->member_changes);
        ev.permissioned = rec->permissioned;
        ev.rules = rec->rules;
      }
      page.next_height = h + 1;
      // Member changes weigh about as much as txs in a reply.
      total_txs += ev.txs.size() + ev.member_changes.size();
      if (total_txs >= max_txs) return page;
    }
  }
  return page;
}

}  // namespace consortia::storage
