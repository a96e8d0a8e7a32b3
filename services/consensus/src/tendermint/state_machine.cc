#include "tendermint/state_machine.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "consortia/merkle.h"

namespace consortia::consensus::tendermint {
namespace {

constexpr std::string_view kSignerProbe = "consortia/tendermint/signer-probe";
const Hash32 kNil{};

// A header-only copy of a proposal, for evidence.
Proposal WithoutTxs(const Proposal& p) {
  Proposal copy;
  copy.height = p.height;
  copy.round = p.round;
  copy.valid_round = p.valid_round;
  copy.proposer_index = p.proposer_index;
  copy.block.header = p.block.header;
  copy.signature = p.signature;
  return copy;
}

std::vector<uint64_t> PowersOf(const Genesis& genesis) {
  std::vector<uint64_t> powers;
  for (const Validator& v : genesis.validators) powers.push_back(v.power);
  return powers;
}

uint64_t PowerFor(const std::map<Hash32, uint64_t>& m, const Hash32& h) {
  auto it = m.find(h);
  return it == m.end() ? 0 : it->second;
}

// The future-round bound (StateMachineOptions::max_future_rounds_per_
// validator) for a validator whose messages occupy `rounds`, at `current`:
// true when a message for `round` (> current) would be dropped whatever its
// signature, because the validator's future rounds are full and `round` is
// below the lowest of them (a higher one would evict that one instead, which
// only a verified message may do). A lookup, no crypto: the state machine
// asks it before any signature check.
bool FutureRoundsRefuse(const std::set<uint32_t>& rounds, uint32_t current,
                        uint32_t round, size_t max_future) {
  if (round <= current || rounds.count(round) > 0) return false;
  auto first_future = rounds.upper_bound(current);
  const auto future =
      static_cast<size_t>(std::distance(first_future, rounds.end()));
  return future >= max_future && round < *first_future;
}

}  // namespace

std::string_view StepName(Step s) {
  switch (s) {
    case Step::kPropose:
      return "propose";
    case Step::kPrevote:
      return "prevote";
    case Step::kPrecommit:
      return "precommit";
  }
  return "unknown";
}

std::string_view TimelinessName(Timeliness t) {
  switch (t) {
    case Timeliness::kTimely:
      return "timely";
    case Timeliness::kEarly:
      return "early";
    case Timeliness::kLate:
      return "late";
  }
  return "unknown";
}

uint64_t MessageDelayMs(const ChainRules& rules, uint32_t round) {
  // base + base * round / 10, saturating (a parsed genesis bounds base by
  // kMaxBlockTimeBoundMs; a Genesis built in code need not).
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const uint64_t base = rules.block_time_message_delay_ms;
  const uint64_t extra =
      (round != 0 && base > kMax / round ? kMax : base * round) / 10;
  return extra > kMax - base ? kMax : base + extra;
}

Timeliness JudgeTimeliness(uint64_t block_time_ms, uint64_t received_ms,
                           const ChainRules& rules, uint32_t round) {
  const uint64_t precision = rules.block_time_precision_ms;
  if (block_time_ms > received_ms && block_time_ms - received_ms > precision) {
    return Timeliness::kEarly;
  }
  const uint64_t delay = MessageDelayMs(rules, round);
  const uint64_t behind =
      delay > std::numeric_limits<uint64_t>::max() - precision
          ? std::numeric_limits<uint64_t>::max()
          : precision + delay;
  if (received_ms > block_time_ms && received_ms - block_time_ms > behind) {
    return Timeliness::kLate;
  }
  return Timeliness::kTimely;
}

absl::Duration TimeoutConfig::For(Step step, uint32_t round) const {
  absl::Duration base = propose;
  absl::Duration delta = propose_delta;
  if (step == Step::kPrevote) {
    base = prevote;
    delta = prevote_delta;
  } else if (step == Step::kPrecommit) {
    base = precommit;
    delta = precommit_delta;
  }
  // Duration arithmetic saturates instead of overflowing.
  return std::min(base + delta * static_cast<int64_t>(round), max);
}

// ------------------------------------------------------------ construction

absl::StatusOr<std::unique_ptr<KeySigner>> KeySigner::Create(
    const CryptoSuite& suite, Bytes secret_key, ByteView public_key) {
  absl::StatusOr<Bytes> sig = suite.Sign(secret_key, AsBytes(kSignerProbe));
  if (!sig.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the key cannot sign: ", sig.status().message()));
  }
  if (!suite.Verify(public_key, AsBytes(kSignerProbe), *sig)) {
    return absl::InvalidArgumentError(
        "the secret key does not belong to the validator's public key");
  }
  return std::unique_ptr<KeySigner>(
      new KeySigner(suite, std::move(secret_key)));
}

absl::StatusOr<Bytes> KeySigner::SignVote(const Vote& /*vote*/,
                                          ByteView sign_bytes) {
  return suite_.Sign(secret_key_, sign_bytes);
}

absl::StatusOr<Bytes> KeySigner::SignProposal(const Proposal& /*proposal*/,
                                              ByteView sign_bytes) {
  return suite_.Sign(secret_key_, sign_bytes);
}

absl::StatusOr<std::unique_ptr<StateMachine>> StateMachine::Create(
    const Genesis& genesis, const CryptoSuite& suite,
    std::optional<uint32_t> own_index, MessageSigner* signer,
    StateMachineOptions options) {
  const size_t n = genesis.validators.size();
  if (n == 0) return absl::InvalidArgumentError("genesis has no validators");
  if (n > kMaxValidators) {
    return absl::InvalidArgumentError(absl::StrCat(
        "genesis has ", n, " validators, more than ", kMaxValidators));
  }
  if (suite.name() != genesis.crypto_suite) {
    return absl::InvalidArgumentError(
        absl::StrCat("crypto suite ", std::string(suite.name()),
                     " is not the genesis suite ", genesis.crypto_suite));
  }
  uint64_t total = 0;
  for (const Validator& v : genesis.validators) {
    if (v.power > kMaxTotalVotingPower ||
        total + v.power > kMaxTotalVotingPower) {
      return absl::InvalidArgumentError("total voting power exceeds 2^60");
    }
    total += v.power;
  }
  if (total == 0) return absl::InvalidArgumentError("total voting power is 0");
  if (own_index.has_value()) {
    if (*own_index >= n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "own index ", *own_index, " is not a validator (there are ", n, ")"));
    }
    if (signer == nullptr) {
      return absl::InvalidArgumentError("a validator needs a signer");
    }
  }
  options.max_future_rounds_per_validator =
      std::max<size_t>(1, options.max_future_rounds_per_validator);
  return std::unique_ptr<StateMachine>(
      new StateMachine(genesis, suite, own_index, signer, options, total));
}

StateMachine::StateMachine(const Genesis& genesis, const CryptoSuite& suite,
                           std::optional<uint32_t> own_index,
                           MessageSigner* signer, StateMachineOptions options,
                           uint64_t total_power)
    : genesis_(genesis),
      suite_(suite),
      own_index_(own_index),
      signer_(signer),
      options_(options),
      total_power_(total_power),
      proposers_(PowersOf(genesis)),
      rounds_of_(genesis.validators.size()),
      next_height_count_(genesis.validators.size(), 0),
      next_height_proposal_(genesis.validators.size(), false) {}

uint32_t StateMachine::Proposer(uint64_t height, uint32_t round) const {
  return proposers_.Index(height, round);
}

std::optional<Hash32> StateMachine::locked_block_hash() const {
  if (locked_round_ == kNoRound) return std::nullopt;
  return locked_hash_;
}

bool StateMachine::IsQuorum(uint64_t power) const {
  if (options_.unsafe_test_only.weak_quorum) return IsOneThird(power);
  return 3 * power > 2 * total_power_;
}

bool StateMachine::IsOneThird(uint64_t power) const {
  return 3 * power > total_power_;
}

const StateMachine::RoundState* StateMachine::FindRound(uint32_t r) const {
  auto it = rounds_.find(r);
  return it == rounds_.end() ? nullptr : &it->second;
}

// ------------------------------------------------------------------ inputs

absl::StatusOr<Actions> StateMachine::StartHeight(
    uint64_t height, const std::vector<Message>& own_log) {
  if (height == 0 || height <= height_) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start height ", height, " at height ", height_));
  }
  height_ = height;
  round_ = 0;
  step_ = Step::kPropose;
  locked_hash_ = Hash32{};
  locked_round_ = kNoRound;
  valid_value_.reset();
  valid_round_ = kNoRound;
  restored_valid_hash_.reset();
  decision_.reset();
  rounds_.clear();
  for (auto& s : rounds_of_) s.clear();
  proposal_hashes_.clear();
  validity_.clear();
  validating_.clear();
  undecided_round_.clear();
  block_requested_round_.reset();

  std::vector<Buffered> buffered = std::move(next_height_);
  next_height_.clear();
  std::fill(next_height_count_.begin(), next_height_count_.end(), 0);
  std::fill(next_height_proposal_.begin(), next_height_proposal_.end(), false);
  std::optional<Commit> commit = std::move(next_height_commit_);
  next_height_commit_.reset();

  Actions out;
  // A restarted validator's own messages of this height come first, before
  // anything can make it sign: each marks its step as signed (and a non-nil
  // precommit restores its lock), and it resumes at the latest round it
  // had reached (it was there legitimately; earlier rounds hold nothing it
  // may still sign).
  uint32_t resume_round = 0;
  for (const Message& m : own_log) {
    if (const auto* p = std::get_if<Proposal>(&m)) {
      if (p->height != height) continue;
      AddProposal(*p, /*verified=*/false, &out);
      if (own_index_ == p->proposer_index) {
        resume_round = std::max(resume_round, p->round);
      }
    } else if (const auto* v = std::get_if<Vote>(&m)) {
      if (v->height != height) continue;
      // Others' votes (the polka behind a lock) count as received.
      AddVote(*v, /*verified=*/false, &out);
      if (own_index_ == v->validator_index) {
        resume_round = std::max(resume_round, v->round);
      }
    }
  }
  StartRound(resume_round, &out);
  Evaluate(std::nullopt, &out);
  for (Buffered& b : buffered) {
    if (const auto* p = std::get_if<Proposal>(&b.message)) {
      if (p->height == height) {
        HandleProposal(*p, /*verified=*/true, &out, b.received_ms);
        continue;
      }
    } else if (const auto* v = std::get_if<Vote>(&b.message)) {
      if (v->height == height) {
        HandleVote(*v, /*verified=*/true, &out);
        continue;
      }
    }
    ++counters_.stale;  // buffered for a height that was skipped
  }
  if (commit.has_value() && commit->certificate.height == height) {
    HandleCommit(*commit, /*verified=*/true, &out);
  }
  return out;
}

Actions StateMachine::OnMessage(const Message& m,
                                std::optional<uint64_t> received_ms) {
  if (const auto* p = std::get_if<Proposal>(&m)) {
    return OnProposal(*p, received_ms);
  }
  if (const auto* v = std::get_if<Vote>(&m)) return OnVote(*v);
  return OnCommit(std::get<Commit>(m));
}

Actions StateMachine::OnProposal(const Proposal& p,
                                 std::optional<uint64_t> received_ms) {
  Actions out;
  HandleProposal(p, /*verified=*/false, &out, received_ms);
  return out;
}

Actions StateMachine::OnVote(const Vote& v) {
  Actions out;
  HandleVote(v, /*verified=*/false, &out);
  return out;
}

Actions StateMachine::OnCommit(const Commit& c) {
  Actions out;
  HandleCommit(c, /*verified=*/false, &out);
  return out;
}

Actions StateMachine::OnBlockToPropose(uint64_t height, uint32_t round,
                                       absl::StatusOr<Block> block) {
  Actions out;
  if (!started() || decision_.has_value() || height != height_ ||
      round != round_ || block_requested_round_ != round) {
    ++counters_.stale_answers;
    return out;
  }
  block_requested_round_.reset();
  RoundState& rs = Round(round_);
  if (step_ != Step::kPropose || rs.sent_proposal) {
    ++counters_.stale_answers;
    return out;
  }
  if (!block.ok()) {
    // Nothing to propose: the propose timeout, scheduled with the request,
    // makes us prevote nil.
    ++counters_.proposal_source_failures;
    return out;
  }
  SendProposal(*std::move(block), kNoRound, &out);
  Evaluate(std::nullopt, &out);
  return out;
}

Actions StateMachine::OnBlockVerdict(uint64_t height, const Hash32& block_hash,
                                     BlockVerdict verdict) {
  Actions out;
  if (!started() || height != height_ || validating_.erase(block_hash) == 0) {
    ++counters_.stale_answers;
    return out;
  }
  if (verdict == BlockVerdict::kUndecided) {
    ++counters_.validity_undecided;
    undecided_round_[block_hash] = round_;
    return out;
  }
  const bool ok = verdict == BlockVerdict::kValid;
  validity_.emplace(block_hash, ok);
  if (!ok) ++counters_.invalid_blocks;
  if (decision_.has_value()) return out;
  // Line 49 may now fire in any round that has this block.
  for (const auto& [r, rs] : rounds_) {
    for (const StoredProposal& sp : rs.proposals) {
      if (sp.hash != block_hash) continue;
      if (UponPrecommitQuorumForProposal(r, &out)) return out;
      break;
    }
  }
  Evaluate(std::nullopt, &out);
  return out;
}

Actions StateMachine::OnTimeout(uint64_t height, uint32_t round, Step step) {
  Actions out;
  if (!started() || decision_.has_value() || height != height_ ||
      static_cast<unsigned>(step) > static_cast<unsigned>(Step::kPrecommit)) {
    return out;
  }
  const RoundState* rs = FindRound(round);
  if (rs == nullptr ||
      (rs->timeouts_set & (1u << static_cast<unsigned>(step))) == 0) {
    return out;
  }
  switch (step) {
    case Step::kPropose:
      OnTimeoutPropose(height, round, &out);
      break;
    case Step::kPrevote:
      OnTimeoutPrevote(height, round, &out);
      break;
    case Step::kPrecommit:
      OnTimeoutPrecommit(height, round, &out);
      break;
  }
  Evaluate(std::nullopt, &out);
  return out;
}

std::vector<Message> StateMachine::GossipMessages() const {
  std::vector<Message> out;
  if (decision_.has_value()) {
    out.emplace_back(*decision_);
    return out;
  }
  for (const auto& [r, rs] : rounds_) {
    for (const StoredProposal& sp : rs.proposals) out.emplace_back(sp.proposal);
    for (const VoteTally* t : {&rs.prevotes, &rs.precommits}) {
      for (const auto& [i, votes] : t->by_validator) {
        for (const Vote& v : votes) out.emplace_back(v);
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ checks

StateMachine::Verdict StateMachine::VerifyVoteMessage(const Vote& v) const {
  if (v.validator_index >= genesis_.validators.size()) {
    return Verdict::kUnknownValidator;
  }
  if (v.type != VoteType::kPrevote && v.type != VoteType::kPrecommit) {
    return Verdict::kMalformed;
  }
  if (!suite_.Verify(genesis_.validators[v.validator_index].public_key,
                     VoteSignBytes(genesis_.chain_id, v), v.signature)) {
    return Verdict::kBadSignature;
  }
  return Verdict::kOk;
}

StateMachine::Verdict StateMachine::VerifyProposalMessage(const Proposal& p,
                                                          Hash32* hash) const {
  if (p.proposer_index >= genesis_.validators.size()) {
    return Verdict::kUnknownValidator;
  }
  if (p.proposer_index != Proposer(p.height, p.round)) {
    return Verdict::kWrongProposer;
  }
  if (p.valid_round < kNoRound ||
      p.valid_round >= static_cast<int64_t>(p.round) ||
      p.block.header.height != p.height ||
      p.block.header.chain_id != genesis_.chain_id) {
    return Verdict::kMalformed;
  }
  if (!WithinLimits(p.block)) return Verdict::kOverLimits;
  // The signature covers the header, whose tx_root binds the txs: it is
  // checked before the txs are hashed.
  *hash = BlockHash(suite_, p.block.header);
  if (!suite_.Verify(genesis_.validators[p.proposer_index].public_key,
                     ProposalSignBytes(genesis_.chain_id, p, *hash),
                     p.signature)) {
    return Verdict::kBadSignature;
  }
  if (MerkleRoot(suite_, p.block.txs) != p.block.header.tx_root) {
    return Verdict::kMalformed;
  }
  return Verdict::kOk;
}

bool StateMachine::WithinLimits(const Block& b) const {
  if (b.txs.size() > genesis_.rules.max_block_txs) return false;
  uint64_t bytes = 0;
  for (const Bytes& tx : b.txs) bytes += tx.size();
  return bytes <= genesis_.rules.max_block_bytes;
}

StateMachine::Verdict StateMachine::VerifyCommitMessage(const Commit& c) const {
  const BlockHeader& h = c.block.header;
  if (h.height != c.certificate.height || h.chain_id != genesis_.chain_id) {
    return Verdict::kMalformed;
  }
  if (!WithinLimits(c.block)) return Verdict::kOverLimits;
  if (!VerifyCertificate(suite_, genesis_, h, c.certificate).ok()) {
    return Verdict::kBadSignature;
  }
  if (MerkleRoot(suite_, c.block.txs) != h.tx_root) return Verdict::kMalformed;
  return Verdict::kOk;
}

void StateMachine::CountVerdict(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      break;
    case Verdict::kBadSignature:
      ++counters_.bad_signature;
      break;
    case Verdict::kUnknownValidator:
      ++counters_.unknown_validator;
      break;
    case Verdict::kWrongProposer:
      ++counters_.wrong_proposer;
      break;
    case Verdict::kMalformed:
      ++counters_.malformed;
      break;
    case Verdict::kOverLimits:
      ++counters_.malformed;
      ++counters_.over_limits;
      break;
  }
}

// ----------------------------------------------------------- message log

bool StateMachine::NextHeightFull(uint32_t validator, bool proposal) const {
  return next_height_count_[validator] >=
             options_.max_next_height_messages_per_validator ||
         (proposal && next_height_proposal_[validator]);
}

void StateMachine::BufferNextHeight(uint32_t validator, Message m,
                                    std::optional<uint64_t> received_ms) {
  const bool proposal = std::holds_alternative<Proposal>(m);
  if (NextHeightFull(validator, proposal)) {
    ++counters_.future_dropped;
    return;
  }
  ++next_height_count_[validator];
  if (proposal) next_height_proposal_[validator] = true;
  next_height_.push_back(Buffered{validator, std::move(m), received_ms});
  ++counters_.future_buffered;
}

void StateMachine::HandleVote(const Vote& v, bool verified, Actions* out) {
  if (!started()) {
    ++counters_.not_started;
    return;
  }
  if (v.height < height_ || (v.height == height_ && decision_.has_value())) {
    ++counters_.stale;
    return;
  }
  // The per-validator budgets come before any signature check, so a flood
  // of garbage-signed votes for far rounds or the next height costs a
  // lookup each, not a verification.
  if (v.validator_index >= genesis_.validators.size()) {
    ++counters_.unknown_validator;
    return;
  }
  if (v.height > height_) {
    if (v.height != height_ + 1 || NextHeightFull(v.validator_index, false)) {
      ++counters_.future_dropped;
      return;
    }
    if (!verified) {
      const Verdict verdict = VerifyVoteMessage(v);
      if (verdict != Verdict::kOk) {
        CountVerdict(verdict);
        return;
      }
    }
    BufferNextHeight(v.validator_index, v);
    return;
  }
  if (!verified && v.validator_index != own_index_ &&
      FutureRoundsRefuse(rounds_of_[v.validator_index], round_, v.round,
                         options_.max_future_rounds_per_validator)) {
    ++counters_.round_budget_dropped;
    return;
  }
  if (AddVote(v, verified, out)) Evaluate(v.round, out);
}

void StateMachine::HandleProposal(const Proposal& p, bool verified,
                                  Actions* out,
                                  std::optional<uint64_t> received_ms) {
  if (!started()) {
    ++counters_.not_started;
    return;
  }
  if (p.height < height_ || (p.height == height_ && decision_.has_value())) {
    ++counters_.stale;
    return;
  }
  // Budgets before any check that costs crypto (see HandleVote).
  if (p.proposer_index >= genesis_.validators.size()) {
    ++counters_.unknown_validator;
    return;
  }
  if (p.height > height_) {
    if (p.height != height_ + 1 || NextHeightFull(p.proposer_index, true)) {
      ++counters_.future_dropped;
      return;
    }
    if (!verified) {
      Hash32 hash;
      const Verdict verdict = VerifyProposalMessage(p, &hash);
      if (verdict != Verdict::kOk) {
        CountVerdict(verdict);
        return;
      }
    }
    BufferNextHeight(p.proposer_index, p, received_ms);
    return;
  }
  if (!verified && p.proposer_index != own_index_ &&
      FutureRoundsRefuse(rounds_of_[p.proposer_index], round_, p.round,
                         options_.max_future_rounds_per_validator)) {
    ++counters_.round_budget_dropped;
    return;
  }
  if (AddProposal(p, verified, out, received_ms)) Evaluate(p.round, out);
}

void StateMachine::HandleCommit(const Commit& c, bool verified, Actions* out) {
  if (!started()) {
    ++counters_.not_started;
    return;
  }
  const uint64_t h = c.certificate.height;
  if (h < height_ || (h == height_ && decision_.has_value())) {
    ++counters_.stale;
    return;
  }
  if (h > height_ + 1 || (h == height_ + 1 && next_height_commit_)) {
    ++counters_.future_dropped;
    return;
  }
  if (!verified) {
    const Verdict verdict = VerifyCommitMessage(c);
    if (verdict != Verdict::kOk) {
      CountVerdict(verdict);
      return;
    }
  }
  if (h == height_ + 1) {
    next_height_commit_ = c;
    ++counters_.future_buffered;
    return;
  }
  // Structural checks only (VerifyCommitMessage): a certified block is not
  // judged again by valid(v).
  ++counters_.commits_accepted;
  Decide(c.block, c.certificate, out);
}

bool StateMachine::MakeRoom(uint32_t validator, uint32_t round) {
  std::set<uint32_t>& rounds = rounds_of_[validator];
  if (rounds.count(round) > 0) return true;
  if (FutureRoundsRefuse(rounds, round_, round,
                         options_.max_future_rounds_per_validator)) {
    ++counters_.round_budget_dropped;
    return false;
  }
  auto first_future = rounds.upper_bound(round_);
  const size_t future =
      static_cast<size_t>(std::distance(first_future, rounds.end()));
  if (future < options_.max_future_rounds_per_validator) return true;
  const uint32_t lowest = *first_future;
  Evict(validator, lowest);
  ++counters_.round_budget_evicted;
  return true;
}

void StateMachine::Evict(uint32_t validator, uint32_t round) {
  rounds_of_[validator].erase(round);
  auto it = rounds_.find(round);
  if (it == rounds_.end()) return;
  RoundState& rs = it->second;
  const uint64_t power = genesis_.validators[validator].power;
  for (VoteTally* t : {&rs.prevotes, &rs.precommits}) {
    auto v = t->by_validator.find(validator);
    if (v == t->by_validator.end()) continue;
    for (const Vote& x : v->second) t->power_for[x.block_hash] -= power;
    t->power_any -= power;
    t->by_validator.erase(v);
  }
  std::erase_if(rs.proposals, [&](const StoredProposal& sp) {
    return sp.proposal.proposer_index == validator;
  });
  if (rs.senders.erase(validator) > 0) rs.sender_power -= power;
  if (rs.senders.empty()) rounds_.erase(it);
}

void StateMachine::NoteSender(RoundState& rs, uint32_t round,
                              uint32_t validator) {
  if (rs.senders.insert(validator).second) {
    rs.sender_power += genesis_.validators[validator].power;
  }
  rounds_of_[validator].insert(round);
}

bool StateMachine::AddVote(const Vote& v, bool verified, Actions* out) {
  if (v.validator_index >= genesis_.validators.size()) {
    ++counters_.unknown_validator;
    return false;
  }
  const bool prevote = v.type == VoteType::kPrevote;
  const uint64_t power = genesis_.validators[v.validator_index].power;
  if (auto it = rounds_.find(v.round); it != rounds_.end()) {
    RoundState& rs = it->second;
    VoteTally& tally = prevote ? rs.prevotes : rs.precommits;
    auto old = tally.by_validator.find(v.validator_index);
    if (old != tally.by_validator.end()) {
      std::vector<Vote>& votes = old->second;
      for (const Vote& o : votes) {
        if (o.block_hash == v.block_hash) {
          ++counters_.duplicates;
          return false;
        }
      }
      if (!verified) {
        const Verdict verdict = VerifyVoteMessage(v);
        if (verdict != Verdict::kOk) {
          CountVerdict(verdict);
          return false;
        }
      }
      const auto key =
          std::make_pair(static_cast<uint8_t>(v.type), v.validator_index);
      if (rs.evidenced.insert(key).second) {
        RecordEvidence(DoubleVote{votes.front(), v}, out);
      }
      // At most: the first vote, nil, and the two proposals of a round (or
      // proposals of other rounds, for line 28).
      const bool useful =
          IsZero(v.block_hash) || proposal_hashes_.count(v.block_hash) > 0;
      if (!useful || votes.size() >= 4) {
        ++counters_.conflicts_dropped;
        return false;
      }
      votes.push_back(v);
      tally.power_for[v.block_hash] += power;
      return true;
    }
  }
  if (!verified) {
    const Verdict verdict = VerifyVoteMessage(v);
    if (verdict != Verdict::kOk) {
      CountVerdict(verdict);
      return false;
    }
  }
  // Own messages (a restart's replay) are few and must all count: they are
  // what keeps this validator from signing twice. Only others are bounded.
  if (v.round > round_ && v.validator_index != own_index_ &&
      !MakeRoom(v.validator_index, v.round)) {
    return false;
  }
  RoundState& rs = Round(v.round);
  VoteTally& tally = prevote ? rs.prevotes : rs.precommits;
  tally.by_validator[v.validator_index].push_back(v);
  tally.power_for[v.block_hash] += power;
  tally.power_any += power;
  NoteSender(rs, v.round, v.validator_index);
  if (own_index_ == v.validator_index) {
    // Our own vote coming back (replayed from the WAL after a restart, or
    // relayed): we must not sign another one for this round and type.
    (prevote ? rs.sent_prevote : rs.sent_precommit) = true;
    // A non-nil precommit is signed only at line 40, right after line 38
    // locked on its block in that round: so it restores the lock that a
    // restart lost. (In a running machine the lock is already this or
    // newer.)
    if (!prevote && !IsZero(v.block_hash) &&
        static_cast<int64_t>(v.round) > locked_round_) {
      locked_hash_ = v.block_hash;
      locked_round_ = v.round;
      // Line 42 ran in that round too: the block is also validValue (the
      // block itself comes with its proposal, now or once a peer relays it).
      if (static_cast<int64_t>(v.round) > valid_round_) {
        valid_round_ = v.round;
        valid_value_.reset();
        restored_valid_hash_.reset();
        if (std::optional<Proposal> known = ProposalOf(v.block_hash)) {
          valid_value_ = std::move(known->block);
        } else {
          restored_valid_hash_ = v.block_hash;
        }
      }
    }
  }
  ++counters_.votes_accepted;
  return true;
}

bool StateMachine::AddProposal(const Proposal& p, bool verified, Actions* out,
                               std::optional<uint64_t> received_ms) {
  if (p.proposer_index >= genesis_.validators.size()) {
    ++counters_.unknown_validator;
    return false;
  }
  Hash32 hash{};
  if (verified) {
    hash = BlockHash(suite_, p.block.header);
  }
  if (auto it = rounds_.find(p.round);
      it != rounds_.end() && !it->second.proposals.empty()) {
    RoundState& rs = it->second;
    for (const StoredProposal& sp : rs.proposals) {
      if (sp.proposal.valid_round == p.valid_round &&
          sp.proposal.proposer_index == p.proposer_index &&
          sp.proposal.block.header == p.block.header) {
        ++counters_.duplicates;
        return false;
      }
    }
    if (!verified) {
      const Verdict verdict = VerifyProposalMessage(p, &hash);
      if (verdict != Verdict::kOk) {
        CountVerdict(verdict);
        return false;
      }
    }
    if (rs.proposals.size() >= 2) {
      ++counters_.conflicts_dropped;
      return false;
    }
    RecordEvidence(DoubleProposal{WithoutTxs(rs.proposals.front().proposal),
                                  WithoutTxs(p)},
                   out);
    // Kept: a quorum may form for it (the paper's log holds every proposal).
    rs.proposals.push_back(StoredProposal{p, hash, received_ms});
    proposal_hashes_.insert(hash);
    NoteRestoredValidValue(p, hash);
    ++counters_.proposals_accepted;
    return true;
  }
  if (!verified) {
    const Verdict verdict = VerifyProposalMessage(p, &hash);
    if (verdict != Verdict::kOk) {
      CountVerdict(verdict);
      return false;
    }
  }
  if (p.round > round_ && p.proposer_index != own_index_ &&
      !MakeRoom(p.proposer_index, p.round)) {
    return false;
  }
  RoundState& rs = Round(p.round);
  rs.proposals.push_back(StoredProposal{p, hash, received_ms});
  proposal_hashes_.insert(hash);
  NoteRestoredValidValue(p, hash);
  NoteSender(rs, p.round, p.proposer_index);
  if (own_index_ == p.proposer_index) rs.sent_proposal = true;
  ++counters_.proposals_accepted;
  return true;
}

void StateMachine::NoteRestoredValidValue(const Proposal& p,
                                          const Hash32& hash) {
  if (restored_valid_hash_ == hash) {
    valid_value_ = p.block;
    restored_valid_hash_.reset();
  }
}

std::optional<Proposal> StateMachine::ProposalOf(
    const Hash32& block_hash) const {
  for (const auto& [r, rs] : rounds_) {
    for (const StoredProposal& sp : rs.proposals) {
      if (sp.hash == block_hash) return sp.proposal;
    }
  }
  return std::nullopt;
}

std::vector<Vote> StateMachine::PrevotesFor(uint32_t round,
                                            const Hash32& block_hash) const {
  std::vector<Vote> out;
  const RoundState* rs = FindRound(round);
  if (rs == nullptr) return out;
  for (const auto& [validator, votes] : rs->prevotes.by_validator) {
    for (const Vote& v : votes) {
      if (v.block_hash == block_hash) out.push_back(v);
    }
  }
  return out;
}

void StateMachine::RecordEvidence(Evidence e, Actions* out) {
  ++counters_.equivocations;
  if (evidence_.size() < options_.max_evidence) evidence_.push_back(e);
  out->push_back(EvidenceAction{std::move(e)});
}

std::optional<bool> StateMachine::Valid(const Block& block, const Hash32& hash,
                                        Actions* out) {
  if (auto it = validity_.find(hash); it != validity_.end()) return it->second;
  if (validating_.count(hash) > 0) return std::nullopt;
  if (auto it = undecided_round_.find(hash);
      it != undecided_round_.end() && it->second == round_) {
    return std::nullopt;
  }
  validating_.insert(hash);
  ++counters_.validations_requested;
  out->push_back(ValidateBlockAction{height_, hash, block});
  return std::nullopt;
}

// ------------------------------------------------------------------- rules

void StateMachine::Evaluate(std::optional<uint32_t> touched_round,
                            Actions* out) {
  if (decision_.has_value()) return;
  if (touched_round.has_value()) {
    if (UponPrecommitQuorumForProposal(*touched_round, out)) return;
    UponRoundSkip(*touched_round, out);
  }
  bool progress = true;
  while (progress && !decision_.has_value()) {
    if (UponPrecommitQuorumForProposal(round_, out)) return;
    progress = false;
    progress |= UponProposalNoValidRound(out);
    progress |= UponProposalWithValidRound(out);
    progress |= UponPrevoteQuorumAny(out);
    progress |= UponPrevoteQuorumForProposal(out);
    progress |= UponPrevoteQuorumNil(out);
    progress |= UponPrecommitQuorumAny(out);
  }
}

// Lines 11-21.
void StateMachine::StartRound(uint32_t round, Actions* out) {
  round_ = round;
  step_ = Step::kPropose;
  RoundState& rs = Round(round);
  if (!own_index_.has_value() || Proposer(height_, round) != *own_index_ ||
      rs.sent_proposal) {
    ScheduleTimeout(Step::kPropose, out);  // line 21
    return;
  }
  // A validRound whose block is not back yet after a restart is not
  // proposed: a fresh block then goes out as a new value.
  if (valid_value_.has_value()) {  // lines 15-16
    SendProposal(*valid_value_, valid_round_, out);
    return;
  }
  // Line 18: getValue(), answered by OnBlockToPropose. The propose timeout
  // bounds the wait: without a block in time we prevote nil (line 57).
  block_requested_round_ = round;
  out->push_back(RequestBlockAction{height_, round});
  ScheduleTimeout(Step::kPropose, out);
}

void StateMachine::SendProposal(Block block, int64_t valid_round,
                                Actions* out) {
  RoundState& rs = Round(round_);
  Proposal p;
  p.height = height_;
  p.round = round_;
  p.valid_round = valid_round;
  p.proposer_index = *own_index_;
  p.block = std::move(block);
  const Hash32 hash = BlockHash(suite_, p.block.header);
  absl::StatusOr<Bytes> sig =
      signer_->SignProposal(p, ProposalSignBytes(genesis_.chain_id, p, hash));
  if (!sig.ok()) {
    ++counters_.sign_failures;
    ScheduleTimeout(Step::kPropose, out);
    return;
  }
  p.signature = *std::move(sig);
  // Our own block passes the same checks as anyone's, so that a bad source
  // shows up here rather than as silence at the peers.
  Hash32 checked;
  if (const Verdict v = VerifyProposalMessage(p, &checked); v != Verdict::kOk) {
    CountVerdict(v);
    ++counters_.proposal_source_failures;
    ScheduleTimeout(Step::kPropose, out);
    return;
  }
  rs.sent_proposal = true;
  // The node built this block (or it won a polka before): it is not sent
  // back for checking.
  validity_.emplace(hash, true);
  out->push_back(BroadcastAction{p});  // line 19
  AddProposal(p, /*verified=*/true, out);
}

// Lines 22-27.
bool StateMachine::UponProposalNoValidRound(Actions* out) {
  if (step_ != Step::kPropose) return false;
  const RoundState* rs = FindRound(round_);
  if (rs == nullptr) return false;
  for (const StoredProposal& sp : rs->proposals) {
    if (sp.proposal.valid_round != kNoRound) continue;
    // Proposer-based time: a fresh proposal must be timely at its receipt.
    // Not timely is "not in this round", never a verdict on the block.
    if (sp.received_ms.has_value()) {
      const Timeliness t =
          JudgeTimeliness(sp.proposal.block.header.time_ms, *sp.received_ms,
                          genesis_.rules, sp.proposal.round);
      if (t != Timeliness::kTimely) {
        ++(t == Timeliness::kEarly ? counters_.untimely_early
                                   : counters_.untimely_late);
        last_untimely_ = UntimelyProposal{height_,
                                          sp.proposal.round,
                                          sp.proposal.proposer_index,
                                          sp.proposal.block.header.time_ms,
                                          *sp.received_ms,
                                          t};
        step_ = Step::kPrevote;  // line 27
        BroadcastVote(VoteType::kPrevote, kNil, out);
        return true;
      }
    }
    const bool lock_ok = options_.unsafe_test_only.ignore_locks ||
                         locked_round_ == kNoRound || locked_hash_ == sp.hash;
    bool vote_for = false;
    if (lock_ok) {
      const std::optional<bool> valid = Valid(sp.proposal.block, sp.hash, out);
      if (!valid.has_value()) continue;  // wait for it (or timeoutPropose)
      vote_for = *valid;
    }
    const Hash32 hash = sp.hash;
    step_ = Step::kPrevote;  // line 27
    BroadcastVote(VoteType::kPrevote, vote_for ? hash : kNil, out);
    return true;
  }
  return false;
}

// Lines 28-33.
bool StateMachine::UponProposalWithValidRound(Actions* out) {
  if (step_ != Step::kPropose) return false;
  const RoundState* rs = FindRound(round_);
  if (rs == nullptr) return false;
  for (const StoredProposal& sp : rs->proposals) {
    const int64_t vr = sp.proposal.valid_round;
    if (vr < 0 || vr >= static_cast<int64_t>(round_)) continue;
    const RoundState* vrs = FindRound(static_cast<uint32_t>(vr));
    if (vrs == nullptr ||
        !IsQuorum(PowerFor(vrs->prevotes.power_for, sp.hash))) {
      continue;
    }
    const bool lock_ok = options_.unsafe_test_only.ignore_locks ||
                         locked_round_ <= vr || locked_hash_ == sp.hash;
    bool vote_for = false;
    if (lock_ok) {
      const std::optional<bool> valid = Valid(sp.proposal.block, sp.hash, out);
      if (!valid.has_value()) continue;  // wait for it (or timeoutPropose)
      vote_for = *valid;
    }
    const Hash32 hash = sp.hash;
    step_ = Step::kPrevote;  // line 33
    BroadcastVote(VoteType::kPrevote, vote_for ? hash : kNil, out);
    return true;
  }
  return false;
}

// Lines 34-35.
bool StateMachine::UponPrevoteQuorumAny(Actions* out) {
  if (step_ != Step::kPrevote) return false;
  auto it = rounds_.find(round_);
  if (it == rounds_.end() || it->second.prevote_timeout_set ||
      !IsQuorum(it->second.prevotes.power_any)) {
    return false;
  }
  it->second.prevote_timeout_set = true;
  ScheduleTimeout(Step::kPrevote, out);
  return true;
}

// Lines 36-43.
bool StateMachine::UponPrevoteQuorumForProposal(Actions* out) {
  if (step_ == Step::kPropose) return false;
  auto it = rounds_.find(round_);
  if (it == rounds_.end() || it->second.polka_seen) return false;
  for (const StoredProposal& sp : it->second.proposals) {
    if (!IsQuorum(PowerFor(it->second.prevotes.power_for, sp.hash))) continue;
    const Block& block = sp.proposal.block;
    const Hash32 hash = sp.hash;
    if (!Valid(block, hash, out).value_or(false)) continue;
    it->second.polka_seen = true;
    if (step_ == Step::kPrevote) {
      locked_hash_ = hash;  // lines 38-39 (lockedValue, by its hash)
      locked_round_ = round_;
      step_ = Step::kPrecommit;                        // line 41
      BroadcastVote(VoteType::kPrecommit, hash, out);  // line 40
    }
    valid_value_ = block;  // lines 42-43
    valid_round_ = round_;
    restored_valid_hash_.reset();
    return true;
  }
  return false;
}

// Lines 44-46.
bool StateMachine::UponPrevoteQuorumNil(Actions* out) {
  if (step_ != Step::kPrevote) return false;
  const RoundState* rs = FindRound(round_);
  if (rs == nullptr || !IsQuorum(PowerFor(rs->prevotes.power_for, kNil))) {
    return false;
  }
  step_ = Step::kPrecommit;
  BroadcastVote(VoteType::kPrecommit, kNil, out);
  return true;
}

// Lines 47-48.
bool StateMachine::UponPrecommitQuorumAny(Actions* out) {
  auto it = rounds_.find(round_);
  if (it == rounds_.end() || it->second.precommit_timeout_set ||
      !IsQuorum(it->second.precommits.power_any)) {
    return false;
  }
  it->second.precommit_timeout_set = true;
  ScheduleTimeout(Step::kPrecommit, out);
  return true;
}

// Lines 49-54 (the move to the next height, lines 52-54, is StartHeight,
// called by the driver once the decision is persisted).
bool StateMachine::UponPrecommitQuorumForProposal(uint32_t round,
                                                  Actions* out) {
  if (decision_.has_value()) return false;
  const RoundState* rs = FindRound(round);
  if (rs == nullptr) return false;
  for (const StoredProposal& sp : rs->proposals) {
    if (!IsQuorum(PowerFor(rs->precommits.power_for, sp.hash))) continue;
    const Block& block = sp.proposal.block;
    const Hash32 hash = sp.hash;
    if (!Valid(block, hash, out).value_or(false)) continue;  // line 50
    CommitCertificate cert;
    cert.height = height_;
    cert.round = round;
    cert.block_hash = hash;
    for (const auto& [i, votes] : rs->precommits.by_validator) {
      for (const Vote& v : votes) {
        if (v.block_hash == hash)
          cert.sigs.push_back(CommitSig{i, v.signature});
      }
    }
    Decide(block, std::move(cert), out);
    return true;
  }
  return false;
}

// Lines 55-56.
bool StateMachine::UponRoundSkip(uint32_t round, Actions* out) {
  if (round <= round_) return false;
  const RoundState* rs = FindRound(round);
  if (rs == nullptr || !IsOneThird(rs->sender_power)) return false;
  ++counters_.rounds_skipped;
  StartRound(round, out);
  return true;
}

// Lines 57-60.
void StateMachine::OnTimeoutPropose(uint64_t h, uint32_t r, Actions* out) {
  if (h != height_ || r != round_ || step_ != Step::kPropose) return;
  step_ = Step::kPrevote;
  BroadcastVote(VoteType::kPrevote, kNil, out);
}

// Lines 61-64.
void StateMachine::OnTimeoutPrevote(uint64_t h, uint32_t r, Actions* out) {
  if (h != height_ || r != round_ || step_ != Step::kPrevote) return;
  step_ = Step::kPrecommit;
  BroadcastVote(VoteType::kPrecommit, kNil, out);
}

// Lines 65-67.
void StateMachine::OnTimeoutPrecommit(uint64_t h, uint32_t r, Actions* out) {
  if (h != height_ || r != round_) return;
  if (round_ == std::numeric_limits<uint32_t>::max()) return;
  StartRound(round_ + 1, out);
}

// ----------------------------------------------------------------- outputs

void StateMachine::BroadcastVote(VoteType type, const Hash32& block_hash,
                                 Actions* out) {
  if (!own_index_.has_value()) return;  // observers never vote
  RoundState& rs = Round(round_);
  bool& sent = type == VoteType::kPrevote ? rs.sent_prevote : rs.sent_precommit;
  if (sent) return;  // one vote per (height, round, type), ever
  sent = true;
  Vote v;
  v.type = type;
  v.height = height_;
  v.round = round_;
  v.block_hash = block_hash;
  v.validator_index = *own_index_;
  absl::StatusOr<Bytes> sig =
      signer_->SignVote(v, VoteSignBytes(genesis_.chain_id, v));
  if (!sig.ok()) {
    ++counters_.sign_failures;
    return;
  }
  v.signature = *std::move(sig);
  out->push_back(BroadcastAction{v});
  AddVote(v, /*verified=*/true, out);  // we receive our own broadcast
}

void StateMachine::ScheduleTimeout(Step step, Actions* out) {
  Round(round_).timeouts_set |= 1u << static_cast<unsigned>(step);
  out->push_back(ScheduleTimeoutAction{height_, round_, step,
                                       options_.timeouts.For(step, round_)});
}

void StateMachine::Decide(const Block& block, CommitCertificate cert,
                          Actions* out) {
  decision_ = Commit{block, cert};
  out->push_back(DecideAction{height_, block, std::move(cert)});
}

}  // namespace consortia::consensus::tendermint
