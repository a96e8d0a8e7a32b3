// Ledger's validator sets: the genesis's, then one more for each block whose
// txs changed the admin app's "validators/pending" record (a governance
// vote, docs/apps.md "Validator-set changes"). For each such block H the
// ledger keeps V<H>: that record as block H left it, with its state proof,
// forever, because the state trees of old heights are pruned and a verifier
// that follows the sets from the genesis needs the proof of every change
// (the header and certificate of block H + 1, which certify the root, are
// kept with the blocks). The sets in memory serve the certificate check of
// every commit, the evidence check, and the next set consensus gets. The
// meta record "M validator_change_heights" lists the heights of the V
// records (written in the same batch as each), so that loading and listing
// them are point reads (a Redis store keeps no ordered index of V keys).
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
  std::vector<uint64_t> heights;
  {
    absl::ReaderMutexLock l(&state_mu_);
    for (uint64_t h : validator_change_heights_) {
      if (h <= up_to_height) heights.push_back(h);
    }
  }
  if (heights.size() > kMaxValidatorChanges) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", kMaxValidatorChanges,
                     " validator changes up to height ", up_to_height));
  }
  std::vector<StateRecord> out;
  if (heights.empty()) return out;
  // Each record with block H + 1's header and certificate (which certify
  // the state after H), in one read.
  std::vector<std::string> ks;
  ks.reserve(3 * heights.size());
  for (uint64_t h : heights) {
    ks.push_back(keys::ValidatorChange(h));
    ks.push_back(keys::Header(h + 1));
    ks.push_back(keys::Cert(h + 1));
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> vals =
      opts_.store->MultiGet(ks);
  if (!vals.ok()) return StoreError(vals.status());
  for (size_t i = 0; i < heights.size(); ++i) {
    const std::optional<std::string>& rec_raw = (*vals)[3 * i];
    const std::optional<std::string>& header_raw = (*vals)[3 * i + 1];
    const std::optional<std::string>& cert_raw = (*vals)[3 * i + 2];
    if (!rec_raw.has_value()) {
      return Corrupt(
          "validator change record",
          absl::NotFoundError(absl::StrCat("none for height ", heights[i])));
    }
    absl::StatusOr<StateRecord> rec = DecodeStateRecord(AsBytes(*rec_raw));
    if (!rec.ok()) return Corrupt("validator change record", rec.status());
    if (header_raw.has_value() && cert_raw.has_value()) {
      absl::StatusOr<BlockHeader> header = keys::DecodeHeaderValue(*header_raw);
      if (!header.ok()) return Corrupt("header", header.status());
      absl::StatusOr<CommitCertificate> cert =
          DecodeCertificate(AsBytes(*cert_raw));
      if (!cert.ok()) return Corrupt("certificate", cert.status());
      rec->next_header = *std::move(header);
      rec->next_cert = *std::move(cert);
    }
    out.push_back(*std::move(rec));
  }
  return out;
}

absl::Status Ledger::LoadValidatorChanges() {
  auto epochs = std::make_shared<std::vector<ValidatorEpoch>>();
  epochs->push_back(ValidatorEpoch{1, genesis_.validators});
  absl::StatusOr<std::optional<std::string>> index =
      opts_.store->Get(keys::ValidatorChangeHeights());
  if (!index.ok()) return StoreError(index.status());
  std::vector<uint64_t> heights;
  if (index->has_value()) {
    absl::StatusOr<std::vector<uint64_t>> decoded =
        keys::DecodeHeights(**index);
    if (!decoded.ok()) {
      return Inconsistent(absl::StrCat("validator change heights: ",
                                       decoded.status().message()));
    }
    heights = *std::move(decoded);
  }
  std::vector<std::string> ks;
  for (uint64_t h : heights) ks.push_back(keys::ValidatorChange(h));
  absl::StatusOr<std::vector<std::optional<std::string>>> vals =
      opts_.store->MultiGet(ks);
  if (!vals.ok()) return StoreError(vals.status());
  for (size_t i = 0; i < heights.size(); ++i) {
    if (!(*vals)[i].has_value()) {
      return Inconsistent(
          absl::StrCat("no validator change record of height ", heights[i]));
    }
    absl::StatusOr<StateRecord> rec = DecodeStateRecord(AsBytes(*(*vals)[i]));
    absl::StatusOr<ValidatorEpoch> epoch =
        rec.ok() ? EpochOf(*rec) : absl::StatusOr<ValidatorEpoch>(rec.status());
    if (!epoch.ok()) {
      return Inconsistent(
          absl::StrCat("validator change record: ", epoch.status().message()));
    }
    epochs->push_back(*std::move(epoch));
  }
  {
    absl::MutexLock l(&state_mu_);
    epochs_ = std::move(epochs);
    validator_change_heights_ = std::move(heights);
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
  if (change->committed_height == 0) return absl::OkStatus();
  {
    absl::ReaderMutexLock l(&state_mu_);
    if (!validator_change_heights_.empty() &&
        change->committed_height <= validator_change_heights_.back()) {
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
  std::vector<uint64_t> heights;
  {
    absl::ReaderMutexLock l(&state_mu_);
    heights = validator_change_heights_;
  }
  if (!heights.empty() && height <= heights.back()) return absl::OkStatus();
  heights.push_back(height);
  // The record and the index of heights in one write.
  WriteBatch batch;
  batch.Put(keys::ValidatorChange(height), AsString(EncodeStateRecord(*rec)));
  batch.Put(keys::ValidatorChangeHeights(), keys::EncodeHeights(heights));
  if (absl::Status s = opts_.store->Write(batch); !s.ok()) {
    return StoreError(s);
  }
  absl::MutexLock l(&state_mu_);
  auto next = std::make_shared<std::vector<ValidatorEpoch>>(*epochs_);
  next->push_back(*std::move(epoch));
  spdlog::info(
      "storage: block {} changed the validator set: {} validators from "
      "height {}",
      height, next->back().validators.size(), next->back().from_height);
  epochs_ = std::move(next);
  validator_change_heights_ = std::move(heights);
  return absl::OkStatus();
}

}  // namespace consortia::storage
