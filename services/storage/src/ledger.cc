#include "ledger.h"

#include <algorithm>
#include <cstddef>
#include <future>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "consortia/codec.h"
#include "consortia/log.h"
#include "consortia/merkle.h"
#include "consortia/state_proof.h"

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

// Times the consecutive phases of one commit.
class PhaseClock {
 public:
  PhaseClock() : last_(absl::Now()) {}
  // Seconds since the previous lap, or since construction.
  double Lap() {
    const absl::Time now = absl::Now();
    const double secs = absl::ToDoubleSeconds(now - last_);
    last_ = now;
    return secs;
  }

 private:
  absl::Time last_;
};

// Blocks with at least this many txs decode them on two threads.
constexpr size_t kParallelDecodeTxs = 64;

std::string ShortHex(const Hash32& h) { return ToHex(ByteView(h.data(), 8)); }

Receipt MakeReceipt(const Hash32& tx_hash, ExecCode code, std::string log) {
  Receipt r;
  r.tx_hash = tx_hash;
  r.code = code;
  if (log.size() > kMaxLogBytes) log.resize(kMaxLogBytes);
  r.log = std::move(log);
  return r;
}

}  // namespace

CommittedEvent EventForBlock(const CryptoSuite& suite, const Block& block,
                             const Hash32& block_hash) {
  CommittedEvent ev;
  ev.height = block.header.height;
  ev.block_hash = block_hash;
  ev.txs.reserve(block.txs.size());
  for (const Bytes& raw : block.txs) {
    absl::StatusOr<Transaction> tx = DecodeTx(raw);
    if (!tx.ok()) continue;
    ev.txs.push_back(CommittedTx{TxHash(suite, *tx), tx->valid_until});
  }
  return ev;
}

absl::StatusOr<std::vector<SmtWrite>> StateTreeWrites(
    const CryptoSuite& suite, const StateOverlay::WriteSet& writes) {
  std::vector<SmtWrite> out;
  out.reserve(writes.size());
  for (const auto& [store_key, entry] : writes) {
    absl::StatusOr<keys::AppKey> ak = keys::ParseState(store_key);
    if (!ak.ok()) return ak.status();
    SmtWrite w;
    w.path = StateKeyPath(suite, ak->app, ak->key);
    if (entry.has_value()) w.value_record = keys::EncodeStateEntry(*entry);
    out.push_back(std::move(w));
  }
  return out;
}

Ledger::Ledger(Options opts)
    : opts_(std::move(opts)),
      genesis_(*opts_.genesis),
      suite_(*opts_.suite),
      tree_(opts_.store, opts_.suite, opts_.tree_cache_nodes) {}

uint64_t Ledger::OldestKept(uint64_t latest) const {
  const uint64_t by_flag =
      latest >= opts_.state_versions ? latest - opts_.state_versions + 1 : 0;
  // A store pruned under a smaller --storage_state_versions lacks the older
  // trees even after the flag is raised.
  return std::max(by_flag, pruned_floor_);
}

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::Open(Options opts) {
  if (opts.store == nullptr || opts.genesis == nullptr ||
      opts.suite == nullptr || opts.apps == nullptr) {
    return absl::InvalidArgumentError(
        "Ledger::Open needs a store, a genesis, a crypto suite and apps");
  }
  if (opts.state_versions < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ledger keeps at least 2 state versions, not ",
                     opts.state_versions));
  }
  std::unique_ptr<Ledger> ledger(new Ledger(std::move(opts)));
  ChainState chain;
  if (absl::Status s = ledger->CheckConsistent(&chain); !s.ok()) return s;
  absl::StatusOr<std::optional<std::string>> floor =
      ledger->opts_.store->Get(keys::PrunedThrough());
  if (!floor.ok()) return floor.status();
  if (floor->has_value()) {
    absl::StatusOr<uint64_t> f = keys::DecodeU64(**floor);
    if (!f.ok()) {
      return ledger->Inconsistent(
          absl::StrCat("state pruning mark: ", f.status().message()));
    }
    ledger->pruned_floor_ = *f;
  }
  {
    absl::MutexLock l(&ledger->state_mu_);
    ledger->chain_ = chain;
  }
  ledger->opts_.metrics.block_height.Set(static_cast<double>(chain.height));
  return ledger;
}

absl::Status Ledger::Inconsistent(absl::string_view what) const {
  return absl::FailedPreconditionError(
      absl::StrCat("store at ", opts_.location, " is inconsistent: ", what));
}

absl::Status Ledger::CheckConsistent(ChainState* out) {
  KvStore& store = *opts_.store;
  absl::StatusOr<std::optional<std::string>> latest =
      store.Get(keys::LatestHeight());
  if (!latest.ok()) return latest.status();
  if (!latest->has_value()) {
    // An empty store: no block may exist without the latest-height record.
    std::unique_ptr<KvIterator> it =
        store.NewIterator(std::string(1, keys::kBlockPrefix));
    if (it->Valid()) {
      return Inconsistent("blocks exist but the latest height is missing");
    }
    if (absl::Status s = it->status(); !s.ok()) return s;
    *out = ChainState{};
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> height = keys::DecodeU64(**latest);
  if (!height.ok()) {
    return Inconsistent(
        absl::StrCat("latest height record: ", height.status().message()));
  }
  const uint64_t h = *height;
  if (h == 0) return Inconsistent("latest height is 0");

  absl::StatusOr<std::vector<std::optional<std::string>>> vals =
      store.MultiGet({keys::Block(h), keys::Header(h), keys::Cert(h),
                      keys::Roots(h), keys::Receipts(h), keys::ChainId(),
                      keys::Block(h + 1), keys::StateFormat()});
  if (!vals.ok()) return vals.status();
  if (!(*vals)[7].has_value()) {
    return Inconsistent(absl::StrCat(
        "it has no state tree (state format 'none', this node needs '",
        keys::kStateFormat,
        "'): it was written by an older version; "
        "start from an empty store and let the node sync"));
  }
  if (*(*vals)[7] != keys::kStateFormat) {
    return Inconsistent(
        absl::StrCat("its state tree has format '", *(*vals)[7],
                     "', this node needs '", keys::kStateFormat,
                     "': it was written by another version; "
                     "start from an empty store and let the node sync"));
  }
  const char* names[] = {"block", "header",   "certificate",
                         "roots", "receipts", "chain id"};
  for (size_t i = 0; i < 6; ++i) {
    if (!(*vals)[i].has_value()) {
      return Inconsistent(absl::StrCat("the ", names[i], " of latest height ",
                                       h, " is missing"));
    }
  }
  if ((*vals)[6].has_value()) {
    return Inconsistent(absl::StrCat("a block exists above latest height ", h));
  }
  if (*(*vals)[5] != genesis_.chain_id) {
    return Inconsistent(absl::StrCat("it holds chain '", *(*vals)[5],
                                     "', the genesis is for chain '",
                                     genesis_.chain_id, "'"));
  }
  absl::StatusOr<BlockHeader> header = keys::DecodeHeaderValue(*(*vals)[1]);
  if (!header.ok()) {
    return Inconsistent(
        absl::StrCat("header of height ", h, ": ", header.status().message()));
  }
  absl::StatusOr<Block> block = DecodeBlock(AsBytes(*(*vals)[0]));
  if (!block.ok()) {
    return Inconsistent(
        absl::StrCat("block of height ", h, ": ", block.status().message()));
  }
  if (block->header != *header || header->height != h) {
    return Inconsistent(absl::StrCat("the block and header stored for height ",
                                     h, " disagree"));
  }
  const Hash32 hash = BlockHash(suite_, *header);
  absl::StatusOr<CommitCertificate> cert =
      DecodeCertificate(AsBytes(*(*vals)[2]));
  if (!cert.ok() || cert->block_hash != hash || cert->height != h) {
    return Inconsistent(absl::StrCat("the certificate of height ", h,
                                     " does not match its block"));
  }
  absl::StatusOr<keys::StoredRoots> roots = keys::DecodeRoots(*(*vals)[3]);
  if (!roots.ok()) {
    return Inconsistent(
        absl::StrCat("roots of height ", h, ": ", roots.status().message()));
  }
  absl::StatusOr<std::optional<std::string>> indexed =
      store.Get(keys::BlockHash(hash));
  if (!indexed.ok()) return indexed.status();
  if (!indexed->has_value() || **indexed != keys::EncodeU64(h)) {
    return Inconsistent(absl::StrCat("the block hash index does not map ",
                                     ToHex(hash), " to height ", h));
  }
  if (!IsZero(roots->state_root)) {
    absl::StatusOr<std::optional<std::string>> root_node =
        store.Get(keys::Node(roots->state_root));
    if (!root_node.ok()) return root_node.status();
    if (!root_node->has_value()) {
      return Inconsistent(absl::StrCat("the state tree root ",
                                       ToHex(roots->state_root), " of height ",
                                       h, " is missing"));
    }
  }
  out->height = h;
  out->last_block_hash = hash;
  out->last_time_ms = header->time_ms;
  out->state_root = roots->state_root;
  out->receipts_root = roots->receipts_root;
  return absl::OkStatus();
}

absl::Status Ledger::StoreError(absl::Status s) {
  opts_.metrics.error_store.Inc();
  return s;
}

absl::Status Ledger::Corrupt(absl::string_view what, const absl::Status& s) {
  opts_.metrics.error_corrupt.Inc();
  return absl::DataLossError(
      absl::StrCat("stored ", what, " does not decode: ", s.message()));
}

absl::StatusOr<ChainState> Ledger::GetChainState() {
  ScopedTimer t(opts_.metrics.query_chain_state);
  absl::ReaderMutexLock l(&state_mu_);
  return chain_;
}

absl::StatusOr<CommitResult> Ledger::StoredResult(uint64_t height) {
  absl::StatusOr<std::optional<std::string>> raw =
      opts_.store->Get(keys::Roots(height));
  if (!raw.ok()) return StoreError(raw.status());
  if (!raw->has_value()) {
    return Corrupt(
        "roots", absl::NotFoundError(absl::StrCat("none for height ", height)));
  }
  absl::StatusOr<keys::StoredRoots> roots = keys::DecodeRoots(**raw);
  if (!roots.ok()) return Corrupt("roots", roots.status());
  return CommitResult{roots->state_root, roots->receipts_root};
}

absl::Status Ledger::ValidateBlock(const Block& block,
                                   const CommitCertificate& cert,
                                   const Hash32& block_hash,
                                   const ChainState& chain) {
  const BlockHeader& h = block.header;
  if (h.chain_id != genesis_.chain_id) {
    return absl::InvalidArgumentError(absl::StrCat("block is for chain '",
                                                   h.chain_id, "', this is '",
                                                   genesis_.chain_id, "'"));
  }
  if (h.height != chain.height + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "block height ", h.height, " does not extend the chain at ",
        chain.height, " (expected ", chain.height + 1, ")"));
  }
  if (h.prev_hash != chain.last_block_hash) {
    return absl::FailedPreconditionError(
        absl::StrCat("block ", h.height, " prev_hash ", ToHex(h.prev_hash),
                     " is not the hash of block ", chain.height, " (",
                     ToHex(chain.last_block_hash), ")"));
  }
  if (h.state_root != chain.state_root) {
    return absl::FailedPreconditionError(
        absl::StrCat("block ", h.height, " state_root ", ToHex(h.state_root),
                     " differs from storage's ", ToHex(chain.state_root)));
  }
  if (h.receipts_root != chain.receipts_root) {
    return absl::FailedPreconditionError(absl::StrCat(
        "block ", h.height, " receipts_root ", ToHex(h.receipts_root),
        " differs from storage's ", ToHex(chain.receipts_root)));
  }
  if (block.txs.size() > kMaxBlockTxs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block has ", block.txs.size(), " txs, over ", kMaxBlockTxs));
  }
  if (MerkleRoot(suite_, block.txs) != h.tx_root) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block ", h.height, " tx_root does not match its transactions"));
  }
  if (cert.height != h.height || cert.block_hash != block_hash) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate is for height ", cert.height, " block ",
                     ToHex(cert.block_hash), ", not block ", h.height, " ",
                     ToHex(block_hash)));
  }
  if (absl::Status s = VerifyCertificate(suite_, genesis_, h, cert); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid commit certificate for block ", h.height, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Ledger::Executed> Ledger::Execute(const Block& block) {
  const uint64_t height = block.header.height;
  const size_t n = block.txs.size();

  // Decode every tx and look up all their hashes in one read.
  std::vector<std::optional<Transaction>> txs(n);
  std::vector<Hash32> hashes(n);
  std::vector<std::string> decode_errors(n);
  std::vector<std::string> index_keys;
  std::vector<size_t> index_of;  // tx position of each index key
  // Each tx decodes and hashes on its own: a large block's two halves do so
  // on two cores.
  auto decode = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      absl::StatusOr<Transaction> tx = DecodeTx(block.txs[i]);
      if (!tx.ok()) {
        hashes[i] = suite_.Hash(block.txs[i]);
        decode_errors[i] = std::string(tx.status().message());
        continue;
      }
      hashes[i] = TxHash(suite_, *tx);
      txs[i] = *std::move(tx);
    }
  };
  const size_t split = n >= kParallelDecodeTxs ? n / 2 : n;
  std::future<void> second_half;
  if (split < n) second_half = std::async(std::launch::async, decode, split, n);
  decode(0, split);
  if (second_half.valid()) second_half.get();
  for (size_t i = 0; i < n; ++i) {
    if (!txs[i].has_value()) continue;
    index_keys.push_back(keys::Tx(hashes[i]));
    index_of.push_back(i);
  }
  // The state keys the apps say the txs will read, each once: read in the
  // same MultiGet as the tx index, so that executing the block costs one
  // store read (one round trip on Redis) instead of one per tx.
  std::vector<std::string> state_keys;
  {
    std::vector<std::string> app_keys;
    for (size_t i = 0; i < n; ++i) {
      if (!txs[i].has_value()) continue;
      const NativeApp* app = opts_.apps->Find(txs[i]->app);
      if (app == nullptr) continue;
      app_keys.clear();
      app->AddReadHints(*txs[i], &app_keys);
      for (const std::string& k : app_keys) {
        state_keys.push_back(keys::State(txs[i]->app, k));
      }
    }
    std::sort(state_keys.begin(), state_keys.end());
    state_keys.erase(std::unique(state_keys.begin(), state_keys.end()),
                     state_keys.end());
  }
  const size_t index_count = index_keys.size();
  std::vector<std::string> read_keys = std::move(index_keys);
  read_keys.insert(read_keys.end(), std::make_move_iterator(state_keys.begin()),
                   std::make_move_iterator(state_keys.end()));

  Executed out;
  out.receipts.reserve(n);
  StateOverlay overlay(opts_.store);
  std::vector<bool> committed_before(n, false);
  if (!read_keys.empty()) {
    absl::StatusOr<std::vector<std::optional<std::string>>> found =
        opts_.store->MultiGet(read_keys);
    if (!found.ok()) return StoreError(found.status());
    if (found->size() != read_keys.size()) {
      return StoreError(
          absl::InternalError(absl::StrCat("the store answered ", found->size(),
                                           " of ", read_keys.size(), " keys")));
    }
    for (size_t j = 0; j < index_count; ++j) {
      committed_before[index_of[j]] = (*found)[j].has_value();
    }
    const auto state_begin = static_cast<std::ptrdiff_t>(index_count);
    found->erase(found->begin(), found->begin() + state_begin);
    overlay.Prefetched(
        std::vector<std::string>(
            std::make_move_iterator(read_keys.begin() + state_begin),
            std::make_move_iterator(read_keys.end())),
        *std::move(found));
  }
  absl::flat_hash_set<Hash32> seen;
  for (size_t i = 0; i < n; ++i) {
    Receipt r;
    if (!txs[i].has_value()) {
      r = MakeReceipt(
          hashes[i], ExecCode::kBadArgs,
          absl::StrCat("malformed transaction: ", decode_errors[i]));
      out.receipts.push_back(EncodeReceipt(r));
      continue;
    }
    const Transaction& tx = *txs[i];
    if (committed_before[i] || !seen.insert(hashes[i]).second) {
      r = MakeReceipt(hashes[i], ExecCode::kDuplicate,
                      "the same transaction was already committed");
      out.receipts.push_back(EncodeReceipt(r));
      continue;
    }
    out.new_txs.emplace_back(
        hashes[i], keys::TxLocation{height, static_cast<uint32_t>(i)});
    if (tx.chain_id != genesis_.chain_id) {
      r = MakeReceipt(
          hashes[i], ExecCode::kBadArgs,
          absl::StrCat("transaction is for chain '", tx.chain_id, "'"));
    } else if (tx.valid_until < height) {
      r = MakeReceipt(hashes[i], ExecCode::kExpired,
                      absl::StrCat("valid until height ", tx.valid_until,
                                   ", committed at ", height));
    } else if (const NativeApp* app = opts_.apps->Find(tx.app);
               app == nullptr) {
      r = MakeReceipt(hashes[i], ExecCode::kUnknownApp,
                      absl::StrCat("no app named '", tx.app, "'"));
    } else {
      TxContext ctx{&tx, hashes[i], height, block.header.time_ms};
      absl::StatusOr<ExecResult> res = app->Execute(ctx, &overlay);
      if (!res.ok()) return StoreError(res.status());
      if (res->code == ExecCode::kOk) {
        overlay.CommitTx();
      } else {
        overlay.RollbackTx();
      }
      r = MakeReceipt(hashes[i], res->code, std::move(res->log));
    }
    out.receipts.push_back(EncodeReceipt(r));
  }
  out.writes = overlay.TakeWrites();
  return out;
}

absl::StatusOr<CommitResult> Ledger::CommitBlock(
    const Block& block, const CommitCertificate& cert) {
  const absl::Time start = absl::Now();
  absl::MutexLock commit_lock(&commit_mu_);
  PhaseClock clock;
  const uint64_t height = block.header.height;
  const Hash32 block_hash = BlockHash(suite_, block.header);

  ChainState chain;
  {
    absl::ReaderMutexLock l(&state_mu_);
    chain = chain_;
  }
  if (height == 0) {
    opts_.metrics.error_rejected_block.Inc();
    return absl::InvalidArgumentError("block height 0 is not valid");
  }
  if (height <= chain.height) {
    // Idempotent: the same block again returns what the first commit did.
    absl::StatusOr<std::optional<std::string>> at =
        opts_.store->Get(keys::BlockHash(block_hash));
    if (!at.ok()) return StoreError(at.status());
    if (at->has_value() && **at == keys::EncodeU64(height)) {
      return StoredResult(height);
    }
    opts_.metrics.error_rejected_block.Inc();
    return absl::FailedPreconditionError(
        absl::StrCat("a different block is already committed at height ",
                     height, " (chain is at ", chain.height, ")"));
  }
  if (absl::Status s = ValidateBlock(block, cert, block_hash, chain); !s.ok()) {
    opts_.metrics.error_rejected_block.Inc();
    spdlog::warn("storage: rejected block {} {}: {}", height,
                 ShortHex(block_hash), s.ToString());
    return s;
  }
  const double validate_secs = clock.Lap();

  absl::StatusOr<Executed> exec = Execute(block);
  if (!exec.ok()) return exec.status();
  const double execute_secs = clock.Lap();

  // The block's own records are encoded, and the receipts root computed, on
  // another core next to the state tree update.
  CommitResult result;
  WriteBatch data;
  std::future<Hash32> receipts_root = std::async(std::launch::async, [&] {
    data.Reserve(exec->new_txs.size() + exec->writes.size() + 8);
    data.Put(keys::Block(height), AsString(EncodeBlock(block)));
    data.Put(keys::Header(height), keys::EncodeHeaderValue(block.header));
    data.Put(keys::Cert(height), AsString(EncodeCertificate(cert)));
    data.Put(keys::BlockHash(block_hash), keys::EncodeU64(height));
    for (const auto& [hash, loc] : exec->new_txs) {
      data.PutOwned(keys::Tx(hash), keys::EncodeTxLocation(loc));
    }
    data.PutOwned(keys::Receipts(height),
                  keys::EncodeReceiptList(exec->receipts));
    data.Put(keys::TxCount(height),
             keys::EncodeU32(static_cast<uint32_t>(block.txs.size())));
    for (const auto& [key, entry] : exec->writes) {
      if (entry.has_value()) {
        data.PutOwned(key, keys::EncodeStateEntry(*entry));
      } else {
        data.Delete(key);
      }
    }
    return MerkleRoot(suite_, exec->receipts);
  });

  WriteBatch batch;
  absl::StatusOr<std::vector<SmtWrite>> tree_writes =
      StateTreeWrites(suite_, exec->writes);
  if (!tree_writes.ok()) return tree_writes.status();
  SmtApplyStats tree_stats;
  // Keep the trees of the latest state_versions heights (this one included).
  const uint64_t prune_through = OldestKept(height);
  absl::StatusOr<Hash32> state_root =
      tree_.Apply(chain.state_root, height, *std::move(tree_writes),
                  prune_through, &batch, &tree_stats);
  if (!state_root.ok()) {
    spdlog::error("storage: updating the state tree for block {} failed: {}",
                  height, state_root.status().ToString());
    if (absl::IsDataLoss(state_root.status()) ||
        absl::IsNotFound(state_root.status())) {
      return Corrupt("state tree", state_root.status());
    }
    return StoreError(state_root.status());
  }
  result.state_root = *state_root;
  result.receipts_root = receipts_root.get();
  batch.Append(std::move(data));
  batch.Put(keys::Roots(height),
            keys::EncodeRoots({result.state_root, result.receipts_root}));
  batch.Put(keys::LatestHeight(), keys::EncodeU64(height));
  if (height == 1) {
    batch.Put(keys::ChainId(), genesis_.chain_id);
    batch.Put(keys::StateFormat(), keys::kStateFormat);
  }

  const double tree_secs = clock.Lap();
  {
    absl::MutexLock l(&state_mu_);
    if (absl::Status s = opts_.store->Write(batch); !s.ok()) {
      spdlog::error("storage: writing block {} failed: {}", height,
                    s.ToString());
      return StoreError(s);
    }
    chain_.height = height;
    chain_.last_block_hash = block_hash;
    chain_.last_time_ms = block.header.time_ms;
    chain_.state_root = result.state_root;
    chain_.receipts_root = result.receipts_root;
  }
  const double write_secs = clock.Lap();

  if (opts_.publisher != nullptr) {
    CommittedEvent ev = EventForBlock(suite_, block, block_hash);
    opts_.publisher->Publish(
        kTopicBlockCommitted,
        static_cast<uint16_t>(MsgType::kEventBlockCommitted),
        EncodeCommittedEvent(ev));
  }

  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  opts_.metrics.commit_duration.Observe(secs);
  opts_.metrics.commit_validate.Observe(validate_secs);
  opts_.metrics.commit_execute.Observe(execute_secs);
  opts_.metrics.commit_tree.Observe(tree_secs);
  opts_.metrics.commit_write.Observe(write_secs);
  timings_.blocks++;
  timings_.validate += validate_secs;
  timings_.execute += execute_secs;
  timings_.tree += tree_secs;
  timings_.write += write_secs;
  opts_.metrics.commit_batch_bytes.Observe(
      static_cast<double>(batch.ByteSize()));
  opts_.metrics.block_height.Set(static_cast<double>(height));
  opts_.metrics.txs_committed.Inc(static_cast<double>(block.txs.size()));
  spdlog::info(
      "storage: committed block {} {} txs={} writes={} tree_nodes=+{}/-{} "
      "pruned={} bytes={} in {:.1f} ms",
      height, ShortHex(block_hash), block.txs.size(), exec->writes.size(),
      tree_stats.nodes_written, tree_stats.nodes_retired,
      tree_stats.nodes_pruned, batch.ByteSize(), secs * 1000);
  return result;
}

Ledger::CommitTimings Ledger::commit_timings() const {
  absl::MutexLock l(&commit_mu_);
  return timings_;
}

absl::StatusOr<BlockRecord> Ledger::GetBlock(std::optional<uint64_t> height) {
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

absl::StatusOr<BlockRecord> Ledger::GetBlockByHash(const Hash32& hash) {
  absl::StatusOr<std::optional<std::string>> at =
      opts_.store->Get(keys::BlockHash(hash));
  if (!at.ok()) return StoreError(at.status());
  if (!at->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no block with hash ", ToHex(hash)));
  }
  absl::StatusOr<uint64_t> height = keys::DecodeU64(**at);
  if (!height.ok()) return Corrupt("block hash index", height.status());
  return GetBlock(*height);
}

absl::StatusOr<std::vector<BlockSummary>> Ledger::ListBlocks(uint64_t from,
                                                             uint32_t limit) {
  ScopedTimer t(opts_.metrics.query_block);
  if (from == 0) return absl::InvalidArgumentError("heights start at 1");
  if (limit == 0 || limit > kMaxListBlocks) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be 1..", kMaxListBlocks, ", not ", limit));
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

absl::StatusOr<std::vector<BlockRecord>> Ledger::GetBlocks(uint64_t from,
                                                           uint32_t limit,
                                                           uint64_t max_bytes) {
  ScopedTimer t(opts_.metrics.query_block);
  if (from == 0) return absl::InvalidArgumentError("heights start at 1");
  if (limit == 0 || limit > kMaxGetBlocks) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be 1..", kMaxGetBlocks, ", not ", limit));
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
    std::vector<std::string> ks;
    for (uint64_t h = lo; h <= hi; ++h) ks.push_back(keys::Block(h));
    absl::StatusOr<std::vector<std::optional<std::string>>> vals =
        opts_.store->MultiGet(ks);
    if (!vals.ok()) return StoreError(vals.status());
    for (uint64_t h = lo; h <= hi; ++h) {
      const std::optional<std::string>& raw = (*vals)[h - lo];
      if (!raw.has_value()) {
        return Corrupt("block", absl::NotFoundError(
                                    absl::StrCat("missing at height ", h)));
      }
      absl::StatusOr<Block> block = DecodeBlock(AsBytes(*raw));
      if (!block.ok()) return Corrupt("block", block.status());
      page.events.push_back(
          EventForBlock(suite_, *block, BlockHash(suite_, block->header)));
      page.next_height = h + 1;
      total_txs += page.events.back().txs.size();
      if (total_txs >= max_txs) return page;
    }
  }
  return page;
}

}  // namespace consortia::storage
