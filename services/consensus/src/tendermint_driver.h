// Runs the Tendermint state machine of one validator against the world:
// peers over PeerNet, timeouts on a clock, proposals from the mempool,
// decisions into storage, and signing through the write-ahead log.
#ifndef CONSORTIA_CONSENSUS_SRC_TENDERMINT_DRIVER_H_
#define CONSORTIA_CONSENSUS_SRC_TENDERMINT_DRIVER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "block_builder.h"
#include "block_checker.h"
#include "clock.h"
#include "consensus_metrics.h"
#include "consortia/bytes.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "consortia/peer_net.h"
#include "consortia/service_api.h"
#include "consortia/thread_pool.h"
#include "consortia/types.h"
#include "double_sign_guard.h"
#include "tendermint/state_machine.h"
#include "wal.h"

namespace consortia::consensus {

struct TendermintDriverOptions {
  tendermint::TimeoutConfig timeouts;
  // Pause between deciding a height and starting the next one (Tendermint's
  // timeout_commit): lets txs gather and late precommits arrive. Skipped when
  // the height was decided from a peer's Commit (catching up), and when the
  // decided block was full (BlockWasFull): txs are waiting already, and
  // under load the pause would only idle the machine.
  absl::Duration commit_wait = absl::Milliseconds(100);
  // How often the driver tells its peers its height (peers that are ahead
  // answer with decided blocks) and, when the height has not moved since the
  // last tick, re-broadcasts GossipMessages().
  absl::Duration gossip_interval = absl::Milliseconds(500);
  // What this node's proposals carry at most; the genesis chain rules
  // (ChainRules) bound both, and a larger value is cut to them.
  uint32_t max_block_txs = 5000;
  uint64_t max_block_bytes = uint64_t{8} << 20;
  // Threads that verify tx signatures when this validator checks a proposed
  // block itself (its mempool gave no verdict). 0 = one per core.
  size_t verify_threads = 0;
  // The WAL directory (normally <data_dir>/consensus/wal). Required for a
  // validator; unused by an observer.
  std::string wal_dir;
  // Where the last decided block and its certificate are kept (written
  // before the WAL ends the height), so that after a restart this node can
  // still hand that decision to peers that missed it. Empty: not kept.
  std::string last_commit_path;
  // Recently decided blocks kept in memory to answer peers that lag; older
  // ones are read from storage (BlockSource::ReadCertifiedBlocks, many per
  // call).
  size_t kept_commits = 16;
  // Decided blocks sent to a lagging peer per answer, and their byte
  // budget. A peer gets at most one answer per sync_interval (zero:
  // gossip_interval), however many status messages it sends.
  size_t sync_batch = 32;
  uint64_t sync_batch_bytes = uint64_t{16} << 20;
  absl::Duration sync_interval = absl::ZeroDuration();
  // Inbound peer messages (proposals, votes, commits) wait for the driver
  // thread in one queue per peer, served round-robin; a peer's queue holds
  // at most this many messages and bytes, more of its messages are dropped
  // (and counted): consensus recovers them by gossip.
  size_t max_inbound_per_peer = 1000;
  uint64_t max_inbound_bytes_per_peer = uint64_t{64} << 20;
  // Peers (PeerNet ids) that are not validators' nodes: only their status
  // messages are taken (they get block sync); anything else they send is
  // dropped and counted.
  std::set<std::string> observer_peers;
  // Evidence records kept for storage per (validator, height); more are
  // dropped and counted (the first ones already prove the fault).
  size_t max_evidence_per_validator_height = 4;
  // Test-only: a lying proposer. When set, every block this node builds
  // carries the time it returns (given the parent and the honest time)
  // instead of its clock's. Tests use it to play a Byzantine validator
  // that backdates or postdates its blocks; a node must never set it (no
  // flag or config reaches it).
  std::function<uint64_t(const ChainState& parent, uint64_t honest_time_ms)>
      unsafe_test_only_block_time;
};

// Block sync served so far (TendermintDriver::sync_stats).
struct SyncStats {
  uint64_t requests = 0;  // status messages taken from peers
  uint64_t served = 0;    // answers sent (one or more blocks each)
  uint64_t skipped = 0;   // requests merged into a later one of the same
                          // peer (at most one answer per sync_interval)
};

// One validator (or observer) of a multi-validator chain. A single thread
// (the driver thread) owns the StateMachine and does all of its work:
//   - inbound PeerNet messages are queued by the handlers of Handlers() and
//     fed to the machine one at a time;
//   - ScheduleTimeout actions become deadlines on `clock`, checked by the
//     driver thread (a Clock that tests move by hand works: the thread polls
//     it every few ms);
//   - Broadcast actions go to PeerNet::Broadcast (types kConsensusProposal,
//     kConsensusVote, kConsensusCommit of MsgType);
//   - an Evidence action is counted, logged, and kept in storage (batched
//     each gossip_interval, retried while storage fails), where the api
//     lists it;
//   - a Decide action becomes LedgerApi::CommitBlock(block bytes, certificate),
//     retried until storage has the block, then an EndHeight in the WAL and
//     StartHeight(height + 1) on the roots storage returned. The block goes
//     to storage as the bytes it came in: the driver keeps the encoding of
//     each block the machine took from a peer's proposal or Commit, and of
//     the block it built itself, by block hash, until its height ends; the
//     decided one is handed to storage, and to lagging peers inside a Commit
//     message, without being encoded again (TestOnlyBlocksEncodedToCommit
//     counts the decisions whose bytes were not kept, normally none);
//   - a RequestBlockAction is answered from a worker thread: a Reap of the
//     mempool, built into a block with BlockBuilder, handed back to the
//     machine (OnBlockToPropose) by the driver thread;
//   - a ValidateBlockAction is answered from a worker thread by
//     BlockChecker (valid(v): the mempool's CheckProposal, or this node's
//     own checks when the mempool gives no verdict; fails closed), handed
//     back as OnBlockVerdict. The driver thread never waits for either;
//   - votes and proposals are signed through the WAL's DoubleSignGuard, and
//     after a restart the WAL's records of the unfinished height are replayed
//     into the machine, so the validator never signs a conflicting message.
// Block sync: every gossip_interval the driver broadcasts its height
// (kConsensusStatus); a peer that decided that height answers with the
// Commits (block + certificate) from that height on, up to sync_batch, from
// its recent decisions or else from storage. The lagging node verifies each
// certificate in the state machine (OnCommit), hands the block to storage,
// and starts the next height at once, so a batch catches up a batch of
// heights; then it rejoins consensus.
// Answers are served by a sync thread of their own, never the driver thread:
// a status message only records the peer's height (a newer one replaces an
// older one not yet answered), and each peer gets at most one answer per
// sync_interval, within sync_batch_bytes. The driver thread hands its recent
// decisions to the sync thread as an immutable snapshot.
//
// Budgets: each peer's inbound messages wait in its own bounded queue
// (max_inbound_per_peer, max_inbound_bytes_per_peer), and the driver thread
// takes them round-robin, so a flooding peer fills only its own queue.
// Observers (observer_peers) get sync, never a share of those queues.
//
// Thread-safe: every public method may be called from any thread; the
// handlers run on the PeerNet's thread and only queue.
class TendermintDriver {
 public:
  // FailedPrecondition when the genesis has no validators; InvalidArgument
  // when the key is not of the genesis suite or does not sign; the WAL's
  // errors (wal_dir missing for a validator, locked by another process,
  // damaged). A key that is not a genesis validator runs as an observer
  // (never signs). The pointers must outlive the driver.
  // `check_mempool` is the mempool that judges proposed blocks (normally a
  // client of the same mempool with a shorter deadline, so that a mempool
  // that does not answer is replaced by this node's own checks within the
  // round); nullptr: `mempool`.
  static absl::StatusOr<std::unique_ptr<TendermintDriver>> Create(
      const TendermintDriverOptions& options, const Genesis& genesis,
      const CryptoSuite& suite, const NodeKey& key, MempoolApi* mempool,
      LedgerApi* ledger, BlockSource* blocks, const Clock* clock,
      ConsensusMetrics metrics = {}, MempoolApi* check_mempool = nullptr);

  // Stops and joins the driver thread.
  ~TendermintDriver();
  TendermintDriver(const TendermintDriver&) = delete;
  TendermintDriver& operator=(const TendermintDriver&) = delete;

  // The PeerNet handlers of the consensus message types, for
  // PeerNetOptions::handlers. Messages that arrive before Start wait.
  std::map<uint16_t, PeerHandler> Handlers();

  // Starts the driver thread; messages go out over `net` (nullptr: a
  // network of one, nothing is sent). `net` must outlive the driver. Once.
  void Start(PeerNet* net);
  // Stops and joins the thread. Idempotent.
  void Stop();

  // True once the chain state was read from storage.
  bool Ready() const;
  // The last height this node committed.
  uint64_t height() const;
  // The round of the height in progress.
  uint32_t round() const;
  // The index of this node in the validator set of the height in progress
  // (nullopt: observer).
  std::optional<uint32_t> own_index() const;
  // Blocks this driver committed since it started.
  uint64_t blocks_committed() const;
  // Block sync served to peers since start.
  SyncStats sync_stats() const;
  // Test hook: decided blocks whose encoding the driver had not kept (a
  // proposal restored from the WAL, or one more than kMaxKeptBlocks), so it
  // encoded them to commit them.
  uint64_t TestOnlyBlocksEncodedToCommit() const;

 private:
  // One inbound peer message.
  struct Inbound {
    std::string peer;
    uint16_t type = 0;
    Bytes payload;
    uint64_t received_ms = 0;  // the clock (unix ms) when it was queued
  };
  // A worker's answer to a RequestBlockAction (block set, with its hash and
  // encoding when built) or a ValidateBlockAction (verdict set).
  struct Answer {
    uint64_t height = 0;
    uint32_t round = 0;
    std::optional<absl::StatusOr<Block>> block;
    Bytes block_bytes;
    Hash32 block_hash{};
    tendermint::BlockVerdict verdict = tendermint::BlockVerdict::kUndecided;
  };
  // The encoding of a block the machine holds (KeepBlockBytes).
  struct KeptBlock {
    uint64_t height = 0;
    uint64_t seq = 0;  // order kept, for eviction
    Bytes bytes;
  };
  // One peer's inbound messages.
  struct PeerInbox {
    std::deque<Inbound> queue;
    uint64_t bytes = 0;
  };
  // Recent decisions as the sync thread sees them: encoded Commit messages
  // by height, immutable once published.
  struct SyncSnapshot {
    uint64_t height = 0;  // the last height this node committed
    std::map<uint64_t, std::shared_ptr<const Bytes>> commits;
  };
  // A pending timeout.
  using TimeoutKey = std::tuple<uint64_t, uint32_t, tendermint::Step>;

  TendermintDriver(const TendermintDriverOptions& options,
                   const Genesis& genesis, const CryptoSuite& suite,
                   const NodeKey& key, MempoolApi* mempool, LedgerApi* ledger,
                   BlockSource* blocks, const Clock* clock,
                   ConsensusMetrics metrics, std::unique_ptr<Wal> wal,
                   MempoolApi* check_mempool);

  // Makes `validators` and `rules` those of the machine: a new machine (for
  // the next StartHeight) when either differs from the current one, with
  // this node's index in the set. Driver thread (or Create).
  absl::Status AdoptValidators(const std::vector<Validator>& validators,
                               const ChainRules& rules);
  // AdoptValidators with the set and the rules storage named with the last
  // commit (state_.next_validators, state_.next_rules); an error is logged
  // and counted, and the set and rules stay.
  void AdoptNextValidators();

  void Loop();
  // Reads the chain state, starts the machine and replays the WAL. False
  // when stopping first.
  bool Boot();
  void HandleInbound(const Inbound& in);
  // Takes up to `per_peer` messages of each peer with a non-empty queue, in
  // round-robin order. Driver thread.
  std::vector<Inbound> TakeInboundRound(size_t per_peer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The sync thread: answers the peers' status messages.
  void SyncLoop();
  // Answers a peer that works on peer_height (block sync), from `snap` or
  // storage. Sync thread.
  void ServeSync(const std::string& peer, uint64_t peer_height,
                 const SyncSnapshot& snap);
  // The decisions of heights from..to (or fewer, up to about max_bytes of
  // blocks) read from storage in one ReadCertifiedBlocks; stops before the
  // first height storage cannot give with a certificate. Sync thread.
  std::deque<tendermint::Commit> StoredDecisions(uint64_t from, uint64_t to,
                                                 uint64_t max_bytes);
  // Hands recent_commits_ to the sync thread when the height moved. Driver
  // thread.
  void PublishSyncSnapshot();
  // Keeps an evidence record for storage unless its validator and height
  // already have max_evidence_per_validator_height. Driver thread.
  void KeepEvidence(const tendermint::Evidence& ev);
  // Keeps `bytes`, the encoding of the block with this hash at `height`, for
  // Commit. At most kMaxKeptBlocks; the oldest goes first. Driver thread.
  void KeepBlockBytes(uint64_t height, const Hash32& hash, Bytes bytes);
  // The encoding of the decided block `block` (whose hash is `hash`): the
  // kept one, or else EncodeBlock (counted). Driver thread.
  Bytes DecidedBlockBytes(const Block& block, const Hash32& hash);
  bool SyncHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  void MaybeStartNextHeight();
  void Execute(tendermint::Actions actions, bool from_commit);
  // Exports the machine's new untimely-proposal counts as metrics and logs
  // the last one (called before every Execute).
  void NoteUntimely();
  void Send(const tendermint::Message& m, const std::string* peer);
  // Persists a decision; false when stopping before storage took it.
  bool Commit(const tendermint::DecideAction& d);
  void StartNextHeight();
  void FireDueTimeouts();
  void Gossip();
  // Hands the evidence found so far to storage (LedgerApi::RecordEvidence).
  void FlushEvidence();
  void PublishState();
  bool Stopping() const;
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Start the answer to a request of the machine on a worker.
  void StartBuildingBlock(const tendermint::RequestBlockAction& r);
  void StartCheckingBlock(tendermint::ValidateBlockAction v);
  void HandleAnswer(Answer a);
  // The block to propose at `height` on `parent` (a worker's job).
  absl::StatusOr<Block> BuildBlock(uint64_t height, const ChainState& parent);
  // The bounds of a proposal under `rules`: this node's options cut to
  // them (committed_height left 0).
  ReapRequest ProposalLimits(const ChainRules& rules) const;
  // Whether a block built under `rules` held as many txs, or bytes, as
  // BuildBlock would have reaped: its proposer's pool had more. Then the
  // next height starts without the commit wait.
  bool BlockWasFull(const Block& block, const ChainRules& rules) const;
  void PostAnswer(Answer a);

  const TendermintDriverOptions options_;
  const Genesis genesis_;
  const CryptoSuite& suite_;
  const Bytes key_public_;  // this node's signing key
  MempoolApi* const mempool_;
  LedgerApi* const ledger_;
  BlockSource* const blocks_;
  const Clock* const clock_;
  ConsensusMetrics metrics_;
  const BlockBuilder builder_;
  std::unique_ptr<BlockChecker> checker_;
  const std::unique_ptr<Wal> wal_;
  // Signs for the machine through wal_ (validators only; nullptr for an
  // observer, which never signs).
  std::unique_ptr<DoubleSignGuard> signer_;
  // Rebuilt (AdoptValidators) when the validator set or the rules change.
  std::unique_ptr<tendermint::StateMachine> machine_;
  PeerNet* net_ = nullptr;
  // The set machine_ was built for (driver thread).
  std::vector<Validator> validators_;
  ChainRules rules_;  // the machine's (AdoptValidators)

  // Driver thread only.
  ChainState state_;
  std::map<TimeoutKey, absl::Time> timeouts_;
  std::optional<absl::Time> start_next_at_;
  absl::Time next_gossip_;
  uint64_t gossip_height_ = 0;
  // Recent decisions as encoded Commit messages (shared with the sync
  // thread's snapshots), by height.
  std::map<uint64_t, std::shared_ptr<const Bytes>> recent_commits_;
  // Encodings of the blocks of this height's (and the next's) proposals and
  // commits, by block hash (KeepBlockBytes).
  std::map<Hash32, KeptBlock> kept_blocks_;
  uint64_t kept_seq_ = 0;
  std::set<uint32_t> heard_from_;  // validators heard at this height
  // The machine's untimely-proposal counters already exported as metrics.
  uint64_t untimely_early_seen_ = 0;
  uint64_t untimely_late_seen_ = 0;
  std::optional<absl::Time> last_commit_at_;
  std::deque<EvidenceRecord> pending_evidence_;  // not yet in storage
  // Evidence records kept per (validator, height), for the cap.
  std::map<std::pair<uint32_t, uint64_t>, size_t> evidence_kept_;
  absl::Time last_evidence_log_ = absl::InfinitePast();
  uint64_t evidence_log_suppressed_ = 0;
  std::optional<uint64_t> published_height_;  // of the last SyncSnapshot
  std::string next_inbound_peer_;             // round-robin position

  mutable absl::Mutex mu_;
  std::map<std::string, PeerInbox> inbound_ ABSL_GUARDED_BY(mu_);
  size_t inbound_messages_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t inbound_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Answer> answers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<uint32_t> own_index_ ABSL_GUARDED_BY(mu_);
  uint64_t height_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t round_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t committed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t encoded_to_commit_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;

  // Block sync, between the handlers, the driver thread and the sync
  // thread.
  mutable absl::Mutex sync_mu_;
  std::shared_ptr<const SyncSnapshot> sync_snapshot_ ABSL_GUARDED_BY(sync_mu_);
  // The latest height each peer asked for and not yet answered.
  std::map<std::string, uint64_t> sync_pending_ ABSL_GUARDED_BY(sync_mu_);
  std::map<std::string, absl::Time> sync_last_served_ ABSL_GUARDED_BY(sync_mu_);
  SyncStats sync_stats_ ABSL_GUARDED_BY(sync_mu_);
  bool sync_stopping_ ABSL_GUARDED_BY(sync_mu_) = false;
  std::thread sync_thread_;

  // Declared last, destroyed first: their jobs use the members above.
  // verify_pool_ verifies signatures for the checker; jobs_ runs the block
  // building and checking jobs (two, so a slow check never delays our own
  // proposal).
  std::unique_ptr<ThreadPool> verify_pool_;
  std::unique_ptr<ThreadPool> jobs_;
};

}  // namespace consortia::consensus

#endif  // CONSORTIA_CONSENSUS_SRC_TENDERMINT_DRIVER_H_
