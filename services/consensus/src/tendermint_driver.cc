#include "tendermint_driver.h"

#include <algorithm>
#include <deque>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "consortia/codec.h"
#include "consortia/log.h"
#include "tendermint/messages.h"

namespace consortia::consensus {
namespace {

using tendermint::Action;
using tendermint::Actions;
using tendermint::BroadcastAction;
using tendermint::DecideAction;
using tendermint::EvidenceAction;
using tendermint::Message;
using tendermint::Proposal;
using tendermint::ScheduleTimeoutAction;
using tendermint::Step;

// How often the driver thread looks at the clock when nothing comes in.
constexpr absl::Duration kPoll = absl::Milliseconds(5);
// Pause before asking storage again after it failed.
constexpr absl::Duration kStorageRetry = absl::Milliseconds(100);
// Evidence waiting for storage; more is dropped (and counted): it is only
// the same proof again, and every copy is still logged.
constexpr size_t kMaxPendingEvidence = 1000;
// Messages the driver thread takes from each peer's queue per round.
constexpr size_t kInboundPerPeerPerRound = 16;
// A repeated warning (equivocations) is logged at most this often.
constexpr absl::Duration kLogEvery = absl::Seconds(10);
// Block encodings kept for Commit (KeepBlockBytes): a height normally needs
// one; a few more cover rounds with other proposals and the next height's.
constexpr size_t kMaxKeptBlocks = 8;

uint16_t TypeOf(const Message& m) {
  if (std::holds_alternative<Proposal>(m)) {
    return static_cast<uint16_t>(MsgType::kConsensusProposal);
  }
  if (std::holds_alternative<Vote>(m)) {
    return static_cast<uint16_t>(MsgType::kConsensusVote);
  }
  return static_cast<uint16_t>(MsgType::kConsensusCommit);
}

uint64_t NowMs(const Clock* clock) {
  return static_cast<uint64_t>(
      std::max<int64_t>(0, absl::ToUnixMillis(clock->Now())));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TendermintDriver>> TendermintDriver::Create(
    const TendermintDriverOptions& options, const Genesis& genesis,
    const CryptoSuite& suite, const NodeKey& key, MempoolApi* mempool,
    LedgerApi* ledger, BlockSource* blocks, const Clock* clock,
    ConsensusMetrics metrics, MempoolApi* check_mempool) {
  if (genesis.validators.empty()) {
    return absl::FailedPreconditionError("genesis has no validators");
  }
  if (key.crypto_suite != genesis.crypto_suite) {
    return absl::InvalidArgumentError(
        absl::StrCat("node key is for crypto suite \"", key.crypto_suite,
                     "\" but the chain uses \"", genesis.crypto_suite, "\""));
  }
  absl::StatusOr<std::unique_ptr<tendermint::KeySigner>> key_signer =
      tendermint::KeySigner::Create(suite, key.secret_key, key.public_key);
  if (!key_signer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("node key: ", key_signer.status().message()));
  }
  std::optional<uint32_t> own_index;
  for (size_t i = 0; i < genesis.validators.size(); ++i) {
    if (genesis.validators[i].public_key == key.public_key) {
      own_index = static_cast<uint32_t>(i);
    }
  }
  // A node that is not a genesis validator keeps a WAL too (when it has a
  // directory for one): governance may make it a validator later.
  std::unique_ptr<Wal> wal;
  if (own_index.has_value() && options.wal_dir.empty()) {
    return absl::InvalidArgumentError("a validator needs a WAL directory");
  }
  if (!options.wal_dir.empty()) {
    WalOpenReport report;
    absl::StatusOr<std::unique_ptr<Wal>> opened =
        Wal::Open(options.wal_dir, WalOptions{}, &report);
    if (!opened.ok()) return opened.status();
    wal = *std::move(opened);
    if (report.tail_cut) {
      spdlog::warn("consensus WAL: cut {} bytes of a torn tail of {} ({})",
                   report.cut_bytes, report.cut_segment, report.cut_reason);
    }
  }
  std::unique_ptr<TendermintDriver> d(
      new TendermintDriver(options, genesis, suite, key, mempool, ledger,
                           blocks, clock, std::move(metrics), std::move(wal),
                           check_mempool != nullptr ? check_mempool : mempool));
  if (d->wal_ != nullptr) {
    // Votes and proposals are signed only through the WAL. Before a non-nil
    // precommit the guard logs what the lock rests on (see WalPolka): the
    // machine's prevotes for the block and the proposal that carries it
    // (unless it is this validator's own, logged already).
    TendermintDriver* driver = d.get();
    d->signer_ = std::make_unique<DoubleSignGuard>(
        d->wal_.get(), *std::move(key_signer),
        [driver](uint64_t height, uint32_t round, const Hash32& hash) {
          WalPolka p;
          p.height = height;
          p.votes = driver->machine_->PrevotesFor(round, hash);
          std::optional<Proposal> proposal = driver->machine_->ProposalOf(hash);
          if (proposal.has_value() &&
              proposal->proposer_index != driver->machine_->own_index()) {
            p.proposal = tendermint::EncodeProposal(*proposal);
          }
          return p;
        });
  }
  if (absl::Status s = d->AdoptValidators(genesis.validators, genesis.rules);
      !s.ok()) {
    return s;
  }
  return d;
}

absl::Status TendermintDriver::AdoptValidators(
    const std::vector<Validator>& validators, const ChainRules& rules) {
  if (machine_ != nullptr && validators == validators_ && rules == rules_) {
    return absl::OkStatus();
  }
  std::optional<uint32_t> own;
  for (size_t i = 0; i < validators.size(); ++i) {
    if (validators[i].public_key == key_public_) own = static_cast<uint32_t>(i);
  }
  if (own.has_value() && signer_ == nullptr) {
    spdlog::error(
        "consensus: this node's key is validator {} of the next height's set, "
        "but the node has no WAL directory: it runs as an observer",
        *own);
    own.reset();
  }
  Genesis g = genesis_;
  g.validators = validators;
  g.rules = rules;
  tendermint::StateMachineOptions machine_options;
  machine_options.timeouts = options_.timeouts;
  absl::StatusOr<std::unique_ptr<tendermint::StateMachine>> machine =
      tendermint::StateMachine::Create(g, suite_, own, signer_.get(),
                                       machine_options);
  if (!machine.ok()) return machine.status();
  const bool first = machine_ == nullptr;
  const bool set_changed = validators != validators_;
  machine_ = *std::move(machine);
  validators_ = validators;
  rules_ = rules;
  heard_from_.clear();
  metrics_.validators.Set(static_cast<double>(validators.size()));
  metrics_.is_validator.Set(own.has_value() ? 1 : 0);
  {
    absl::MutexLock lock(&mu_);
    own_index_ = own;
  }
  if (!first && !set_changed) {
    spdlog::info(
        "consensus: from height {} the chain rules are max_block_txs {}, "
        "max_block_bytes {}, replay_window {}",
        state_.height + 1, rules.max_block_txs, rules.max_block_bytes,
        rules.replay_window);
  } else if (!first) {
    metrics_.validator_set_changes.Inc();
    spdlog::info(
        "consensus: from height {} the validator set has {} validators; this "
        "node is {}",
        state_.height + 1, validators.size(),
        own.has_value() ? absl::StrCat("validator ", *own)
                        : std::string("an observer"));
  }
  return absl::OkStatus();
}

void TendermintDriver::AdoptNextValidators() {
  // Empty: a storage that names no set (test fakes); the set stays.
  const std::vector<Validator>& validators =
      state_.next_validators.empty() ? validators_ : state_.next_validators;
  if (absl::Status s = AdoptValidators(
          validators, state_.next_rules.value_or(genesis_.rules));
      !s.ok()) {
    metrics_.validator_set_errors.Inc();
    spdlog::critical(
        "consensus: cannot take the validator set of height {} ({} "
        "validators): {}; the previous set stays",
        state_.height + 1, state_.next_validators.size(), s.ToString());
  }
}

std::optional<uint32_t> TendermintDriver::own_index() const {
  absl::MutexLock lock(&mu_);
  return own_index_;
}

TendermintDriver::TendermintDriver(const TendermintDriverOptions& options,
                                   const Genesis& genesis,
                                   const CryptoSuite& suite, const NodeKey& key,
                                   MempoolApi* mempool, LedgerApi* ledger,
                                   BlockSource* blocks, const Clock* clock,
                                   ConsensusMetrics metrics,
                                   std::unique_ptr<Wal> wal,
                                   MempoolApi* check_mempool)
    : options_(options),
      genesis_(genesis),
      suite_(suite),
      key_public_(key.public_key),
      mempool_(mempool),
      ledger_(ledger),
      blocks_(blocks),
      clock_(clock),
      metrics_(std::move(metrics)),
      builder_(genesis.chain_id, suite, key.public_key),
      wal_(std::move(wal)),
      verify_pool_(std::make_unique<ThreadPool>(options.verify_threads)),
      jobs_(std::make_unique<ThreadPool>(2)) {
  checker_ =
      std::make_unique<BlockChecker>(genesis_, suite_, check_mempool, blocks_,
                                     verify_pool_.get(), clock_, metrics_);
}

TendermintDriver::~TendermintDriver() { Stop(); }

std::map<uint16_t, PeerHandler> TendermintDriver::Handlers() {
  std::map<uint16_t, PeerHandler> handlers;
  // A status message is a block sync request: it only records the peer's
  // height for the sync thread (the newest one wins), whoever sends it.
  handlers[static_cast<uint16_t>(MsgType::kConsensusStatus)] =
      [this](const std::string& peer, const Envelope&, Bytes payload) {
        Decoder dec(payload);
        uint64_t peer_height = 0;
        if (!dec.GetVarint(&peer_height).ok() || !dec.ExpectEnd().ok()) {
          metrics_.messages_dropped.Inc();
          metrics_
              .peer_drops[ConsensusMetrics::kDropUndecodable]
                         [options_.observer_peers.count(peer) > 0
                              ? ConsensusMetrics::kObserverPeer
                              : ConsensusMetrics::kValidatorPeer]
              .Inc();
          return;
        }
        absl::MutexLock lock(&sync_mu_);
        ++sync_stats_.requests;
        auto [it, inserted] = sync_pending_.try_emplace(peer, peer_height);
        if (!inserted) {
          it->second = peer_height;
          ++sync_stats_.skipped;
          metrics_.sync_requests_skipped.Inc();
        }
      };
  for (MsgType t : {MsgType::kConsensusProposal, MsgType::kConsensusVote,
                    MsgType::kConsensusCommit}) {
    handlers[static_cast<uint16_t>(t)] = [this](const std::string& peer,
                                                const Envelope& env,
                                                Bytes payload) {
      if (options_.observer_peers.count(peer) > 0) {
        // Observers get sync, never a share of the driver's attention.
        metrics_
            .peer_drops[ConsensusMetrics::kDropObserver]
                       [ConsensusMetrics::kObserverPeer]
            .Inc();
        return;
      }
      absl::MutexLock lock(&mu_);
      PeerInbox& box = inbound_[peer];
      if (box.queue.size() >= options_.max_inbound_per_peer ||
          box.bytes + payload.size() > options_.max_inbound_bytes_per_peer) {
        metrics_.messages_dropped.Inc();
        metrics_
            .peer_drops[ConsensusMetrics::kDropQueueFull]
                       [ConsensusMetrics::kValidatorPeer]
            .Inc();
        return;
      }
      box.bytes += payload.size();
      inbound_bytes_ += payload.size();
      ++inbound_messages_;
      // Stamped on arrival, before it waits in the queue: a proposal's
      // timeliness is judged against this (proposer-based block time).
      box.queue.push_back(
          Inbound{peer, env.type, std::move(payload), NowMs(clock_)});
    };
  }
  return handlers;
}

void TendermintDriver::Start(PeerNet* net) {
  net_ = net;
  next_gossip_ = clock_->Now();
  thread_ = std::thread([this] { Loop(); });
  sync_thread_ = std::thread([this] { SyncLoop(); });
}

void TendermintDriver::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  {
    absl::MutexLock lock(&sync_mu_);
    sync_stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (sync_thread_.joinable()) sync_thread_.join();
}

SyncStats TendermintDriver::sync_stats() const {
  absl::MutexLock lock(&sync_mu_);
  return sync_stats_;
}

bool TendermintDriver::Ready() const {
  absl::MutexLock lock(&mu_);
  return ready_;
}

uint64_t TendermintDriver::height() const {
  absl::MutexLock lock(&mu_);
  return height_;
}

uint32_t TendermintDriver::round() const {
  absl::MutexLock lock(&mu_);
  return round_;
}

uint64_t TendermintDriver::blocks_committed() const {
  absl::MutexLock lock(&mu_);
  return committed_;
}

uint64_t TendermintDriver::TestOnlyBlocksEncodedToCommit() const {
  absl::MutexLock lock(&mu_);
  return encoded_to_commit_;
}

bool TendermintDriver::HasWork() const {
  return stopping_ || inbound_messages_ > 0 || !answers_.empty();
}

bool TendermintDriver::Stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

void TendermintDriver::Loop() {
  if (!Boot()) return;
  PublishSyncSnapshot();
  for (;;) {
    std::vector<Inbound> batch;
    std::deque<Answer> answers;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &TendermintDriver::HasWork),
                           kPoll);
      if (stopping_) return;
      batch = TakeInboundRound(kInboundPerPeerPerRound);
      metrics_.inbound_messages.Set(static_cast<double>(inbound_messages_));
      metrics_.inbound_bytes.Set(static_cast<double>(inbound_bytes_));
      answers.swap(answers_);
    }
    for (Answer& a : answers) HandleAnswer(std::move(a));
    for (const Inbound& in : batch) {
      HandleInbound(in);
      // A height decided from a synced Commit starts the next one at once,
      // so the next Commit of the batch finds its height (block sync).
      MaybeStartNextHeight();
    }
    FireDueTimeouts();
    MaybeStartNextHeight();
    if (clock_->Now() >= next_gossip_) Gossip();
    PublishState();
    PublishSyncSnapshot();
  }
}

std::vector<TendermintDriver::Inbound> TendermintDriver::TakeInboundRound(
    size_t per_peer) {
  std::vector<Inbound> out;
  if (inbound_messages_ == 0) return out;
  // Peers in id order, starting after the one served first last time.
  auto start = inbound_.upper_bound(next_inbound_peer_);
  std::vector<std::map<std::string, PeerInbox>::iterator> order;
  for (auto it = start; it != inbound_.end(); ++it) order.push_back(it);
  for (auto it = inbound_.begin(); it != start; ++it) order.push_back(it);
  for (auto it : order) {
    PeerInbox& box = it->second;
    for (size_t n = 0; n < per_peer && !box.queue.empty(); ++n) {
      box.bytes -= box.queue.front().payload.size();
      inbound_bytes_ -= box.queue.front().payload.size();
      --inbound_messages_;
      out.push_back(std::move(box.queue.front()));
      box.queue.pop_front();
    }
  }
  if (!out.empty()) next_inbound_peer_ = out.front().peer;
  std::erase_if(inbound_,
                [](const auto& kv) { return kv.second.queue.empty(); });
  return out;
}

void TendermintDriver::PublishSyncSnapshot() {
  if (published_height_ == state_.height) return;
  auto snap = std::make_shared<SyncSnapshot>();
  snap->height = state_.height;
  snap->commits = recent_commits_;  // encoded once, when decided
  published_height_ = state_.height;
  absl::MutexLock lock(&sync_mu_);
  sync_snapshot_ = std::move(snap);
}

bool TendermintDriver::SyncHasWork() const {
  return sync_stopping_ || !sync_pending_.empty();
}

void TendermintDriver::SyncLoop() {
  const absl::Duration interval = options_.sync_interval > absl::ZeroDuration()
                                      ? options_.sync_interval
                                      : options_.gossip_interval;
  std::string last_peer;  // round-robin position
  for (;;) {
    std::string peer;
    uint64_t peer_height = 0;
    std::shared_ptr<const SyncSnapshot> snap;
    {
      absl::MutexLock lock(&sync_mu_);
      sync_mu_.AwaitWithTimeout(
          absl::Condition(this, &TendermintDriver::SyncHasWork), kPoll);
      if (sync_stopping_) return;
      if (sync_snapshot_ == nullptr || sync_pending_.empty()) continue;
      // The next peer (after the last one served) whose interval is over;
      // the others keep their latest request until theirs is.
      const absl::Time now = clock_->Now();
      auto due = [&](const std::string& p) {
        auto it = sync_last_served_.find(p);
        return it == sync_last_served_.end() || now >= it->second + interval;
      };
      auto pick = sync_pending_.end();
      for (auto it = sync_pending_.upper_bound(last_peer);
           it != sync_pending_.end(); ++it) {
        if (due(it->first)) {
          pick = it;
          break;
        }
      }
      if (pick == sync_pending_.end()) {
        for (auto it = sync_pending_.begin(); it != sync_pending_.end(); ++it) {
          if (it->first > last_peer) break;
          if (due(it->first)) {
            pick = it;
            break;
          }
        }
      }
      if (pick == sync_pending_.end()) {
        // Nobody is due yet: wait for the clock (or stop).
        sync_mu_.AwaitWithTimeout(absl::Condition(&sync_stopping_), kPoll);
        continue;
      }
      peer = pick->first;
      peer_height = pick->second;
      sync_pending_.erase(pick);
      sync_last_served_[peer] = now;
      ++sync_stats_.served;
      snap = sync_snapshot_;
    }
    last_peer = peer;
    metrics_.sync_requests_served.Inc();
    ServeSync(peer, peer_height, *snap);
  }
}

bool TendermintDriver::Boot() {
  for (;;) {
    absl::StatusOr<ChainState> st = ledger_->GetChainState();
    if (st.ok()) {
      state_ = *st;
      break;
    }
    metrics_.chain_state_errors.Inc();
    spdlog::debug("cannot read the chain state yet: {}",
                  st.status().ToString());
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), kStorageRetry);
    if (stopping_) return false;
  }
  if (!options_.last_commit_path.empty()) {
    absl::StatusOr<std::string> text = ReadFile(options_.last_commit_path);
    if (text.ok()) {
      absl::StatusOr<Message> m = tendermint::DecodeMessage(AsBytes(*text));
      const auto* c = m.ok() ? std::get_if<tendermint::Commit>(&*m) : nullptr;
      if (c != nullptr && c->block.header.height == state_.height) {
        // The file holds the encoded Commit message itself.
        const ByteView encoded = AsBytes(*text);
        recent_commits_[state_.height] =
            std::make_shared<const Bytes>(encoded.begin(), encoded.end());
      }
    }
  }
  if (wal_ != nullptr && wal_->last_end_height() < state_.height) {
    if (absl::Status s = wal_->Append(WalEndHeight{state_.height}); !s.ok()) {
      spdlog::error("consensus WAL: cannot mark height {} ended: {}",
                    state_.height, s.ToString());
    }
  }
  // What this validator signed at the unfinished height goes into the
  // machine with the height's start (so it never signs a conflicting
  // message and keeps its lock), and out again: peers may have missed it.
  std::vector<Message> own_log;
  if (wal_ != nullptr) {
    for (const WalRecord& rec : wal_->Replay()) {
      if (const Vote* v = std::get_if<Vote>(&rec)) {
        if (v->height == state_.height + 1) own_log.push_back(*v);
      } else if (const auto* pv = std::get_if<WalPolka>(&rec)) {
        if (pv->height != state_.height + 1) continue;
        own_log.insert(own_log.end(), pv->votes.begin(), pv->votes.end());
        if (!pv->proposal.empty()) {
          absl::StatusOr<Proposal> proposal =
              tendermint::DecodeProposal(pv->proposal);
          if (proposal.ok()) own_log.push_back(*std::move(proposal));
        }
      } else if (const WalProposal* p = std::get_if<WalProposal>(&rec)) {
        if (p->height != state_.height + 1) continue;
        absl::StatusOr<Proposal> proposal =
            tendermint::DecodeProposal(p->message);
        if (proposal.ok()) own_log.push_back(*std::move(proposal));
      }
    }
  }
  AdoptNextValidators();
  absl::StatusOr<Actions> started =
      machine_->StartHeight(state_.height + 1, own_log);
  if (!started.ok()) {
    spdlog::error("cannot start height {}: {}", state_.height + 1,
                  started.status().ToString());
    return false;
  }
  for (const Message& m : own_log) Send(m, nullptr);
  if (!own_log.empty()) {
    spdlog::info(
        "consensus: resumed height {} at round {} with {} "
        "messages from the WAL{}",
        state_.height + 1, machine_->round(), own_log.size(),
        machine_->locked_block_hash().has_value() ? " (locked)" : "");
  }
  Execute(*std::move(started), false);
  spdlog::info(
      "consensus: chain at height {}; validator {} of {}", state_.height,
      machine_->own_index().has_value() ? absl::StrCat(*machine_->own_index())
                                        : std::string("(observer)"),
      validators_.size());
  metrics_.height.Set(static_cast<double>(state_.height));
  absl::MutexLock lock(&mu_);
  ready_ = true;
  height_ = state_.height;
  return true;
}

void TendermintDriver::HandleInbound(const Inbound& in) {
  Bytes block_bytes;
  absl::StatusOr<Message> m =
      tendermint::DecodeMessage(in.payload, &block_bytes);
  if (!m.ok()) {
    metrics_.messages_dropped.Inc();
    metrics_
        .peer_drops[ConsensusMetrics::kDropUndecodable]
                   [ConsensusMetrics::kValidatorPeer]
        .Inc();
    spdlog::debug("dropped a consensus message from {}: {}", in.peer,
                  m.status().ToString());
    return;
  }
  const tendermint::Counters before = machine_->counters();
  Actions actions = machine_->OnMessage(*m, in.received_ms);
  const tendermint::Counters& after = machine_->counters();
  if (after.proposals_accepted > before.proposals_accepted) {
    metrics_.proposals.Inc(static_cast<double>(after.proposals_accepted -
                                               before.proposals_accepted));
    if (const Proposal* p = std::get_if<Proposal>(&*m)) {
      if (p->height == machine_->height())
        heard_from_.insert(p->proposer_index);
    }
  }
  if (after.votes_accepted > before.votes_accepted) {
    metrics_.votes_received.Inc(
        static_cast<double>(after.votes_accepted - before.votes_accepted));
    if (const Vote* v = std::get_if<Vote>(&*m)) {
      if (v->height == machine_->height())
        heard_from_.insert(v->validator_index);
    }
  }
  const bool from_commit = after.commits_accepted > before.commits_accepted;
  // The block of a proposal or Commit the machine took (now, or for the next
  // height) may be decided: keep its bytes for storage before Execute
  // commits it.
  if (!block_bytes.empty() &&
      (after.proposals_accepted > before.proposals_accepted || from_commit ||
       after.future_buffered > before.future_buffered)) {
    const Block* block = nullptr;
    if (const Proposal* p = std::get_if<Proposal>(&*m)) {
      block = &p->block;
    } else if (const auto* c = std::get_if<tendermint::Commit>(&*m)) {
      block = &c->block;
    }
    if (block != nullptr) {
      KeepBlockBytes(block->header.height, BlockHash(suite_, block->header),
                     std::move(block_bytes));
    }
  }
  Execute(std::move(actions), from_commit);
}

void TendermintDriver::KeepBlockBytes(uint64_t height, const Hash32& hash,
                                      Bytes bytes) {
  if (height <= state_.height) return;  // decided already
  if (kept_blocks_.count(hash) > 0) return;
  while (kept_blocks_.size() >= kMaxKeptBlocks) {
    auto oldest = kept_blocks_.begin();
    for (auto it = kept_blocks_.begin(); it != kept_blocks_.end(); ++it) {
      if (it->second.seq < oldest->second.seq) oldest = it;
    }
    kept_blocks_.erase(oldest);
  }
  kept_blocks_[hash] = KeptBlock{height, kept_seq_++, std::move(bytes)};
}

Bytes TendermintDriver::DecidedBlockBytes(const Block& block,
                                          const Hash32& hash) {
  Bytes bytes;
  if (auto it = kept_blocks_.find(hash); it != kept_blocks_.end()) {
    bytes = std::move(it->second.bytes);
  } else {
    bytes = EncodeBlock(block);
    absl::MutexLock lock(&mu_);
    ++encoded_to_commit_;
  }
  // The height is decided: no other block of it or below can be.
  const uint64_t height = block.header.height;
  std::erase_if(kept_blocks_, [height](const auto& kv) {
    return kv.second.height <= height;
  });
  return bytes;
}

void TendermintDriver::ServeSync(const std::string& peer, uint64_t peer_height,
                                 const SyncSnapshot& snap) {
  if (peer_height == 0 || peer_height > snap.height) return;
  uint64_t bytes = 0;
  const uint64_t last =
      std::min<uint64_t>(snap.height, peer_height + options_.sync_batch - 1);
  const uint64_t first_recent =
      snap.commits.empty() ? snap.height + 1 : snap.commits.begin()->first;
  // Heights older than the decisions kept in memory come from storage, many
  // per read (ReadCertifiedBlocks), read when the first of them is due.
  std::deque<tendermint::Commit> stored;
  for (uint64_t h = peer_height; h <= last; ++h) {
    std::shared_ptr<const Bytes> payload;
    if (auto it = snap.commits.find(h); it != snap.commits.end()) {
      payload = it->second;
    } else {
      if (stored.empty()) {
        uint64_t to = last;
        if (first_recent > h) to = std::min(to, first_recent - 1);
        stored = StoredDecisions(h, to, options_.sync_batch_bytes - bytes);
      }
      if (!stored.empty() && stored.front().block.header.height == h) {
        payload = std::make_shared<const Bytes>(
            tendermint::EncodeMessage(stored.front()));
        stored.pop_front();
      }
    }
    if (payload == nullptr) break;
    bytes += payload->size();
    if (net_ != nullptr) {
      if (absl::Status s = net_->Send(
              peer, static_cast<uint16_t>(MsgType::kConsensusCommit), *payload);
          !s.ok()) {
        spdlog::debug("cannot send block {} to {}: {}", h, peer, s.ToString());
        break;
      }
    }
    metrics_.sync_blocks_served.Inc();
    if (bytes >= options_.sync_batch_bytes) break;
  }
}

std::deque<tendermint::Commit> TendermintDriver::StoredDecisions(
    uint64_t from, uint64_t to, uint64_t max_bytes) {
  std::deque<tendermint::Commit> out;
  if (blocks_ == nullptr || from > to || max_bytes == 0) return out;
  const auto limit = static_cast<uint32_t>(
      std::min<uint64_t>(to - from + 1, kMaxCertifiedBlocks));
  absl::StatusOr<std::vector<BlockRecord>> r =
      blocks_->ReadCertifiedBlocks(from, limit, max_bytes);
  if (!r.ok()) {
    metrics_.sync_read_errors.Inc();
    spdlog::debug("block sync: cannot read blocks from {} in storage: {}", from,
                  r.status().ToString());
    return out;
  }
  for (BlockRecord& b : *r) {
    if (b.block.header.height != from + out.size() || !b.cert.has_value()) {
      metrics_.sync_read_errors.Inc();
      spdlog::debug("block sync: storage gave no certified block {}",
                    from + out.size());
      break;
    }
    out.push_back(tendermint::Commit{std::move(b.block), *std::move(b.cert)});
  }
  return out;
}

void TendermintDriver::MaybeStartNextHeight() {
  if (start_next_at_.has_value() && clock_->Now() >= *start_next_at_) {
    StartNextHeight();
  }
}

void TendermintDriver::NoteUntimely() {
  const tendermint::Counters& c = machine_->counters();
  if (c.untimely_early == untimely_early_seen_ &&
      c.untimely_late == untimely_late_seen_) {
    return;
  }
  metrics_.untimely_early.Inc(
      static_cast<double>(c.untimely_early - untimely_early_seen_));
  metrics_.untimely_late.Inc(
      static_cast<double>(c.untimely_late - untimely_late_seen_));
  untimely_early_seen_ = c.untimely_early;
  untimely_late_seen_ = c.untimely_late;
  if (const auto& u = machine_->last_untimely(); u.has_value()) {
    const bool early = u->timeliness == tendermint::Timeliness::kEarly;
    const uint64_t off = early ? u->block_time_ms - u->received_ms
                               : u->received_ms - u->block_time_ms;
    spdlog::warn(
        "proposal of validator {} for height {} round {} is not timely "
        "({}): its block time {} is {} ms {} this node's clock at receipt "
        "({}); prevote nil this round",
        u->proposer, u->height, u->round,
        tendermint::TimelinessName(u->timeliness), u->block_time_ms, off,
        early ? "ahead of" : "behind", u->received_ms);
  }
}

void TendermintDriver::Execute(Actions actions, bool from_commit) {
  NoteUntimely();
  for (Action& action : actions) {
    if (auto* b = std::get_if<BroadcastAction>(&action)) {
      Send(b->message, nullptr);
    } else if (auto* t = std::get_if<ScheduleTimeoutAction>(&action)) {
      timeouts_[{t->height, t->round, t->step}] = clock_->Now() + t->duration;
    } else if (auto* d = std::get_if<DecideAction>(&action)) {
      // The rules the block was built under are its parent's.
      const bool full =
          BlockWasFull(d->block, state_.next_rules.value_or(genesis_.rules));
      if (!Commit(*d)) return;
      if (from_commit) metrics_.sync_blocks_applied.Inc();
      // The wait lets txs gather; a full block says more are waiting.
      const bool wait = !from_commit && !full;
      if (!from_commit && full) metrics_.commit_waits_skipped.Inc();
      start_next_at_ =
          clock_->Now() + (wait ? options_.commit_wait : absl::ZeroDuration());
    } else if (auto* r = std::get_if<tendermint::RequestBlockAction>(&action)) {
      StartBuildingBlock(*r);
    } else if (auto* v =
                   std::get_if<tendermint::ValidateBlockAction>(&action)) {
      StartCheckingBlock(std::move(*v));
    } else if (auto* e = std::get_if<EvidenceAction>(&action)) {
      KeepEvidence(e->evidence);
    }
  }
}

void TendermintDriver::KeepEvidence(const tendermint::Evidence& ev) {
  metrics_.evidence.Inc();
  const uint32_t validator = tendermint::EvidenceValidator(ev);
  const uint64_t height = tendermint::EvidenceHeight(ev);
  // One line per kLogEvery at most: a validator that equivocates in every
  // round must not flood the log.
  const absl::Time now = absl::Now();
  if (now - last_evidence_log_ >= kLogEvery) {
    spdlog::warn(
        "consensus: validator {} equivocated ({}) at height {} round {} "
        "({} more equivocation(s) since the last report)",
        validator, tendermint::EvidenceKind(ev), height,
        tendermint::EvidenceRound(ev), evidence_log_suppressed_);
    last_evidence_log_ = now;
    evidence_log_suppressed_ = 0;
  } else {
    ++evidence_log_suppressed_;
  }
  size_t& kept = evidence_kept_[{validator, height}];
  if (kept >= options_.max_evidence_per_validator_height ||
      pending_evidence_.size() >= kMaxPendingEvidence) {
    metrics_.evidence_dropped.Inc();
    return;
  }
  ++kept;
  EvidenceRecord r;
  r.kind = std::string(tendermint::EvidenceKind(ev));
  r.height = height;
  r.round = tendermint::EvidenceRound(ev);
  r.validator_index = validator;
  r.message = tendermint::EncodeEvidence(ev);
  pending_evidence_.push_back(std::move(r));
}

void TendermintDriver::Send(const Message& m, const std::string* peer) {
  if (net_ == nullptr) return;
  const Bytes payload = tendermint::EncodeMessage(m);
  if (peer != nullptr) {
    if (absl::Status s = net_->Send(*peer, TypeOf(m), payload); !s.ok()) {
      spdlog::debug("cannot send to {}: {}", *peer, s.ToString());
    }
  } else {
    net_->Broadcast(TypeOf(m), payload);
  }
}

bool TendermintDriver::Commit(const DecideAction& d) {
  const Hash32 hash = BlockHash(suite_, d.block.header);
  const Bytes block_bytes = DecidedBlockBytes(d.block, hash);
  const absl::Time start = absl::Now();
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<CommitResult> r =
        ledger_->CommitBlock(block_bytes, d.certificate);
    if (r.ok()) {
      state_ = ChainState{d.height,
                          hash,
                          d.block.header.time_ms,
                          r->state_root,
                          r->receipts_root,
                          std::move(r->next_validators),
                          r->next_rules};
      break;
    }
    metrics_.commit_errors.Inc();
    if (attempt % 50 == 0) {
      spdlog::error("storage did not commit decided block {}: {}", d.height,
                    r.status().ToString());
    }
    // Storage may have it all the same (a lost reply).
    absl::StatusOr<ChainState> st = ledger_->GetChainState();
    if (st.ok() && st->height >= d.height) {
      if (st->height == d.height && st->last_block_hash != hash) {
        spdlog::critical(
            "storage holds another block at height {} than consensus decided",
            d.height);
      }
      state_ = *st;
      break;
    }
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), kStorageRetry);
    if (stopping_) return false;
  }
  const absl::Time now = absl::Now();
  metrics_.commit_duration.Observe(absl::ToDoubleSeconds(now - start));
  if (last_commit_at_.has_value()) {
    metrics_.block_interval.Observe(
        absl::ToDoubleSeconds(now - *last_commit_at_));
  }
  last_commit_at_ = now;
  // One Commit message, from the bytes storage got, for the file and for
  // the peers that lag.
  auto encoded = std::make_shared<const Bytes>(
      tendermint::EncodeCommitMessage(block_bytes, d.certificate));
  recent_commits_[d.height] = encoded;
  if (!options_.last_commit_path.empty()) {
    if (absl::Status s =
            WriteFileAtomic(options_.last_commit_path, AsString(*encoded));
        !s.ok()) {
      spdlog::error("cannot keep the decision of height {}: {}", d.height,
                    s.ToString());
    }
  }
  if (wal_ != nullptr) {
    if (absl::Status s = wal_->Append(WalEndHeight{d.height}); !s.ok()) {
      spdlog::error("consensus WAL: cannot mark height {} ended: {}", d.height,
                    s.ToString());
    }
  }
  while (recent_commits_.size() > options_.kept_commits) {
    recent_commits_.erase(recent_commits_.begin());
  }
  metrics_.blocks_committed.Inc();
  metrics_.block_txs.Observe(static_cast<double>(d.block.txs.size()));
  metrics_.height.Set(static_cast<double>(state_.height));
  metrics_.rounds_per_height.Observe(static_cast<double>(d.certificate.round) +
                                     1);
  if (machine_->own_index().has_value()) {
    heard_from_.insert(*machine_->own_index());
  }
  metrics_.missing_validators.Set(static_cast<double>(
      validators_.size() - std::min(heard_from_.size(), validators_.size())));
  heard_from_.clear();
  spdlog::debug("committed block {} (round {}) with {} txs", d.height,
                d.certificate.round, d.block.txs.size());
  absl::MutexLock lock(&mu_);
  height_ = state_.height;
  ++committed_;
  return true;
}

void TendermintDriver::StartNextHeight() {
  start_next_at_.reset();
  const uint64_t next = state_.height + 1;
  std::erase_if(timeouts_, [next](const auto& kv) {
    return std::get<0>(kv.first) < next;
  });
  AdoptNextValidators();
  absl::StatusOr<Actions> actions = machine_->StartHeight(next);
  if (!actions.ok()) {
    spdlog::error("cannot start height {}: {}", next,
                  actions.status().ToString());
    return;
  }
  Execute(*std::move(actions), false);
}

void TendermintDriver::FireDueTimeouts() {
  const absl::Time now = clock_->Now();
  std::vector<TimeoutKey> due;
  for (auto it = timeouts_.begin(); it != timeouts_.end();) {
    if (it->second <= now) {
      due.push_back(it->first);
      it = timeouts_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [h, r, step] : due) {
    if (h != machine_->height()) continue;
    switch (step) {
      case Step::kPropose:
        metrics_.timeouts_propose.Inc();
        break;
      case Step::kPrevote:
        metrics_.timeouts_prevote.Inc();
        break;
      case Step::kPrecommit:
        metrics_.timeouts_precommit.Inc();
        break;
    }
    Execute(machine_->OnTimeout(h, r, step), false);
  }
}

void TendermintDriver::FlushEvidence() {
  while (!pending_evidence_.empty()) {
    const size_t n =
        std::min<size_t>(pending_evidence_.size(), kMaxListEvidence);
    std::vector<EvidenceRecord> batch(pending_evidence_.begin(),
                                      pending_evidence_.begin() + n);
    if (absl::Status s = ledger_->RecordEvidence(batch); !s.ok()) {
      metrics_.evidence_store_errors.Inc();
      spdlog::warn("cannot keep {} evidence records in storage yet: {}", n,
                   s.ToString());
      return;
    }
    pending_evidence_.erase(pending_evidence_.begin(),
                            pending_evidence_.begin() + n);
  }
}

void TendermintDriver::Gossip() {
  next_gossip_ = clock_->Now() + options_.gossip_interval;
  FlushEvidence();
  // Evidence arrives for this height and the next; older counts can go.
  const uint64_t height = machine_->height();
  std::erase_if(evidence_kept_, [height](const auto& kv) {
    return kv.first.second + 1 < height;
  });
  if (net_ == nullptr) return;
  metrics_.peers_connected.Set(static_cast<double>(net_->PeersConnected()));
  Encoder enc;
  enc.PutVarint(machine_->height());
  net_->Broadcast(static_cast<uint16_t>(MsgType::kConsensusStatus), enc.Take());
  // Relay what this height holds only when it seems stuck (no decision
  // since the last tick): then a message may have been lost.
  if (!start_next_at_.has_value() && machine_->height() == gossip_height_) {
    for (const Message& m : machine_->GossipMessages()) Send(m, nullptr);
  }
  gossip_height_ = machine_->height();
}

void TendermintDriver::PublishState() {
  metrics_.round.Set(static_cast<double>(machine_->round()));
  metrics_.proposer.Set(static_cast<double>(
      machine_->Proposer(machine_->height(), machine_->round())));
  absl::MutexLock lock(&mu_);
  round_ = machine_->round();
}

void TendermintDriver::StartBuildingBlock(
    const tendermint::RequestBlockAction& r) {
  const ChainState parent = state_;
  jobs_->Run([this, r, parent] {
    Answer a;
    a.height = r.height;
    a.round = r.round;
    a.block = BuildBlock(r.height, parent);
    if (a.block->ok()) {
      // Encoded here, off the driver thread, once: storage gets these bytes
      // if the block is decided.
      a.block_bytes = EncodeBlock(**a.block);
      a.block_hash = BlockHash(suite_, (*a.block)->header);
    }
    PostAnswer(std::move(a));
  });
}

void TendermintDriver::StartCheckingBlock(tendermint::ValidateBlockAction v) {
  const ChainState parent = state_;
  auto job = std::make_shared<tendermint::ValidateBlockAction>(std::move(v));
  jobs_->Run([this, job, parent] {
    Answer a;
    a.height = job->height;
    a.block_hash = job->block_hash;
    a.verdict = checker_->Check(job->block, parent);
    PostAnswer(std::move(a));
  });
}

void TendermintDriver::PostAnswer(Answer a) {
  absl::MutexLock lock(&mu_);
  answers_.push_back(std::move(a));
}

void TendermintDriver::HandleAnswer(Answer a) {
  if (a.block.has_value()) {
    if (!a.block_bytes.empty()) {
      KeepBlockBytes(a.height, a.block_hash, std::move(a.block_bytes));
    }
    Execute(machine_->OnBlockToPropose(a.height, a.round, *std::move(a.block)),
            false);
  } else {
    Execute(machine_->OnBlockVerdict(a.height, a.block_hash, a.verdict), false);
  }
}

ReapRequest TendermintDriver::ProposalLimits(const ChainRules& rules) const {
  ReapRequest r;
  r.max_txs = std::min(options_.max_block_txs, rules.max_block_txs);
  r.max_bytes = std::min(options_.max_block_bytes, rules.max_block_bytes);
  return r;
}

bool TendermintDriver::BlockWasFull(const Block& block,
                                    const ChainRules& rules) const {
  // What BuildBlock asks the mempool for; its reap stops at the first tx
  // that would pass either bound.
  const ReapRequest limits = ProposalLimits(rules);
  if (block.txs.size() >= limits.max_txs) return true;
  uint64_t bytes = 0;
  uint64_t largest = 0;
  for (const Bytes& tx : block.txs) {
    bytes += tx.size();
    largest = std::max<uint64_t>(largest, tx.size());
  }
  return !block.txs.empty() && bytes + largest > limits.max_bytes;
}

absl::StatusOr<Block> TendermintDriver::BuildBlock(uint64_t height,
                                                   const ChainState& parent) {
  if (height != parent.height + 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "storage is at height ", parent.height, ", cannot propose ", height));
  }
  ReapRequest req = ProposalLimits(parent.next_rules.value_or(genesis_.rules));
  req.committed_height = parent.height;
  absl::StatusOr<std::vector<Bytes>> txs = mempool_->Reap(req);
  if (!txs.ok()) {
    metrics_.reap_errors.Inc();
    spdlog::warn("cannot reap transactions for a proposal: {}",
                 txs.status().ToString());
    return txs.status();
  }
  Block block = builder_.Build(parent, *std::move(txs), NowMs(clock_));
  if (options_.unsafe_test_only_block_time) {
    block.header.time_ms =
        options_.unsafe_test_only_block_time(parent, block.header.time_ms);
  }
  return block;
}

}  // namespace consortia::consensus
