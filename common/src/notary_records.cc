#include "consortia/notary_records.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "consortia/admin_records.h"
#include "json_strict.h"
#include "nlohmann/json.hpp"
#include "record_fields.h"

namespace consortia::notary {
namespace {

using nlohmann::json;
using records_internal::CheckText;
using records_internal::ExactFields;
using records_internal::LowerHashField;
using records_internal::LowerHexField;
using records_internal::Shown;
using records_internal::StringField;
using records_internal::UintField;

absl::StatusOr<Status> StatusField(const json& j, const char* name,
                                   absl::string_view what) {
  absl::StatusOr<std::string> s = StringField(j, name, what);
  if (!s.ok()) return s.status();
  absl::StatusOr<Status> st = ParseStatus(*s);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", st.status().message()));
  }
  return st;
}

json StepJson(const Step& s) {
  return json{{"step", std::string(StatusName(s.step))},
              {"height", s.height},
              {"time_ms", s.time_ms},
              {"key", ToHex(s.key)},
              {"tx", ToHex(s.tx)},
              {"note", s.note}};
}

absl::StatusOr<Step> DecodeStep(const json& j) {
  constexpr absl::string_view kWhat = "document history step";
  if (absl::Status s = ExactFields(
          j, kWhat, {"step", "height", "time_ms", "key", "tx", "note"});
      !s.ok()) {
    return s;
  }
  Step out;
  absl::StatusOr<Status> st = StatusField(j, "step", kWhat);
  if (!st.ok()) return st.status();
  out.step = *st;
  absl::StatusOr<uint64_t> h = UintField(j, "height", kWhat);
  if (!h.ok()) return h.status();
  out.height = *h;
  absl::StatusOr<uint64_t> t = UintField(j, "time_ms", kWhat);
  if (!t.ok()) return t.status();
  out.time_ms = *t;
  absl::StatusOr<Bytes> key = LowerHexField(j, "key", kWhat);
  if (!key.ok()) return key.status();
  out.key = *std::move(key);
  absl::StatusOr<Hash32> tx = LowerHashField(j, "tx", kWhat);
  if (!tx.ok()) return tx.status();
  out.tx = *tx;
  absl::StatusOr<std::string> note = StringField(j, "note", kWhat);
  if (!note.ok()) return note.status();
  if (absl::Status s = CheckNote(*note); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": ", s.message()));
  }
  out.note = *std::move(note);
  return out;
}

}  // namespace

std::string_view StatusName(Status s) {
  switch (s) {
    case Status::kAnchored:
      return "anchored";
    case Status::kRevoked:
      return "revoked";
  }
  return "unknown";
}

absl::StatusOr<Status> ParseStatus(std::string_view name) {
  for (Status s : {Status::kAnchored, Status::kRevoked}) {
    if (StatusName(s) == name) return s;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown document status ", Shown(name),
                   " (the statuses are anchored, revoked)"));
}

std::string DocKey(const Hash32& hash) {
  return absl::StrCat("doc/", ToHex(hash));
}

absl::StatusOr<Hash32> ParseDocHash(std::string_view hex) {
  return records_internal::ParseHash(hex, "document hash");
}

absl::Status CheckMetadata(std::string_view metadata) {
  return CheckText(metadata, kMaxMetadataBytes, "metadata");
}

absl::Status CheckNote(std::string_view note) {
  return CheckText(note, kMaxNoteBytes, "reason");
}

std::string EncodeDoc(const DocRecord& r) {
  json history = json::array();
  for (const Step& s : r.history) history.push_back(StepJson(s));
  json j = {{"hash", ToHex(r.hash)},
            {"owner_key", ToHex(r.owner_key)},
            {"owner_org", r.owner_org},
            {"metadata", r.metadata},
            {"anchored_height", r.anchored_height},
            {"anchored_time_ms", r.anchored_time_ms},
            {"status", std::string(StatusName(r.status))},
            {"history", std::move(history)}};
  return j.dump();
}

absl::StatusOr<DocRecord> DecodeDoc(std::string_view text) {
  constexpr absl::string_view kWhat = "document record";
  absl::StatusOr<json> j = json_internal::ParseStrictJson(text, kWhat);
  if (!j.ok()) return j.status();
  if (absl::Status s = ExactFields(
          *j, kWhat,
          {"hash", "owner_key", "owner_org", "metadata", "anchored_height",
           "anchored_time_ms", "status", "history"});
      !s.ok()) {
    return s;
  }
  DocRecord r;
  absl::StatusOr<Hash32> hash = LowerHashField(*j, "hash", kWhat);
  if (!hash.ok()) return hash.status();
  r.hash = *hash;
  absl::StatusOr<Bytes> key = LowerHexField(*j, "owner_key", kWhat);
  if (!key.ok()) return key.status();
  r.owner_key = *std::move(key);
  absl::StatusOr<std::string> org = StringField(*j, "owner_org", kWhat);
  if (!org.ok()) return org.status();
  if (!org->empty()) {
    if (absl::Status s = admin::CheckOrgId(*org); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kWhat, ": owner_org: ", s.message()));
    }
  }
  r.owner_org = *std::move(org);
  absl::StatusOr<std::string> metadata = StringField(*j, "metadata", kWhat);
  if (!metadata.ok()) return metadata.status();
  if (absl::Status s = CheckMetadata(*metadata); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": ", s.message()));
  }
  r.metadata = *std::move(metadata);
  absl::StatusOr<uint64_t> h = UintField(*j, "anchored_height", kWhat);
  if (!h.ok()) return h.status();
  r.anchored_height = *h;
  absl::StatusOr<uint64_t> t = UintField(*j, "anchored_time_ms", kWhat);
  if (!t.ok()) return t.status();
  r.anchored_time_ms = *t;
  absl::StatusOr<Status> status = StatusField(*j, "status", kWhat);
  if (!status.ok()) return status.status();
  r.status = *status;
  const json& history = j->at("history");
  if (!history.is_array() || history.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": history must be a non-empty array"));
  }
  for (const json& v : history) {
    absl::StatusOr<Step> step = DecodeStep(v);
    if (!step.ok()) return step.status();
    r.history.push_back(*std::move(step));
  }
  const Step& first = r.history.front();
  if (first.step != Status::kAnchored || first.height != r.anchored_height ||
      first.time_ms != r.anchored_time_ms) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": history must begin with the anchoring"));
  }
  if (r.history.back().step != r.status) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": status '", std::string(StatusName(r.status)),
                     "' is not the last step of the history"));
  }
  return r;
}

}  // namespace consortia::notary
