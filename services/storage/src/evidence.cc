// Ledger's evidence records: E<seq> holds each record, F<hash of its
// message> maps the message to its seq so that the same evidence reported
// again (by a restarted consensus, or found twice) is kept once. Every
// record is checked against the validators of its height (the genesis's,
// or a set governance put in force later) before anything is kept:
// storage serves evidence as proof that a validator misbehaved, so it must
// never keep (and publish) a forged accusation, whoever asks.
#include "consortia/evidence.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "keys.h"
#include "ledger.h"

namespace consortia::storage {
namespace {

std::string EvidenceKey(uint64_t seq) {
  std::string k(1, keys::kEvidencePrefix);
  k.append(keys::EncodeU64(seq));
  return k;
}

std::string EvidenceIndexKey(const Hash32& message_hash) {
  std::string k(1, keys::kEvidenceIndexPrefix);
  k.append(reinterpret_cast<const char*>(message_hash.data()),
           message_hash.size());
  return k;
}

std::string EvidenceCountKey() {
  return std::string(1, keys::kMetaPrefix) + "evidence_count";
}

absl::Status CheckRecord(const EvidenceRecord& r) {
  if (r.kind.empty() || r.kind.size() > 64) {
    return absl::InvalidArgumentError("evidence kind must be 1-64 bytes");
  }
  if (r.message.empty() || r.message.size() > kMaxEvidenceMessageBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("evidence message of ", r.message.size(),
                     " bytes; must be 1-", kMaxEvidenceMessageBytes));
  }
  return absl::OkStatus();
}

// The record's message proves what its fields say: it decodes as evidence,
// verifies against the genesis validators (same height, round and type,
// different content, both signatures by the accused validator), and the
// record's kind, height, round and validator are the evidence's own.
// The evidence is checked against the validators of its height.
absl::Status VerifyRecord(const CryptoSuite& suite, const Genesis& genesis,
                          const std::vector<ValidatorEpoch>& epochs,
                          const EvidenceRecord& r) {
  absl::StatusOr<Evidence> ev = DecodeEvidence(r.message);
  if (!ev.ok()) return ev.status();
  if (absl::Status s = VerifyEvidence(
          suite, genesis, ValidatorsAt(epochs, EvidenceHeight(*ev)), *ev);
      !s.ok()) {
    return s;
  }
  if (r.kind != EvidenceKind(*ev) || r.height != EvidenceHeight(*ev) ||
      r.round != EvidenceRound(*ev) ||
      r.validator_index != EvidenceValidator(*ev)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the record says ", r.kind, " by validator ", r.validator_index,
        " at height ", r.height, " round ", r.round, "; its message is ",
        std::string(EvidenceKind(*ev)), " by validator ",
        EvidenceValidator(*ev), " at height ", EvidenceHeight(*ev), " round ",
        EvidenceRound(*ev)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Ledger::RecordEvidence(
    const std::vector<EvidenceRecord>& records) {
  if (records.size() > kMaxListEvidence) {
    return absl::InvalidArgumentError(
        absl::StrCat(records.size(), " evidence records, over the limit of ",
                     kMaxListEvidence));
  }
  const std::shared_ptr<const std::vector<ValidatorEpoch>> epochs =
      ValidatorEpochs();
  for (size_t i = 0; i < records.size(); ++i) {
    const EvidenceRecord& r = records[i];
    absl::Status s = CheckRecord(r);
    if (s.ok()) s = VerifyRecord(suite_, genesis_, *epochs, r);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("evidence record ", i, " (", r.kind, ", validator ",
                       r.validator_index, ", height ", r.height,
                       "): ", s.message(), "; nothing was kept"));
    }
  }
  absl::MutexLock lock(&evidence_mu_);
  absl::StatusOr<std::optional<std::string>> count =
      opts_.store->Get(EvidenceCountKey());
  if (!count.ok()) return StoreError(count.status());
  uint64_t seq = 0;
  if (count->has_value()) {
    absl::StatusOr<uint64_t> n = keys::DecodeU64(**count);
    if (!n.ok()) return Corrupt("evidence count", n.status());
    seq = *n;
  }
  std::vector<std::string> index_keys;
  for (const EvidenceRecord& r : records) {
    index_keys.push_back(EvidenceIndexKey(suite_.Hash(r.message)));
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> known =
      opts_.store->MultiGet(index_keys);
  if (!known.ok()) return StoreError(known.status());
  WriteBatch batch;
  std::vector<std::string> in_batch;
  for (size_t i = 0; i < records.size(); ++i) {
    if ((*known)[i].has_value() || std::find(in_batch.begin(), in_batch.end(),
                                             index_keys[i]) != in_batch.end()) {
      continue;
    }
    EvidenceRecord kept = records[i];
    kept.seq = ++seq;
    batch.Put(EvidenceKey(kept.seq), AsString(EncodeEvidenceRecord(kept)));
    batch.Put(index_keys[i], keys::EncodeU64(kept.seq));
    in_batch.push_back(index_keys[i]);
  }
  if (batch.empty()) return absl::OkStatus();
  batch.Put(EvidenceCountKey(), keys::EncodeU64(seq));
  if (absl::Status s = opts_.store->Write(batch); !s.ok()) {
    return StoreError(s);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<EvidenceRecord>> Ledger::ListEvidence(
    uint64_t from_seq, uint32_t limit) {
  if (from_seq == 0) {
    return absl::InvalidArgumentError("evidence seq starts at 1");
  }
  if (limit == 0 || limit > kMaxListEvidence) {
    return absl::InvalidArgumentError(absl::StrCat(
        "evidence limit must be 1-", kMaxListEvidence, ", not ", limit));
  }
  std::vector<std::string> wanted;
  for (uint64_t seq = from_seq; seq < from_seq + limit; ++seq) {
    wanted.push_back(EvidenceKey(seq));
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> values =
      opts_.store->MultiGet(wanted);
  if (!values.ok()) return StoreError(values.status());
  std::vector<EvidenceRecord> out;
  for (const std::optional<std::string>& v : *values) {
    if (!v.has_value()) break;  // seqs are dense: the end of the list
    absl::StatusOr<EvidenceRecord> r = DecodeEvidenceRecord(AsBytes(*v));
    if (!r.ok()) return Corrupt("evidence record", r.status());
    out.push_back(*std::move(r));
  }
  return out;
}

}  // namespace consortia::storage
