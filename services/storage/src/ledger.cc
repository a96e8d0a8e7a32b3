// The ledger's store: opening it and checking that it is consistent, and the
// error helpers the commit path (ledger_commit.cc) and the query path
// (ledger_query.cc) share.
#include "ledger.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "consortia/codec.h"

namespace consortia::storage {

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
  absl::StatusOr<std::optional<std::string>> config =
      ledger->opts_.store->Get(keys::State(admin::kAppName, kAdminConfigKey));
  if (!config.ok()) return config.status();
  chain.next_rules = ledger->genesis_.rules;
  if (config->has_value()) {
    absl::StatusOr<keys::StateEntry> entry = keys::DecodeStateEntry(**config);
    if (!entry.ok()) {
      return ledger->Corrupt("admin config record", entry.status());
    }
    chain.next_rules = ledger->RulesOfConfig(AsString(entry->value))
                           .value_or(ledger->genesis_.rules);
  }
  {
    absl::MutexLock l(&ledger->state_mu_);
    ledger->chain_ = chain;
    ledger->permissioned_ = config->has_value();
  }
  if (absl::Status s = ledger->LoadValidatorChanges(); !s.ok()) return s;
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

}  // namespace consortia::storage
