// The Tendermint consensus algorithm (Buchman, Kwon, Milosevic, "The latest
// gossip on BFT consensus", 2018, Algorithm 1) as a pure state machine: no
// I/O, no clock, no threads. The caller feeds it messages and expired
// timeouts; each call returns the actions to carry out (messages to
// broadcast, timeouts to set, a decision, evidence). docs/consensus.md maps
// the paper's line numbers to the functions here.
#ifndef CONSORTIA_CONSENSUS_SRC_TENDERMINT_STATE_MACHINE_H_
#define CONSORTIA_CONSENSUS_SRC_TENDERMINT_STATE_MACHINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/bytes.h"
#include "consortia/crypto_suite.h"
#include "consortia/types.h"
#include "tendermint/messages.h"

namespace consortia::consensus::tendermint {

// The step of a round (step_p in the paper).
enum class Step : uint8_t { kPropose = 0, kPrevote = 1, kPrecommit = 2 };
std::string_view StepName(Step s);

// The timeouts of a round grow linearly with it: base + round * delta,
// capped at max. After GST the message delay is bounded by some unknown
// delta; growing timeouts eventually exceed it, which is what gives liveness.
struct TimeoutConfig {
  absl::Duration propose = absl::Seconds(3);
  absl::Duration propose_delta = absl::Milliseconds(500);
  absl::Duration prevote = absl::Seconds(1);
  absl::Duration prevote_delta = absl::Milliseconds(500);
  absl::Duration precommit = absl::Seconds(1);
  absl::Duration precommit_delta = absl::Milliseconds(500);
  absl::Duration max = absl::Minutes(5);

  // timeoutPropose(round), timeoutPrevote(round), timeoutPrecommit(round).
  absl::Duration For(Step step, uint32_t round) const;
};

// Proposer-based block time (docs/consensus.md, "Block time"; ADR 0007).
// Whether a fresh proposal's block time fits the clock of the validator that
// received it. Not a property of the block: the same block may be timely at
// one validator and not at another, or in one round and not in the next.
enum class Timeliness : uint8_t {
  kTimely = 0,
  // The block time is more than the precision ahead of the receipt
  // (postdated, or the proposer's clock runs ahead).
  kEarly = 1,
  // The block time is more than precision + message delay behind the
  // receipt (backdated, held back, or the proposer's clock lags).
  kLate = 2,
};
std::string_view TimelinessName(Timeliness t);

// The chain rules' message delay for `round`: block_time_message_delay_ms
// grown by a tenth of itself per round (saturating), so that after a long
// partition, or on a network slower than the rule, some round's fresh
// proposal is timely again.
uint64_t MessageDelayMs(const ChainRules& rules, uint32_t round);

// timely(block_time) at a validator that received the proposal of `round`
// at received_ms by its own clock (unix ms):
//   received - (precision + MessageDelayMs(round)) <= block_time
//   block_time <= received + precision
// A pure function: every validator applies the same genesis rules to its
// own reading of its own clock.
Timeliness JudgeTimeliness(uint64_t block_time_ms, uint64_t received_ms,
                           const ChainRules& rules, uint32_t round);

// The last fresh proposal this machine judged untimely (for the driver's
// log line).
struct UntimelyProposal {
  uint64_t height = 0;
  uint32_t round = 0;
  uint32_t proposer = 0;
  uint64_t block_time_ms = 0;
  uint64_t received_ms = 0;
  Timeliness timeliness = Timeliness::kTimely;
};

// Switches that break the algorithm on purpose. They exist only so that the
// simulation tests can show that their invariant checks catch a broken
// protocol; a node must never set them.
struct UnsafeTestOnlyOptions {
  // Count f+1 (more than a third of the power) as a quorum instead of 2f+1.
  bool weak_quorum = false;
  // Ignore the lock when prevoting (lines 23 and 29 lose their lock test).
  bool ignore_locks = false;
};

struct StateMachineOptions {
  TimeoutConfig timeouts;
  // Messages for rounds above the current one: each validator may occupy at
  // most this many such rounds; a message for a higher round evicts that
  // validator's lowest future round, one for a lower round is dropped. Keeps
  // memory bounded against a validator that signs votes for every round.
  size_t max_future_rounds_per_validator = 2;
  // Messages for the next height (height + 1) are kept, at most this many per
  // validator (of which one proposal), and replayed when that height starts;
  // later heights are dropped (block sync brings a node that far behind up to
  // date).
  size_t max_next_height_messages_per_validator = 8;
  // Evidence kept for evidence(); more is still reported as actions.
  size_t max_evidence = 1024;
  UnsafeTestOnlyOptions unsafe_test_only;
};

// Signs for one validator: the one signing interface of consensus. KeySigner
// signs with the key; DoubleSignGuard (double_sign_guard.h, beside the WAL)
// wraps a KeySigner and the write-ahead log, so that what is signed is
// persisted before it is returned and a conflicting message is refused, also
// after a restart; tests use KeySigner directly (and to run twins: two
// machines, one key). Each call gets the typed message (complete but for its
// signature) and the exact bytes to sign; an implementation signs those bytes
// and may decide from the message whether to sign at all. Called only from
// the thread that drives the state machine.
class MessageSigner {
 public:
  virtual ~MessageSigner() = default;
  // The signature over sign_bytes = VoteSignBytes(chain id, vote). An error
  // when the key cannot sign or a decorator refuses: the state machine then
  // sends nothing for that step.
  virtual absl::StatusOr<Bytes> SignVote(const Vote& vote,
                                         ByteView sign_bytes) = 0;
  // As SignVote, for sign_bytes = ProposalSignBytes(chain id, proposal,
  // block hash).
  virtual absl::StatusOr<Bytes> SignProposal(const Proposal& proposal,
                                             ByteView sign_bytes) = 0;
};

// Signs sign_bytes with a secret key of a suite, whatever the message.
// Immutable after Create; thread-safe.
class KeySigner final : public MessageSigner {
 public:
  // InvalidArgument when secret_key cannot sign with `suite` or is not the
  // key of public_key. `suite` must outlive the signer.
  static absl::StatusOr<std::unique_ptr<KeySigner>> Create(
      const CryptoSuite& suite, Bytes secret_key, ByteView public_key);

  absl::StatusOr<Bytes> SignVote(const Vote& vote,
                                 ByteView sign_bytes) override;
  absl::StatusOr<Bytes> SignProposal(const Proposal& proposal,
                                     ByteView sign_bytes) override;

 private:
  KeySigner(const CryptoSuite& suite, Bytes secret_key)
      : suite_(suite), secret_key_(std::move(secret_key)) {}

  const CryptoSuite& suite_;
  const Bytes secret_key_;
};

// The answer to a ValidateBlockAction: valid(v) of the paper.
enum class BlockVerdict : uint8_t {
  // Every tx checked (signature, chain id, replay window) and the block
  // extends the chain within the chain rules.
  kValid = 0,
  // Definitely not: the same answer on every honest validator.
  kInvalid = 1,
  // No answer now (the checks could not run: the mempool and storage were
  // unreachable, or the block's time is ahead of the local clock). Never
  // cached: the machine asks again in a later round, and meanwhile treats
  // the block as not (yet) valid, so it prevotes nil when its propose
  // timeout fires.
  kUndecided = 2,
};

// ---------------------------------------------------------------- actions

// Send this message to every other validator (and keep relaying it: the
// algorithm assumes that a message one correct node received eventually
// reaches all of them; GossipMessages() lists what to relay).
struct BroadcastAction {
  Message message;
};
// Call OnTimeout(height, round, step) after `duration`. Timeouts need not be
// cancelled: one that no longer applies is ignored.
struct ScheduleTimeoutAction {
  uint64_t height = 0;
  uint32_t round = 0;
  Step step = Step::kPropose;
  absl::Duration duration;
};
// `block` is final at `height`; certificate passes VerifyCertificate for
// block.header. The driver persists it, then calls StartHeight(height + 1).
struct DecideAction {
  uint64_t height = 0;
  Block block;
  CommitCertificate certificate;
};
// A validator equivocated. Report it; it changes nothing else here.
struct EvidenceAction {
  Evidence evidence;
};
// getValue() of the paper: this validator proposes at (height, round) and has
// no validValue. Answer with OnBlockToPropose(height, round, block) once the
// block is built (from the mempool's pending txs), or with an error when
// there is none: the machine then proposes nothing this round and prevotes
// nil when its propose timeout (scheduled with the request) fires. The block
// must carry that height and the chain id, a tx_root that is the Merkle root
// of its txs, and keep the chain rules; the machine treats it as valid (the
// node's own block is not checked again). An answer that comes too late
// (another round, height or step) is ignored.
struct RequestBlockAction {
  uint64_t height = 0;
  uint32_t round = 0;
};
// valid(v) of the paper: is `block` (whose header hashes to block_hash) a
// valid block at `height`? Answer with OnBlockVerdict(height, block_hash,
// verdict). Asked at most once per block at a time; after a kUndecided
// answer, asked again in a later round if still needed. Until the answer
// comes, the rules that need valid(v) wait (the propose timeout still fires).
// The verdict must be a deterministic function of the block and the chain
// state at height - 1 (plus kUndecided), never of a per-node option.
struct ValidateBlockAction {
  uint64_t height = 0;
  Hash32 block_hash{};
  Block block;
};

using Action =
    std::variant<BroadcastAction, ScheduleTimeoutAction, DecideAction,
                 EvidenceAction, RequestBlockAction, ValidateBlockAction>;
using Actions = std::vector<Action>;

// What happened to the messages that came in. Plain counters for tests and
// for the metrics the service exports.
struct Counters {
  uint64_t proposals_accepted = 0;
  uint64_t votes_accepted = 0;
  uint64_t commits_accepted = 0;   // Commit messages that decided a height
  uint64_t duplicates = 0;         // already had it; ignored
  uint64_t bad_signature = 0;      // signature or commit certificate that does
                                   // not verify; dropped
  uint64_t unknown_validator = 0;  // index not in the validator set; dropped
  uint64_t wrong_proposer = 0;     // proposal not from Proposer(h, r); dropped
  uint64_t malformed = 0;          // block height/chain/tx_root or valid_round
                                   // that does not fit the message; dropped
  uint64_t invalid_blocks = 0;     // valid(v) answered kInvalid
  uint64_t validations_requested = 0;  // ValidateBlockActions sent
  uint64_t validity_undecided = 0;     // kUndecided answers
  uint64_t stale_answers = 0;  // block or verdict answers that came too late
  uint64_t over_limits = 0;    // proposal or commit over the chain rules'
                               // block limits; dropped (also `malformed`)
  uint64_t stale = 0;          // for a past height, or this height once decided
  uint64_t future_buffered = 0;       // next height, kept for later
  uint64_t future_dropped = 0;        // later height, or next height over bound
  uint64_t round_budget_dropped = 0;  // future-round bound (see options)
  uint64_t round_budget_evicted = 0;
  uint64_t not_started = 0;        // arrived before the first StartHeight
  uint64_t equivocations = 0;      // evidence recorded
  uint64_t conflicts_dropped = 0;  // further conflicting messages of one
                                   // validator in a round, after evidence
  uint64_t sign_failures = 0;      // the signer refused; nothing sent
  uint64_t proposal_source_failures = 0;
  uint64_t rounds_skipped = 0;  // line 55 moved us to a higher round
  // Fresh proposals (valid_round -1) not timely at their receipt (line 22
  // then prevotes nil; see JudgeTimeliness), by direction.
  uint64_t untimely_early = 0;
  uint64_t untimely_late = 0;
};

// One validator's (or an observer's) Tendermint instance for the validator
// set of a genesis. Not thread-safe: the driver calls it from one thread (or
// under its own lock). Every input returns the actions it caused, in order.
//
// Message checks on every input: a vote's validator index must be in the
// set and its signature must verify over VoteSignBytes; a proposal must come
// from Proposer(height, round), be signed over ProposalSignBytes, carry a
// block of its height and chain with a matching tx_root, and have
// valid_round < round. Failing messages are dropped and counted (counters()).
// A validator's first vote per (height, round, type) counts. A second,
// validly signed vote for another block is evidence (reported once); it does
// not count toward "2f+1 of any value" and is otherwise dropped, except when
// it names nil or a block proposed at this height: then it counts toward that
// value, as in the paper, whose message log holds every message. (Safety does
// not need the votes of faulty validators to be unique: two quorums share an
// honest validator. Liveness does: an honest validator may lock on a block
// whose 2f+1 prevotes include an equivocator's vote, and the others must be
// able to recognise that quorum when the block is proposed again, line 28.)
// Likewise a second proposal for a round is evidence and is kept, so that a
// quorum for it can still be acted on; a third is dropped.
//
// Double signing: the machine signs at most one proposal, one prevote and one
// precommit per (height, round). A validly signed message of its own index
// that comes in from outside (replayed from a write-ahead log after a
// restart, or relayed back) counts as signed too.
class StateMachine {
 public:
  // Builds the machine for the validators of `genesis` (their order is their
  // index). own_index is this node's index (nullopt: an observer, which never
  // signs); signer must then sign with that validator's key (peers drop
  // messages whose signature does not verify). InvalidArgument when genesis
  // has no validators, more than kMaxValidators, zero or over 2^60 total
  // power, another suite than `suite`; when own_index is out of range or has
  // no signer. `suite` and `signer` must outlive the machine.
  //
  // Proposing and validating are asynchronous: the machine asks for a block
  // (RequestBlockAction) and for valid(v) (ValidateBlockAction) and goes on;
  // the answers come back as inputs (OnBlockToPropose, OnBlockVerdict).
  static absl::StatusOr<std::unique_ptr<StateMachine>> Create(
      const Genesis& genesis, const CryptoSuite& suite,
      std::optional<uint32_t> own_index, MessageSigner* signer,
      StateMachineOptions options = {});

  StateMachine(const StateMachine&) = delete;
  StateMachine& operator=(const StateMachine&) = delete;

  // Starts consensus on `height` at round 0 (line 10, and lines 52-54 once
  // the previous height is decided and persisted), dropping what was kept for
  // lower heights and replaying what was buffered for this one.
  // FailedPrecondition if height is 0 or not above the current height.
  // After a restart, own_log holds what this validator signed at `height`
  // before (its write-ahead log): those messages are taken in first, so the
  // machine never signs a conflicting one, keeps the lock its last non-nil
  // precommit implies, and resumes at the highest round among them. Other
  // validators' votes and proposals in it (what its lock rests on,
  // WalPolka) count as received; other heights are ignored. The
  // caller should send the logged messages again (peers may have missed
  // them).
  absl::StatusOr<Actions> StartHeight(uint64_t height,
                                      const std::vector<Message>& own_log = {});

  // Inputs. Each returns the actions it caused (often none).
  // received_ms: this node's clock (unix ms) when the message came in off the
  // network; the driver always passes it. A fresh proposal (valid_round -1)
  // of another validator gets a prevote only if its block time is timely
  // against it (JudgeTimeliness, line 22). Without it (tests, the
  // simulation) timeliness is not judged. It belongs to this receipt of
  // the proposal, never to the block: it is not kept as a verdict and does
  // not touch valid(v), which lines 28, 36 and 49 use.
  Actions OnMessage(const Message& m,
                    std::optional<uint64_t> received_ms = std::nullopt);
  Actions OnProposal(const Proposal& p,
                     std::optional<uint64_t> received_ms = std::nullopt);
  Actions OnVote(const Vote& v);
  // A decided block of the current height with its certificate (from a peer
  // or block sync): decides it if its structure is sound (height, chain id,
  // the chain rules' limits, tx_root) and the certificate verifies. It does
  // not ask valid(v): more than a third of the power, so at least one honest
  // validator, checked it before precommitting, and nothing local (a clock,
  // an option, a busy mempool) may stop a certified block.
  Actions OnCommit(const Commit& c);
  // The answer to a RequestBlockAction.
  Actions OnBlockToPropose(uint64_t height, uint32_t round,
                           absl::StatusOr<Block> block);
  // The answer to a ValidateBlockAction.
  Actions OnBlockVerdict(uint64_t height, const Hash32& block_hash,
                         BlockVerdict verdict);
  // A timeout set by a ScheduleTimeoutAction expired (lines 57-67). One that
  // was never scheduled, or no longer applies, is ignored.
  Actions OnTimeout(uint64_t height, uint32_t round, Step step);

  // What a node should keep relaying to its peers for the current height:
  // the decision (as a Commit) once decided; otherwise every proposal and
  // counted vote it holds for this height, own ones included. Lost messages
  // are recovered this way; a driver sends it every few hundred ms or when a
  // peer seems to lag.
  std::vector<Message> GossipMessages() const;

  // The last fresh proposal judged untimely at line 22 (any height).
  const std::optional<UntimelyProposal>& last_untimely() const {
    return last_untimely_;
  }

  // Read-only state, for the driver, tests and metrics.
  uint64_t height() const { return height_; }
  uint32_t round() const { return round_; }
  Step step() const { return step_; }
  bool started() const { return height_ > 0; }
  // The decision of the current height, once made.
  const std::optional<Commit>& decision() const { return decision_; }
  int64_t locked_round() const { return locked_round_; }
  int64_t valid_round() const { return valid_round_; }
  std::optional<Hash32> locked_block_hash() const;
  // The prevotes for block_hash in `round` of this height (each validator's
  // counted ones): after a non-nil precommit, the polka behind the lock,
  // which the driver logs so that a restart can show it to peers again.
  std::vector<Vote> PrevotesFor(uint32_t round, const Hash32& block_hash) const;
  // A proposal of this height that carries the block with this hash.
  std::optional<Proposal> ProposalOf(const Hash32& block_hash) const;
  const Counters& counters() const { return counters_; }
  // Evidence seen so far (at most options.max_evidence, oldest first).
  const std::vector<Evidence>& evidence() const { return evidence_; }
  // Proposer(height, round) for this validator set.
  uint32_t Proposer(uint64_t height, uint32_t round) const;
  const std::optional<uint32_t>& own_index() const { return own_index_; }

 private:
  // The votes of one type in one round. Per validator: its first vote, then
  // conflicting ones kept for their value (see AddVote). power_for is the
  // power behind each block hash (the zero hash is nil), a validator counted
  // once per hash; power_any counts each validator once.
  struct VoteTally {
    std::map<uint32_t, std::vector<Vote>> by_validator;
    std::map<Hash32, uint64_t> power_for;
    uint64_t power_any = 0;
  };
  struct StoredProposal {
    Proposal proposal;
    Hash32 hash{};
    // This node's clock when it came in (OnProposal); nullopt for our own
    // proposals and those replayed from the WAL: not judged for timeliness.
    std::optional<uint64_t> received_ms;
  };
  // Everything known about one round of the current height.
  struct RoundState {
    std::vector<StoredProposal> proposals;  // first, then one conflicting
    VoteTally prevotes;
    VoteTally precommits;
    // Validators with any message in this round, and their power (line 55).
    std::set<uint32_t> senders;
    uint64_t sender_power = 0;
    // "for the first time" guards of lines 34, 36 and 47.
    bool prevote_timeout_set = false;
    bool polka_seen = false;
    bool precommit_timeout_set = false;
    // Timeouts scheduled in this round, one bit per Step; a timeout that was
    // never scheduled is ignored.
    uint8_t timeouts_set = 0;
    // What this validator signed in this round; it never signs twice.
    bool sent_proposal = false;
    bool sent_prevote = false;
    bool sent_precommit = false;
    // (vote type, validator) pairs already reported as equivocating.
    std::set<std::pair<uint8_t, uint32_t>> evidenced;
  };
  enum class Verdict {
    kOk,
    kBadSignature,
    kUnknownValidator,
    kWrongProposer,
    kMalformed,
    kOverLimits
  };
  // A message for a later height, verified, waiting for StartHeight.
  struct Buffered {
    uint32_t validator = 0;
    Message message;
    std::optional<uint64_t> received_ms;  // of a proposal
  };

  StateMachine(const Genesis& genesis, const CryptoSuite& suite,
               std::optional<uint32_t> own_index, MessageSigner* signer,
               StateMachineOptions options, uint64_t total_power);

  // Checks of a message that need no state of the height (signature, set
  // membership, proposer, block shape). They do not judge a block's txs:
  // that is valid(v), asked of the driver with a ValidateBlockAction (whose
  // BlockChecker calls MempoolApi::CheckProposal).
  // `hash` receives the proposal's block hash.
  // A block is checked against the chain rules' limits and the signature
  // before its txs are hashed, so a forged or oversized proposal costs at
  // most one signature check.
  Verdict VerifyVoteMessage(const Vote& v) const;
  bool WithinLimits(const Block& b) const;
  Verdict VerifyProposalMessage(const Proposal& p, Hash32* hash) const;
  Verdict VerifyCommitMessage(const Commit& c) const;
  void CountVerdict(Verdict v);

  // Route a message by height: past heights are stale, the next height is
  // verified and buffered, the current one goes into the log. `verified`
  // skips the signature check (own or already checked messages).
  void HandleVote(const Vote& v, bool verified, Actions* out);
  void HandleProposal(const Proposal& p, bool verified, Actions* out,
                      std::optional<uint64_t> received_ms = std::nullopt);
  void HandleCommit(const Commit& c, bool verified, Actions* out);
  void BufferNextHeight(uint32_t validator, Message m,
                        std::optional<uint64_t> received_ms = std::nullopt);
  // The next-height bound of validator is reached (for a proposal: it has
  // one buffered already). A lookup: asked before any signature check.
  bool NextHeightFull(uint32_t validator, bool proposal) const;
  // Future-round bound for validator at round; false = drop.
  bool MakeRoom(uint32_t validator, uint32_t round);
  void Evict(uint32_t validator, uint32_t round);
  void NoteSender(RoundState& rs, uint32_t round, uint32_t validator);

  // Adds to the message log of the current height; true when it changed what
  // the rules see.
  bool AddVote(const Vote& v, bool verified, Actions* out);
  bool AddProposal(const Proposal& p, bool verified, Actions* out,
                   std::optional<uint64_t> received_ms = std::nullopt);
  void RecordEvidence(Evidence e, Actions* out);
  // After a restart restored validRound without its block: takes the block
  // from the first proposal of it that comes in.
  void NoteRestoredValidValue(const Proposal& p, const Hash32& hash);

  // The rules of Algorithm 1, each named after its lines.
  void StartRound(uint32_t round, Actions* out);                      // 11-21
  bool UponProposalNoValidRound(Actions* out);                        // 22-27
  bool UponProposalWithValidRound(Actions* out);                      // 28-33
  bool UponPrevoteQuorumAny(Actions* out);                            // 34-35
  bool UponPrevoteQuorumForProposal(Actions* out);                    // 36-43
  bool UponPrevoteQuorumNil(Actions* out);                            // 44-46
  bool UponPrecommitQuorumAny(Actions* out);                          // 47-48
  bool UponPrecommitQuorumForProposal(uint32_t round, Actions* out);  // 49-54
  bool UponRoundSkip(uint32_t round, Actions* out);                   // 55-56
  void OnTimeoutPropose(uint64_t h, uint32_t r, Actions* out);        // 57-60
  void OnTimeoutPrevote(uint64_t h, uint32_t r, Actions* out);        // 61-64
  void OnTimeoutPrecommit(uint64_t h, uint32_t r, Actions* out);      // 65-67
  // Runs the rules that the message log may now enable, until none fires.
  void Evaluate(std::optional<uint32_t> touched_round, Actions* out);

  void BroadcastVote(VoteType type, const Hash32& block_hash, Actions* out);
  void ScheduleTimeout(Step step, Actions* out);
  void Decide(const Block& block, CommitCertificate cert, Actions* out);
  // Signs and sends our proposal of `block` in the current round.
  void SendProposal(Block block, int64_t valid_round, Actions* out);
  // valid(v): the cached verdict, or nullopt while it is not known (then
  // a ValidateBlockAction goes out, unless one is pending or an undecided
  // answer came in this round).
  std::optional<bool> Valid(const Block& block, const Hash32& hash,
                            Actions* out);
  bool IsQuorum(uint64_t power) const;    // 2f+1: more than 2/3
  bool IsOneThird(uint64_t power) const;  // f+1: more than 1/3
  RoundState& Round(uint32_t r) { return rounds_[r]; }
  const RoundState* FindRound(uint32_t r) const;

  const Genesis genesis_;
  const CryptoSuite& suite_;
  const std::optional<uint32_t> own_index_;
  MessageSigner* const signer_;
  const StateMachineOptions options_;
  const uint64_t total_power_;
  const ProposerSchedule proposers_;

  // Algorithm 1's variables (h_p, round_p, step_p, lockedValue_p, ...).
  uint64_t height_ = 0;
  uint32_t round_ = 0;
  Step step_ = Step::kPropose;
  // lockedValue_p is kept by its hash: the rules compare it with proposals
  // and never need the block itself (a proposer re-proposes validValue).
  Hash32 locked_hash_{};
  int64_t locked_round_ = kNoRound;
  std::optional<Block> valid_value_;
  int64_t valid_round_ = kNoRound;
  // validValue's hash while its block is still unknown (after a restart).
  std::optional<Hash32> restored_valid_hash_;
  std::optional<Commit> decision_;

  // The message log of the current height.
  std::map<uint32_t, RoundState> rounds_;
  // Rounds in which each validator has a message (for the future bound).
  std::vector<std::set<uint32_t>> rounds_of_;
  // Hashes of the blocks proposed at this height (any round).
  std::set<Hash32> proposal_hashes_;
  // Definite valid(v) verdicts of this height by block hash; the blocks whose
  // verdict was asked for and has not come; the round of the last undecided
  // answer per block (not asked again in that round).
  std::map<Hash32, bool> validity_;
  std::set<Hash32> validating_;
  std::map<Hash32, uint32_t> undecided_round_;
  // A RequestBlockAction of this height is out for this round.
  std::optional<uint32_t> block_requested_round_;
  // Next-height messages, in arrival order, and how many per validator.
  std::vector<Buffered> next_height_;
  std::vector<size_t> next_height_count_;
  std::vector<bool> next_height_proposal_;  // one buffered proposal each
  std::optional<Commit> next_height_commit_;

  std::vector<Evidence> evidence_;
  Counters counters_;
  std::optional<UntimelyProposal> last_untimely_;
};

}  // namespace consortia::consensus::tendermint

#endif  // CONSORTIA_CONSENSUS_SRC_TENDERMINT_STATE_MACHINE_H_
