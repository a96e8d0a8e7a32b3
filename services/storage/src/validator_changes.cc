// Ledger's validator sets: the genesis's, then one more for each block whose
// txs changed the admin app's "validators/pending" record (a governance
// vote, docs/apps.md "Validator-set changes"). For each such block H the
// ledger keeps V<H>: that record as block H left it, with its state proof,
// forever, because the state trees of old heights are pruned and a verifier
// that follows the sets from the genesis needs the proof of every change
// (the header and certificate of block H + 1, which certify the root, are
// kept with the blocks). The sets in memory serve the certificate check of
// every commit, the evidence check, and the next set consensus gets.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/admin_records.h"
#include "consortia/proof_bundle.h"
#include "keys.h"
#include "ledger.h"
#include "spdlog/spdlog.h"

namespace consortia::storage {
namespace {

std::vector<Validator> ToValidators(
    const std::vector<admin::ValidatorEntry>& entries) {
  std::vector<Validator> out;
  out.reserve(entries.size());
  for (const admin::ValidatorEntry& e : entries) {
    out.push_back(Validator{e.name, e.public_key, e.power});
  }
  return out;
}

// The epoch a kept change starts.
absl::StatusOr<ValidatorEpoch> EpochOf(const StateRecord& rec) {
  if (!rec.found) return absl::DataLossError("the record is absent");
  absl::StatusOr<admin::ValidatorChangeRecord> change =
      admin::DecodeValidatorChange(AsString(rec.value));
  if (!change.ok()) return change.status();
  if (change->committed_height != rec.height) {
    return absl::DataLossError(absl::StrCat("the record of height ", rec.height,
                                            " says it was committed at ",
                                            change->committed_height));
  }
  return ValidatorEpoch{change->effective_height,
                        ToValidators(change->validators)};
}

}  // namespace

std::shared_ptr<const std::vector<ValidatorEpoch>> Ledger::ValidatorEpochs() {
  absl::ReaderMutexLock l(&state_mu_);
  return epochs_;
}

std::vector<Validator> Ledger::ValidatorsOf(uint64_t height) {
  return ValidatorsAt(*ValidatorEpochs(), height);
}

absl::StatusOr<std::vector<StateRecord>> Ledger::ListValidatorChanges(
    uint64_t up_to_height) {
  std::vector<StateRecord> out;
  std::unique_ptr<KvIterator> it =
      opts_.store->NewIterator(std::string(1, keys::kValidatorChangePrefix));
  for (it->Seek(""); it->Valid(); it->Next()) {
    absl::StatusOr<StateRecord> rec = DecodeStateRecord(AsBytes(it->value()));
    if (!rec.ok()) return Corrupt("validator change record", rec.status());
    if (rec->height > up_to_height) break;
    if (out.size() == kMaxValidatorChanges) {
      return absl::ResourceExhaustedError(
          absl::StrCat("more than ", kMaxValidatorChanges,
                       " validator changes up to height ", up_to_height));
    }
    out.push_back(*std::move(rec));
  }
  if (!it->status().ok()) return StoreError(it->status());
  if (out.empty()) return out;
  // Block H + 1 certifies the state after H; read with the records' own
  // header and certificate pairs in one snapshot.
  std::vector<std::string> ks;
  ks.reserve(2 * out.size());
  for (const StateRecord& r : out) {
    ks.push_back(keys::Header(r.height + 1));
    ks.push_back(keys::Cert(r.height + 1));
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> vals =
      opts_.store->MultiGet(ks);
  if (!vals.ok()) return StoreError(vals.status());
  for (size_t i = 0; i < out.size(); ++i) {
    const std::optional<std::string>& header_raw = (*vals)[2 * i];
    const std::optional<std::string>& cert_raw = (*vals)[2 * i + 1];
    if (!header_raw.has_value() || !cert_raw.has_value()) continue;
    absl::StatusOr<BlockHeader> header = keys::DecodeHeaderValue(*header_raw);
    if (!header.ok()) return Corrupt("header", header.status());
    absl::StatusOr<CommitCertificate> cert =
        DecodeCertificate(AsBytes(*cert_raw));
    if (!cert.ok()) return Corrupt("certificate", cert.status());
    out[i].next_header = *std::move(header);
    out[i].next_cert = *std::move(cert);
  }
  return out;
}

absl::Status Ledger::LoadValidatorChanges() {
  auto epochs = std::make_shared<std::vector<ValidatorEpoch>>();
  epochs->push_back(ValidatorEpoch{1, genesis_.validators});
  std::unique_ptr<KvIterator> it =
      opts_.store->NewIterator(std::string(1, keys::kValidatorChangePrefix));
  uint64_t last_kept = 0;
  for (it->Seek(""); it->Valid(); it->Next()) {
    absl::StatusOr<StateRecord> rec = DecodeStateRecord(AsBytes(it->value()));
    absl::StatusOr<ValidatorEpoch> epoch =
        rec.ok() ? EpochOf(*rec) : absl::StatusOr<ValidatorEpoch>(rec.status());
    if (!epoch.ok()) {
      return Inconsistent(
          absl::StrCat("validator change record: ", epoch.status().message()));
    }
    last_kept = rec->height;
    epochs->push_back(*std::move(epoch));
  }
  if (!it->status().ok()) return it->status();
  {
    absl::MutexLock l(&state_mu_);
    epochs_ = std::move(epochs);
    last_validator_change_ = last_kept;
  }
  return KeepLatestValidatorChange();
}

absl::Status Ledger::KeepLatestValidatorChange() {
  // The latest change in state must have its V record (unless the chain has
  // no admin state, or holds only the genesis set, committed at 0).
  absl::StatusOr<std::optional<std::string>> current =
      opts_.store->Get(keys::State(admin::kAppName, admin::kValidatorsKey));
  if (!current.ok()) return StoreError(current.status());
  if (!current->has_value()) return absl::OkStatus();
  absl::StatusOr<keys::StateEntry> entry = keys::DecodeStateEntry(**current);
  absl::StatusOr<admin::ValidatorChangeRecord> change =
      entry.ok() ? admin::DecodeValidatorChange(AsString(entry->value))
                 : absl::StatusOr<admin::ValidatorChangeRecord>(entry.status());
  if (!change.ok()) {
    return Inconsistent(
        absl::StrCat("validators/pending: ", change.status().message()));
  }
  {
    absl::ReaderMutexLock l(&state_mu_);
    if (change->committed_height <= last_validator_change_) {
      return absl::OkStatus();
    }
  }
  return KeepValidatorChange(change->committed_height);
}

absl::Status Ledger::KeepValidatorChange(uint64_t height) {
  absl::StatusOr<StateRecord> rec = GetStateAt(
      std::string(admin::kAppName), std::string(admin::kValidatorsKey), height);
  if (!rec.ok()) return rec.status();
  rec->next_header.reset();
  rec->next_cert.reset();
  absl::StatusOr<ValidatorEpoch> epoch = EpochOf(*rec);
  if (!epoch.ok()) return Corrupt("validators/pending", epoch.status());
  WriteBatch batch;
  batch.Put(keys::ValidatorChange(height), AsString(EncodeStateRecord(*rec)));
  if (absl::Status s = opts_.store->Write(batch); !s.ok()) {
    return StoreError(s);
  }
  absl::MutexLock l(&state_mu_);
  if (height <= last_validator_change_) return absl::OkStatus();
  auto next = std::make_shared<std::vector<ValidatorEpoch>>(*epochs_);
  next->push_back(*std::move(epoch));
  spdlog::info(
      "storage: block {} changed the validator set: {} validators from "
      "height {}",
      height, next->back().validators.size(), next->back().from_height);
  epochs_ = std::move(next);
  last_validator_change_ = height;
  return absl::OkStatus();
}

}  // namespace consortia::storage
