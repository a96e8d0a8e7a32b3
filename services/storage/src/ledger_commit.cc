// The ledger's commit path: validate a block, execute its txs with the native
// apps, write block, state, tree, receipts and indexes in one atomic batch,
// and publish the commit event.
#include <algorithm>
#include <cstddef>
#include <future>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "apps/admin_app.h"
#include "apps/membership.h"
#include "consortia/admin_records.h"
#include "consortia/codec.h"
#include "consortia/log.h"
#include "consortia/merkle.h"
#include "ledger.h"

namespace consortia::storage {
namespace {

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

// Whether `sender` has a member record (read through the overlay, which
// holds it prefetched).
absl::StatusOr<bool> IsMember(StateOverlay* overlay, ByteView sender) {
  absl::StatusOr<std::optional<admin::MemberRecord>> m =
      FindMember(overlay, sender);
  if (!m.ok()) return m.status();
  return m->has_value();
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

keys::AdmissionRecord AdmissionOf(const StateOverlay::WriteSet& writes,
                                  bool permissioned_before) {
  keys::AdmissionRecord out;
  out.permissioned = permissioned_before;
  // The write set is ordered by store key, and the admin app's records sit
  // together in it; hex keeps byte order, so the changes come out ascending.
  const std::string first = keys::State(admin::kAppName, "");
  for (auto it = writes.lower_bound(first);
       it != writes.end() && it->first.starts_with(first); ++it) {
    absl::StatusOr<keys::AppKey> ak = keys::ParseState(it->first);
    if (!ak.ok() || ak->app != admin::kAppName) continue;
    const bool written = it->second.has_value();
    if (ak->key == kAdminConfigKey) {
      out.permissioned = written;
      continue;
    }
    if (!ak->key.starts_with(kMemberKeyPrefix)) continue;
    const std::string_view hex = ak->key.substr(kMemberKeyPrefix.size());
    absl::StatusOr<Bytes> key = FromHex(hex);
    if (!key.ok() || key->empty() || key->size() > kMaxMemberKeyBytes ||
        ToHex(*key) != hex) {
      spdlog::warn("storage: admin record '{}' is not a member key record",
                   ak->key);
      continue;
    }
    out.member_changes.push_back(MemberChange{*std::move(key), written});
  }
  return out;
}

std::optional<ChainRules> Ledger::RulesChange(
    const StateOverlay::WriteSet& writes, const ChainRules& before) {
  auto it = writes.find(keys::State(admin::kAppName, kAdminConfigKey));
  if (it == writes.end() || !it->second.has_value()) return std::nullopt;
  std::optional<ChainRules> after = RulesOfConfig(AsString(it->second->value));
  if (!after.has_value() || *after == before) return std::nullopt;
  return after;
}

std::optional<ChainRules> Ledger::RulesOfConfig(std::string_view json) {
  absl::StatusOr<admin::ConfigRecord> config = admin::DecodeConfig(json);
  absl::StatusOr<ChainRules> rules =
      config.ok() ? RulesInForce(genesis_.rules, *config) : config.status();
  if (rules.ok()) return *rules;
  opts_.metrics.error_corrupt.Inc();
  spdlog::error(
      "storage: the admin config record does not give chain rules ({}); the "
      "rules stay as they were",
      rules.status().ToString());
  return std::nullopt;
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
  // The rules in force now: a retry is of the last block committed, whose
  // next height's rules they are.
  std::optional<ChainRules> rules;
  {
    absl::ReaderMutexLock l(&state_mu_);
    rules = chain_.next_rules;
  }
  return CommitResult{roots->state_root, roots->receipts_root,
                      ValidatorsOf(height + 1), rules};
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
  if (absl::Status s =
          VerifyCertificate(suite_, genesis_, ValidatorsOf(h.height), h, cert);
      !s.ok()) {
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
  // On a permissioned chain each sender's member record is among them.
  const bool permissioned = genesis_.consortium.has_value();
  std::vector<std::string> state_keys;
  {
    std::vector<std::string> app_keys;
    std::vector<AppStateKey> other_keys;
    for (size_t i = 0; i < n; ++i) {
      if (!txs[i].has_value()) continue;
      if (permissioned) {
        state_keys.push_back(
            keys::State(admin::kAppName, admin::MemberKey(txs[i]->sender)));
      }
      const NativeApp* app = opts_.apps->Find(txs[i]->app);
      if (app == nullptr) continue;
      app_keys.clear();
      app->AddReadHints(*txs[i], &app_keys);
      for (const std::string& k : app_keys) {
        state_keys.push_back(keys::State(txs[i]->app, k));
      }
      other_keys.clear();
      app->AddOtherAppReadHints(*txs[i], &other_keys);
      for (const AppStateKey& k : other_keys) {
        if (k.app.empty() || k.app.size() > kMaxAppBytes) continue;
        state_keys.push_back(keys::State(k.app, k.key));
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
  out.event_txs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!txs[i].has_value()) continue;
    out.event_txs.push_back(CommittedTx{hashes[i], txs[i]->valid_until});
  }
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
  // Block 1 of a permissioned chain starts with the genesis's consortium,
  // written before its txs (so that they are already checked against it)
  // and, like any record, in the block's state root.
  if (height == 1 && permissioned) {
    SeedConsortium(genesis_, &overlay);
    overlay.CommitTx();
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
    } else if (absl::StatusOr<bool> member =
                   permissioned ? IsMember(&overlay, tx.sender) : true;
               !member.ok()) {
      return StoreError(member.status());
    } else if (!*member) {
      // Deterministic: every node reads the same member records.
      r = MakeReceipt(hashes[i], ExecCode::kUnauthorized,
                      absl::StrCat("sender ", ToHex(tx.sender),
                                   " is not a registered member key"));
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
    ByteView encoded, const CommitCertificate& cert) {
  const absl::Time start = absl::Now();
  absl::MutexLock commit_lock(&commit_mu_);
  PhaseClock clock;
  // Decoded once, to check and execute it. What is stored is `encoded`
  // itself: only a block's own encoding decodes to it (types.h), so these
  // bytes are EncodeBlock(block), and nothing encodes the block again.
  absl::StatusOr<Block> decoded = DecodeBlock(encoded);
  if (!decoded.ok()) {
    opts_.metrics.error_rejected_block.Inc();
    return absl::InvalidArgumentError(
        absl::StrCat("block does not decode: ", decoded.status().message()));
  }
  const Block& block = *decoded;
  const uint64_t height = block.header.height;
  const Hash32 block_hash = BlockHash(suite_, block.header);

  ChainState chain;
  bool permissioned_before = false;
  {
    absl::ReaderMutexLock l(&state_mu_);
    chain = chain_;
    permissioned_before = permissioned_;
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
      // A retry may come after a failed KeepValidatorChange (below).
      if (absl::Status s = KeepLatestValidatorChange(); !s.ok()) return s;
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
  keys::AdmissionRecord admission =
      AdmissionOf(exec->writes, permissioned_before);
  admission.rules = RulesChange(exec->writes, *chain.next_rules);
  const double execute_secs = clock.Lap();

  // The block's own records are encoded, and the receipts root computed, on
  // another core next to the state tree update.
  CommitResult result;
  WriteBatch data;
  std::future<Hash32> receipts_root = std::async(std::launch::async, [&] {
    data.Reserve(exec->new_txs.size() + exec->writes.size() + 8);
    data.Put(keys::Block(height), AsString(encoded));
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
    // Kept for GetCommitted: a follower that fetches this height sees the
    // same member changes as the event. An open chain writes none.
    if (admission.permissioned || !admission.member_changes.empty() ||
        admission.rules.has_value()) {
      data.PutOwned(keys::Admission(height), keys::EncodeAdmission(admission));
    }
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
    permissioned_ = admission.permissioned;
    if (admission.rules.has_value()) chain_.next_rules = admission.rules;
    result.next_rules = chain_.next_rules;
  }
  const double write_secs = clock.Lap();
  if (admission.rules.has_value()) {
    spdlog::info(
        "storage: block {} changed the chain rules; from height {}: "
        "max_block_txs {}, max_block_bytes {}, replay_window {}",
        height, height + 1, admission.rules->max_block_txs,
        admission.rules->max_block_bytes, admission.rules->replay_window);
  }
  // A governance vote in this block changed the validator set (block 1's
  // record is the genesis set, committed at 0).
  if (height > 1 && exec->writes.contains(
                        keys::State(admin::kAppName, admin::kValidatorsKey))) {
    if (absl::Status s = KeepValidatorChange(height); !s.ok()) {
      spdlog::error("storage: cannot keep the validator change of block {}: {}",
                    height, s.ToString());
      return s;
    }
  }
  result.next_validators = ValidatorsOf(height + 1);

  if (opts_.publisher != nullptr) {
    CommittedEvent ev;
    ev.height = height;
    ev.block_hash = block_hash;
    ev.txs = std::move(exec->event_txs);
    ev.member_changes = std::move(admission.member_changes);
    ev.permissioned = admission.permissioned;
    ev.rules = admission.rules;
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

}  // namespace consortia::storage
