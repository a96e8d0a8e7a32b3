#include "sim/simulation.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "consortia/merkle.h"
#include "sim/sim_crypto.h"

namespace consortia::consensus::tendermint::sim {
namespace {

constexpr char kChainId[] = "simnet";
const Hash32 kNil{};

// Deterministic given the seed (no std::*_distribution, whose results may
// differ between standard libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  // Uniform in [lo, hi].
  int64_t Uniform(int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    return lo +
           static_cast<int64_t>(gen_() % static_cast<uint64_t>(hi - lo + 1));
  }
  double Unit() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Unit() < p; }
  Hash32 RandomHash() {
    Hash32 h;
    for (size_t i = 0; i < h.size(); i += 8) {
      const uint64_t x = gen_();
      for (size_t j = 0; j < 8; ++j)
        h[i + j] = static_cast<uint8_t>(x >> (8 * j));
    }
    return h;
  }

 private:
  std::mt19937_64 gen_;
};

struct Packet {
  enum class Kind { kConsensus, kStatus };
  Kind kind = Kind::kConsensus;
  Bytes bytes;          // EncodeMessage, for kConsensus
  uint64_t height = 0;  // the sender's height, for kStatus
};
using PacketPtr = std::shared_ptr<const Packet>;

enum class EventKind {
  kDeliver,
  kTimeout,
  kGossip,
  kCrash,
  kRestartDown,
  kRestartUp,
  kGst,
  kBlockReady,  // the node's services answer a RequestBlockAction
  kVerdict,     // ... and a ValidateBlockAction
};

struct Event {
  int64_t time = 0;
  uint64_t seq = 0;
  EventKind kind = EventKind::kDeliver;
  int node = 0;
  int from = 0;
  PacketPtr packet;
  uint64_t height = 0;
  uint32_t round = 0;
  Step step = Step::kPropose;
  // kVerdict: the block to judge; kBlockReady, kVerdict: the machine that
  // asked (an answer to an earlier incarnation is dropped).
  std::shared_ptr<const ValidateBlockAction> validate;
  uint64_t incarnation = 0;
};

struct Later {
  bool operator()(const Event& a, const Event& b) const {
    return a.time != b.time ? a.time > b.time : a.seq > b.seq;
  }
};

struct Decided {
  Block block;
  CommitCertificate certificate;
  Hash32 hash{};
};

// One endpoint: a validator instance (twins are two endpoints, one index).
struct Node {
  int id = 0;
  uint32_t index = 0;
  Fault fault = Fault::kHonest;
  std::unique_ptr<KeySigner> signer;
  std::unique_ptr<StateMachine> sm;
  uint64_t incarnation = 0;  // machines made for it so far
  std::map<uint64_t, Decided> decided;
  // What it signed at its current height: its write-ahead log.
  std::vector<Message> wal;
  int restarts_pending = 0;  // down, and a kRestartUp will bring it back
  bool crashed = false;
  std::vector<bool> reach;  // endpoints it exchanges messages with
  uint64_t blocks_built = 0;
  int64_t clock_skew = 0;  // SimConfig::block_time
  // Equivocator: the second block it proposed per (height, round).
  std::map<std::pair<uint64_t, uint32_t>, Hash32> alt_hash;

  uint64_t DecidedHeight() const {
    return decided.empty() ? 0 : decided.rbegin()->first;
  }
};

std::string Hex8(const Hash32& h) { return ToHex(ByteView(h.data(), 4)); }

class Simulation {
 public:
  explicit Simulation(const SimConfig& config)
      : cfg_(config),
        suite_(config.real_crypto
                   ? static_cast<const CryptoSuite&>(Ed25519Sha256())
                   : SimSuite()),
        rng_(config.seed) {}

  SimResult Run();

 private:
  bool IsHonest(const Node& n) const { return n.fault == Fault::kHonest; }
  void Setup();
  void Fail(std::string what);
  void Push(Event e);
  void Send(int from, int to, const PacketPtr& p);
  void SendToAll(int from, const PacketPtr& p);
  PacketPtr Encode(const Message& m) const;
  bool Partitioned(int a, int b) const;
  void Apply(Node& n, Actions actions);
  void OnBroadcast(Node& n, const Message& m);
  void Equivocate(Node& n, const Message& m);
  void OnDecide(Node& n, const DecideAction& d);
  void OnEvidence(Node& n, const Evidence& e);
  void Deliver(Node& n, int from, const Packet& p);
  void Gossip(Node& n);
  absl::StatusOr<Block> BuildBlock(Node& n, uint64_t height, uint32_t round);
  bool ValidBlock(const Node& n, const Block& b) const;
  // The delay of an answer of the node's own services.
  int64_t AnswerDelay();
  void AnswerBlock(Node& n, const Event& e);
  void AnswerVerdict(Node& n, const Event& e);
  // A fresh state machine for n (at height 0).
  bool MakeMachine(Node& n);
  void Restart(Node& n);
  bool LivenessReached() const;
  template <typename... Args>
  void Trace(const absl::FormatSpec<Args...>& format, const Args&... args);

  const SimConfig cfg_;
  const CryptoSuite& suite_;
  Rng rng_;
  Genesis genesis_;
  std::vector<KeyPair> keys_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<bool> faulty_index_;

  struct Window {
    int64_t start = 0;
    int64_t end = 0;
    std::vector<uint8_t> side;
  };
  std::vector<Window> windows_;

  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  uint64_t seq_ = 0;
  int64_t now_ = 0;
  bool after_gst_ = false;
  uint64_t liveness_target_ = 0;

  std::map<uint64_t, Hash32> agreed_;  // honest decisions by height
  std::set<Hash32> proposed_;          // every block anyone proposed
  std::set<Hash32> lying_time_;        // blocks a time liar built
  // SimConfig::block_time: node n's clock (unix ms, far from 0).
  static constexpr int64_t kEpochMs = 1'000'000'000;
  uint64_t ClockOf(const Node& n) const {
    return static_cast<uint64_t>(kEpochMs + now_ + n.clock_skew);
  }
  SimResult result_;
};

template <typename... Args>
void Simulation::Trace(const absl::FormatSpec<Args...>& format,
                       const Args&... args) {
  if (!cfg_.trace) return;
  std::fprintf(stderr, "[%7lld] %s\n", static_cast<long long>(now_),
               absl::StrFormat(format, args...).c_str());
}

void Simulation::Fail(std::string what) {
  if (!result_.ok) return;
  result_.ok = false;
  result_.violation = absl::StrCat("t=", now_, "ms: ", what);
  Trace("VIOLATION %s", what);
}

void Simulation::Push(Event e) {
  e.seq = seq_++;
  queue_.push(std::move(e));
}

void Simulation::Setup() {
  const int n = cfg_.validators;
  genesis_.chain_id = kChainId;
  genesis_.crypto_suite = std::string(suite_.name());
  faulty_index_.assign(n, false);
  for (int i = 0; i < n; ++i) {
    const Hash32 seed = suite_.Hash(AsBytes(absl::StrCat("validator-", i)));
    keys_.push_back(*suite_.KeyFromSeed(seed));
    genesis_.validators.push_back(
        Validator{absl::StrCat("v", i), keys_.back().public_key, 1});
    const Fault f = i < static_cast<int>(cfg_.faults.size()) ? cfg_.faults[i]
                                                             : Fault::kHonest;
    faulty_index_[i] = f != Fault::kHonest;
    for (int copy = 0; copy < (f == Fault::kTwins ? 2 : 1); ++copy) {
      auto node = std::make_unique<Node>();
      node->id = static_cast<int>(nodes_.size());
      node->index = static_cast<uint32_t>(i);
      node->fault = f;
      nodes_.push_back(std::move(node));
    }
  }
  const int endpoints = static_cast<int>(nodes_.size());
  for (auto& node : nodes_) node->reach.assign(endpoints, true);
  if (cfg_.block_time) {
    for (auto& node : nodes_) {
      node->clock_skew = rng_.Uniform(-cfg_.clock_skew_ms, cfg_.clock_skew_ms);
    }
  }
  // Twins: each copy talks to part of the network, never to the other copy.
  for (int a = 0; a + 1 < endpoints; ++a) {
    Node& t0 = *nodes_[a];
    Node& t1 = *nodes_[a + 1];
    if (t0.fault != Fault::kTwins || t1.index != t0.index) continue;
    t0.reach[t1.id] = t1.reach[t0.id] = false;
    for (int e = 0; e < endpoints; ++e) {
      if (e == t0.id || e == t1.id) continue;
      const int64_t pick = rng_.Uniform(0, 9);
      const bool to0 = pick < 4 || pick >= 8;
      const bool to1 = pick >= 4;
      t0.reach[e] = nodes_[e]->reach[t0.id] = to0;
      t1.reach[e] = nodes_[e]->reach[t1.id] = to1;
    }
  }

  for (auto& node_ptr : nodes_) {
    if (!MakeMachine(*node_ptr)) return;
  }

  for (int w = 0; w < cfg_.partitions && cfg_.gst_ms > 0; ++w) {
    Window win;
    win.start = rng_.Uniform(0, cfg_.gst_ms - 1);
    win.end = std::min(cfg_.gst_ms, win.start + rng_.Uniform(300, 6000));
    win.side.resize(endpoints);
    if (rng_.Chance(0.3)) {  // isolate one endpoint
      const int64_t lone = rng_.Uniform(0, endpoints - 1);
      for (int e = 0; e < endpoints; ++e) win.side[e] = e == lone ? 1 : 0;
    } else {
      for (int e = 0; e < endpoints; ++e) win.side[e] = rng_.Chance(0.5);
    }
    windows_.push_back(std::move(win));
  }

  for (auto& node : nodes_) {
    if (node->fault == Fault::kCrash) {
      Event e;
      e.time = rng_.Uniform(0, std::max<int64_t>(cfg_.gst_ms, 1));
      e.kind = EventKind::kCrash;
      e.node = node->id;
      Push(std::move(e));
    }
    Event g;
    g.time = rng_.Uniform(1, cfg_.gossip_ms);
    g.kind = EventKind::kGossip;
    g.node = node->id;
    Push(std::move(g));
  }
  std::vector<int> honest;
  for (const auto& node : nodes_) {
    if (IsHonest(*node)) honest.push_back(node->id);
  }
  for (int k = 0; k < cfg_.restarts && !honest.empty(); ++k) {
    Event down;
    down.time = rng_.Uniform(0, std::max<int64_t>(cfg_.gst_ms, 1));
    down.kind = EventKind::kRestartDown;
    down.node =
        honest[rng_.Uniform(0, static_cast<int64_t>(honest.size()) - 1)];
    Event up = down;
    up.time = down.time + rng_.Uniform(50, 3000);
    up.kind = EventKind::kRestartUp;
    Push(std::move(down));
    Push(std::move(up));
  }
  Event gst;
  gst.time = cfg_.gst_ms;
  gst.kind = EventKind::kGst;
  Push(std::move(gst));
}

bool Simulation::MakeMachine(Node& n) {
  if (n.signer == nullptr) {
    absl::StatusOr<std::unique_ptr<KeySigner>> signer = KeySigner::Create(
        suite_, keys_[n.index].secret_key, keys_[n.index].public_key);
    if (!signer.ok()) {
      Fail(absl::StrCat("setup: ", signer.status().ToString()));
      return false;
    }
    n.signer = *std::move(signer);
  }
  StateMachineOptions options;
  options.timeouts = cfg_.timeouts;
  if (IsHonest(n)) options.unsafe_test_only = cfg_.unsafe;
  absl::StatusOr<std::unique_ptr<StateMachine>> sm =
      StateMachine::Create(genesis_, suite_, n.index, n.signer.get(), options);
  if (!sm.ok()) {
    Fail(absl::StrCat("setup: ", sm.status().ToString()));
    return false;
  }
  n.sm = *std::move(sm);
  ++n.incarnation;
  return true;
}

// What the consensus service does after a crash: a new machine at the height
// after its last decided block, its logged messages replayed into it and
// sent again, then the height's own start actions.
void Simulation::Restart(Node& n) {
  if (!MakeMachine(n)) return;
  const uint64_t height = n.DecidedHeight() + 1;
  if (cfg_.restart_without_wal) n.wal.clear();
  Trace("node %d restarts at height %d, replaying %d signed messages", n.id,
        height, n.wal.size());
  absl::StatusOr<Actions> started = n.sm->StartHeight(height, n.wal);
  if (!started.ok()) {
    Fail(absl::StrCat("node ", n.id, ": ", started.status().ToString()));
    return;
  }
  for (const Message& m : n.wal) SendToAll(n.id, Encode(m));
  Apply(n, *std::move(started));
}

bool Simulation::Partitioned(int a, int b) const {
  for (const Window& w : windows_) {
    if (now_ >= w.start && now_ < w.end && w.side[a] != w.side[b]) return true;
  }
  return false;
}

void Simulation::Send(int from, int to, const PacketPtr& p) {
  if (from == to || !nodes_[from]->reach[to]) return;
  const bool chaos = !after_gst_;
  if (chaos && (Partitioned(from, to) || rng_.Chance(cfg_.drop))) {
    ++result_.dropped;
    return;
  }
  const int copies = chaos && rng_.Chance(cfg_.duplicate) ? 2 : 1;
  for (int c = 0; c < copies; ++c) {
    Event e;
    e.time = now_ + rng_.Uniform(1, chaos ? cfg_.max_delay_ms : cfg_.delta_ms);
    e.kind = EventKind::kDeliver;
    e.node = to;
    e.from = from;
    e.packet = p;
    Push(std::move(e));
  }
}

void Simulation::SendToAll(int from, const PacketPtr& p) {
  for (size_t to = 0; to < nodes_.size(); ++to) {
    Send(from, static_cast<int>(to), p);
  }
}

PacketPtr Simulation::Encode(const Message& m) const {
  auto p = std::make_shared<Packet>();
  p->kind = Packet::Kind::kConsensus;
  p->bytes = EncodeMessage(m);
  return p;
}

absl::StatusOr<Block> Simulation::BuildBlock(Node& n, uint64_t height,
                                             uint32_t round) {
  Block b;
  b.header.chain_id = kChainId;
  b.header.height = height;
  b.header.time_ms = cfg_.block_time ? ClockOf(n) : static_cast<uint64_t>(now_);
  const bool lying_time = cfg_.block_time && n.fault == Fault::kTimeLiar;
  if (lying_time) {
    b.header.time_ms = n.blocks_built % 2 == 0 ? b.header.time_ms - 60'000
                                               : b.header.time_ms + 30'000;
    ++result_.time_liar_proposals;
  }
  b.header.proposer = keys_[n.index].public_key;
  if (height > 1) {
    auto parent = n.decided.find(height - 1);
    if (parent == n.decided.end()) {
      return absl::FailedPreconditionError("parent not decided");
    }
    b.header.prev_hash = parent->second.hash;
  }
  const int64_t txs = rng_.Uniform(1, 3);
  for (int64_t i = 0; i < txs; ++i) {
    b.txs.push_back(ToBytes(absl::StrCat("tx/", height, "/", round, "/", n.id,
                                         "/", n.blocks_built, "/", i)));
  }
  if (n.fault == Fault::kLiar) {
    // A tx "signed" by another member: the liar's mempool let it in.
    b.txs.push_back(ToBytes(
        absl::StrCat("forged/", height, "/", round, "/", n.blocks_built)));
    ++result_.liar_proposals;
  }
  ++n.blocks_built;
  b.header.tx_root = MerkleRoot(suite_, b.txs);
  if (lying_time) lying_time_.insert(BlockHash(suite_, b.header));
  return b;
}

bool Simulation::ValidBlock(const Node& n, const Block& b) const {
  const uint64_t h = b.header.height;
  Hash32 parent{};
  if (h > 1) {
    auto it = n.decided.find(h - 1);
    if (it == n.decided.end()) return false;
    parent = it->second.hash;
  }
  if (b.header.prev_hash != parent || b.txs.empty()) return false;
  for (const Bytes& tx : b.txs) {
    if (!AsString(tx).starts_with("tx/")) return false;
  }
  return true;
}

int64_t Simulation::AnswerDelay() {
  return rng_.Uniform(0, after_gst_
                             ? std::min(cfg_.answer_delay_ms, cfg_.delta_ms)
                             : cfg_.answer_delay_ms);
}

void Simulation::AnswerBlock(Node& n, const Event& e) {
  if (n.crashed || e.incarnation != n.incarnation) return;
  Apply(n, n.sm->OnBlockToPropose(e.height, e.round,
                                  BuildBlock(n, e.height, e.round)));
}

void Simulation::AnswerVerdict(Node& n, const Event& e) {
  if (n.crashed || e.incarnation != n.incarnation) return;
  const ValidateBlockAction& v = *e.validate;
  BlockVerdict verdict = BlockVerdict::kValid;
  if (n.fault == Fault::kLiar) {
    verdict = BlockVerdict::kValid;  // checks nothing
  } else if (!after_gst_ && rng_.Chance(cfg_.undecided)) {
    ++result_.undecided_answers;
    verdict =
        cfg_.unsafe_fail_open ? BlockVerdict::kValid : BlockVerdict::kUndecided;
  } else if (!ValidBlock(n, v.block)) {
    ++result_.invalid_verdicts;
    verdict = BlockVerdict::kInvalid;
  }
  Apply(n, n.sm->OnBlockVerdict(v.height, v.block_hash, verdict));
}

void Simulation::Apply(Node& n, Actions actions) {
  std::deque<Action> work(std::make_move_iterator(actions.begin()),
                          std::make_move_iterator(actions.end()));
  while (!work.empty() && result_.ok) {
    Action a = std::move(work.front());
    work.pop_front();
    if (auto* b = std::get_if<BroadcastAction>(&a)) {
      OnBroadcast(n, b->message);
    } else if (auto* t = std::get_if<ScheduleTimeoutAction>(&a)) {
      Event e;
      e.time =
          now_ + std::max<int64_t>(1, absl::ToInt64Milliseconds(t->duration));
      e.kind = EventKind::kTimeout;
      e.node = n.id;
      e.height = t->height;
      e.round = t->round;
      e.step = t->step;
      Push(std::move(e));
    } else if (auto* d = std::get_if<DecideAction>(&a)) {
      OnDecide(n, *d);
      if (!result_.ok) return;
      n.wal.clear();  // the height is over (WalEndHeight)
      absl::StatusOr<Actions> next = n.sm->StartHeight(d->height + 1);
      if (!next.ok()) {
        Fail(absl::StrCat("node ", n.id, ": ", next.status().ToString()));
        return;
      }
      for (Action& x : *next) work.push_back(std::move(x));
    } else if (auto* ev = std::get_if<EvidenceAction>(&a)) {
      OnEvidence(n, ev->evidence);
    } else if (auto* r = std::get_if<RequestBlockAction>(&a)) {
      Event e;
      e.time = now_ + AnswerDelay();
      e.kind = EventKind::kBlockReady;
      e.node = n.id;
      e.height = r->height;
      e.round = r->round;
      e.incarnation = n.incarnation;
      Push(std::move(e));
    } else if (auto* v = std::get_if<ValidateBlockAction>(&a)) {
      Event e;
      e.time = now_ + AnswerDelay();
      e.kind = EventKind::kVerdict;
      e.node = n.id;
      e.validate = std::make_shared<const ValidateBlockAction>(std::move(*v));
      e.incarnation = n.incarnation;
      Push(std::move(e));
    }
  }
  if (IsHonest(n)) {
    result_.max_round = std::max<uint64_t>(result_.max_round, n.sm->round());
  }
}

void Simulation::OnBroadcast(Node& n, const Message& m) {
  if (const auto* p = std::get_if<Proposal>(&m)) {
    const Hash32 hash = BlockHash(suite_, p->block.header);
    proposed_.insert(hash);
    if (IsHonest(n) && p->valid_round != kNoRound) ++result_.reproposals;
    Trace("node %d (v%d) proposes h=%d r=%d vr=%d %s", n.id, n.index, p->height,
          p->round, p->valid_round, Hex8(hash));
  } else if (const auto* v = std::get_if<Vote>(&m)) {
    Trace("node %d (v%d) %s h=%d r=%d %s", n.id, n.index,
          v->type == VoteType::kPrevote ? "prevotes" : "precommits", v->height,
          v->round, IsZero(v->block_hash) ? "nil" : Hex8(v->block_hash));
  }
  if (n.fault == Fault::kEquivocate && !std::holds_alternative<Commit>(m)) {
    Equivocate(n, m);
    return;
  }
  if (const auto* v = std::get_if<Vote>(&m); v != nullptr &&
                                             v->type == VoteType::kPrecommit &&
                                             !IsZero(v->block_hash)) {
    // What the lock rests on goes to the log first (WalPolka).
    for (const Vote& pv : n.sm->PrevotesFor(v->round, v->block_hash)) {
      if (pv.validator_index != n.index) n.wal.push_back(pv);
    }
    std::optional<Proposal> p = n.sm->ProposalOf(v->block_hash);
    if (p.has_value() && p->proposer_index != n.index) n.wal.push_back(*p);
  }
  if (!std::holds_alternative<Commit>(m)) n.wal.push_back(m);
  SendToAll(n.id, Encode(m));
}

void Simulation::Equivocate(Node& n, const Message& m) {
  const Bytes& secret = keys_[n.index].secret_key;
  Message alt;
  if (const auto* p = std::get_if<Proposal>(&m)) {
    Proposal p2 = *p;
    const bool invalid = rng_.Chance(0.2);
    p2.block.txs.push_back(ToBytes(absl::StrCat(
        invalid ? "bad/" : "tx/", "equivocation/", n.blocks_built++)));
    p2.block.header.tx_root = MerkleRoot(suite_, p2.block.txs);
    const Hash32 h2 = BlockHash(suite_, p2.block.header);
    p2.signature =
        *suite_.Sign(secret, ProposalSignBytes(genesis_.chain_id, p2, h2));
    proposed_.insert(h2);
    n.alt_hash[{p->height, p->round}] = h2;
    Trace("node %d (v%d) equivocates: second proposal %s", n.id, n.index,
          Hex8(h2));
    alt = p2;
  } else {
    const Vote& v = std::get<Vote>(m);
    Vote v2 = v;
    auto own = n.alt_hash.find({v.height, v.round});
    if (own != n.alt_hash.end() && own->second != v.block_hash) {
      v2.block_hash = own->second;
    } else if (!IsZero(v.block_hash) && rng_.Chance(0.5)) {
      v2.block_hash = kNil;
    } else {
      v2.block_hash = rng_.RandomHash();
      for (const Message& g : n.sm->GossipMessages()) {
        const auto* gp = std::get_if<Proposal>(&g);
        if (gp == nullptr || gp->round != v.round) continue;
        const Hash32 h = BlockHash(suite_, gp->block.header);
        if (h != v.block_hash) v2.block_hash = h;
      }
    }
    v2.signature = *suite_.Sign(secret, VoteSignBytes(genesis_.chain_id, v2));
    alt = v2;
    if (rng_.Chance(0.1)) {  // a vote for a later round, to everyone
      Vote ahead = v;
      ahead.round = v.round + static_cast<uint32_t>(rng_.Uniform(1, 3));
      ahead.block_hash = rng_.RandomHash();
      ahead.signature =
          *suite_.Sign(secret, VoteSignBytes(genesis_.chain_id, ahead));
      SendToAll(n.id, Encode(ahead));
    }
  }
  const PacketPtr first = Encode(m);
  const PacketPtr second = Encode(alt);
  for (size_t to = 0; to < nodes_.size(); ++to) {
    const int64_t pick = rng_.Uniform(0, 9);
    if (pick < 4 || pick >= 8) Send(n.id, static_cast<int>(to), first);
    if (pick >= 4) Send(n.id, static_cast<int>(to), second);
  }
}

void Simulation::OnDecide(Node& n, const DecideAction& d) {
  const Hash32 hash = BlockHash(suite_, d.block.header);
  n.decided[d.height] = Decided{d.block, d.certificate, hash};
  Trace("node %d (v%d) DECIDES h=%d %s (round %d, %d sigs)", n.id, n.index,
        d.height, Hex8(hash), d.certificate.round, d.certificate.sigs.size());
  if (!IsHonest(n)) return;
  if (absl::Status s = cfg_.check_certificates
                           ? VerifyCertificate(suite_, genesis_, d.block.header,
                                               d.certificate)
                           : absl::OkStatus();
      !s.ok()) {
    Fail(absl::StrCat(
        "certificate: node ", n.id, " decided height ", d.height,
        " with a certificate that does not verify: ", s.message()));
    return;
  }
  auto [it, inserted] = agreed_.emplace(d.height, hash);
  if (!inserted && it->second != hash) {
    Fail(absl::StrCat("agreement: node ", n.id, " decided ", Hex8(hash),
                      " at height ", d.height, ", another honest node ",
                      Hex8(it->second)));
    return;
  }
  if (proposed_.count(hash) == 0) {
    Fail(absl::StrCat("validity: node ", n.id, " decided ", Hex8(hash),
                      " at height ", d.height, ", which nobody proposed"));
    return;
  }
  Hash32 parent{};
  if (d.height > 1) {
    auto p = agreed_.find(d.height - 1);
    if (p == agreed_.end()) {
      Fail(absl::StrCat("validity: node ", n.id, " decided height ", d.height,
                        " before any honest node decided ", d.height - 1));
      return;
    }
    parent = p->second;
  }
  if (d.block.header.prev_hash != parent || !ValidBlock(n, d.block)) {
    Fail(absl::StrCat("validity: node ", n.id, " decided an invalid block at ",
                      d.height));
    return;
  }
  if (cfg_.block_time) {
    if (lying_time_.count(hash) > 0) {
      Fail(absl::StrCat("block time: node ", n.id, " decided ", Hex8(hash),
                        " at height ", d.height,
                        ", whose time a time liar chose"));
      return;
    }
    // At least one honest node found it timely when it was already on the
    // network, so it is at most the precision ahead of that node's clock.
    uint64_t latest = 0;
    for (const auto& x : nodes_) {
      if (IsHonest(*x)) latest = std::max(latest, ClockOf(*x));
    }
    if (d.block.header.time_ms >
        latest + genesis_.rules.block_time_precision_ms) {
      Fail(absl::StrCat("block time: node ", n.id, " decided height ", d.height,
                        " with time ", d.block.header.time_ms,
                        ", over the precision ahead of every honest clock (",
                        latest, ")"));
    }
  }
}

void Simulation::OnEvidence(Node& n, const Evidence& e) {
  if (!IsHonest(n)) return;
  ++result_.honest_evidence;
  const uint32_t accused = EvidenceValidator(e);
  Trace("node %d reports evidence against v%d", n.id, accused);
  if (accused >= faulty_index_.size() || !faulty_index_[accused]) {
    Fail(absl::StrCat("evidence: node ", n.id, " accuses honest validator ",
                      accused));
    return;
  }
  if (absl::Status s = VerifyEvidence(suite_, genesis_, e); !s.ok()) {
    Fail(absl::StrCat("evidence: node ", n.id,
                      " reports evidence that does not verify: ", s.message()));
  }
}

void Simulation::Deliver(Node& n, int from, const Packet& p) {
  if (n.crashed) return;
  ++result_.delivered;
  if (p.kind == Packet::Kind::kStatus) {
    // A peer that is behind gets the blocks it misses (block sync).
    const uint64_t mine = n.sm->height();
    for (uint64_t h = p.height; h < mine && h < p.height + 4; ++h) {
      auto it = n.decided.find(h);
      if (it == n.decided.end()) continue;
      Send(n.id, from,
           Encode(Commit{it->second.block, it->second.certificate}));
    }
    return;
  }
  absl::StatusOr<Message> m = DecodeMessage(p.bytes);
  if (!m.ok()) {
    Fail(absl::StrCat("codec: a sent message does not decode: ",
                      m.status().message()));
    return;
  }
  Apply(n, n.sm->OnMessage(*m, cfg_.block_time
                                   ? std::optional<uint64_t>(ClockOf(n))
                                   : std::nullopt));
}

void Simulation::Gossip(Node& n) {
  if (n.crashed) {
    if (n.restarts_pending > 0) {  // keep the beat for after the restart
      Event e;
      e.time = now_ + cfg_.gossip_ms;
      e.kind = EventKind::kGossip;
      e.node = n.id;
      Push(std::move(e));
    }
    return;
  }
  int64_t peer = rng_.Uniform(0, static_cast<int64_t>(nodes_.size()) - 2);
  if (peer >= n.id) ++peer;
  auto status = std::make_shared<Packet>();
  status->kind = Packet::Kind::kStatus;
  status->height = n.sm->height();
  Send(n.id, static_cast<int>(peer), status);
  for (const Message& m : n.sm->GossipMessages()) {
    Send(n.id, static_cast<int>(peer), Encode(m));
  }
  Event e;
  e.time = now_ + cfg_.gossip_ms + rng_.Uniform(0, cfg_.gossip_ms / 4);
  e.kind = EventKind::kGossip;
  e.node = n.id;
  Push(std::move(e));
}

bool Simulation::LivenessReached() const {
  for (const auto& n : nodes_) {
    if (IsHonest(*n) && n->DecidedHeight() < liveness_target_) return false;
  }
  return true;
}

SimResult Simulation::Run() {
  Setup();
  for (auto& n : nodes_) {
    if (!result_.ok) break;
    absl::StatusOr<Actions> a = n->sm->StartHeight(1);
    if (!a.ok()) {
      Fail(a.status().ToString());
      break;
    }
    Apply(*n, *std::move(a));
  }
  while (result_.ok && !queue_.empty()) {
    Event e = queue_.top();
    queue_.pop();
    now_ = e.time;
    ++result_.events;
    if (after_gst_) {
      if (LivenessReached()) break;
      if (now_ > cfg_.gst_ms + cfg_.liveness_budget_ms) {
        std::string heights;
        for (const auto& n : nodes_) {
          absl::StrAppend(&heights, " node", n->id, "(", FaultName(n->fault),
                          ")=h", n->DecidedHeight(), "/r", n->sm->round());
        }
        Fail(absl::StrCat("liveness: ", cfg_.liveness_budget_ms,
                          "ms after GST the honest nodes have not all decided "
                          "height ",
                          liveness_target_, ";", heights));
        break;
      }
    }
    Node& n = *nodes_[e.node];
    switch (e.kind) {
      case EventKind::kDeliver:
        Deliver(n, e.from, *e.packet);
        break;
      case EventKind::kTimeout:
        if (!n.crashed) Apply(n, n.sm->OnTimeout(e.height, e.round, e.step));
        break;
      case EventKind::kBlockReady:
        AnswerBlock(n, e);
        break;
      case EventKind::kVerdict:
        AnswerVerdict(n, e);
        break;
      case EventKind::kGossip:
        Gossip(n);
        break;
      case EventKind::kCrash:
        Trace("node %d crashes", n.id);
        n.crashed = true;
        break;
      case EventKind::kRestartDown:
        if (n.crashed) break;
        Trace("node %d crashes (it will restart)", n.id);
        n.crashed = true;
        ++n.restarts_pending;
        break;
      case EventKind::kRestartUp:
        if (!n.crashed || n.restarts_pending == 0) break;
        n.crashed = false;
        --n.restarts_pending;
        Restart(n);
        ++result_.restarts;
        break;
      case EventKind::kGst: {
        after_gst_ = true;
        uint64_t highest = 0;
        for (const auto& x : nodes_) {
          if (IsHonest(*x)) highest = std::max(highest, x->DecidedHeight());
        }
        liveness_target_ = highest + cfg_.heights_after_gst;
        Trace("GST: network heals; every honest node must reach height %d",
              liveness_target_);
        break;
      }
    }
  }
  if (result_.ok && !after_gst_) Fail("the event queue ran dry before GST");
  if (result_.ok && !LivenessReached()) {
    Fail("the event queue ran dry before liveness was reached");
  }
  result_.end_time_ms = now_;
  uint64_t lowest = UINT64_MAX;
  for (const auto& n : nodes_) {
    if (IsHonest(*n)) lowest = std::min(lowest, n->DecidedHeight());
  }
  result_.min_honest_height = lowest == UINT64_MAX ? 0 : lowest;
  for (const auto& n : nodes_) {
    if (IsHonest(*n) && n->sm != nullptr) {
      result_.untimely_judged +=
          n->sm->counters().untimely_early + n->sm->counters().untimely_late;
    }
  }
  for (const auto& n : nodes_) {
    if (!IsHonest(*n)) continue;
    result_.rounds_skipped += n->sm->counters().rounds_skipped;
    result_.commits_accepted += n->sm->counters().commits_accepted;
  }
  return result_;
}

}  // namespace

const char* FaultName(Fault f) {
  switch (f) {
    case Fault::kHonest:
      return "honest";
    case Fault::kCrash:
      return "crash";
    case Fault::kEquivocate:
      return "equivocate";
    case Fault::kTwins:
      return "twins";
    case Fault::kLiar:
      return "liar";
    case Fault::kTimeLiar:
      return "time-liar";
  }
  return "?";
}

TimeoutConfig SimConfig::SimTimeouts() {
  TimeoutConfig t;
  t.propose = absl::Milliseconds(300);
  t.propose_delta = absl::Milliseconds(100);
  t.prevote = absl::Milliseconds(200);
  t.prevote_delta = absl::Milliseconds(100);
  t.precommit = absl::Milliseconds(200);
  t.precommit_delta = absl::Milliseconds(100);
  t.max = absl::Seconds(5);
  return t;
}

SimResult RunSimulation(const SimConfig& config) {
  return Simulation(config).Run();
}

std::string DescribeConfig(const SimConfig& c) {
  std::string faults;
  for (size_t i = 0; i < c.faults.size(); ++i) {
    if (c.faults[i] != Fault::kHonest) {
      absl::StrAppend(&faults, faults.empty() ? "" : ",", "v", i, "=",
                      FaultName(c.faults[i]));
    }
  }
  return absl::StrFormat(
      "n=%d faults={%s} drop=%.2f dup=%.2f delay<=%dms partitions=%d "
      "gst=%dms restarts=%d answers<=%dms undecided=%.2f%s%s%s",
      c.validators, faults, c.drop, c.duplicate, c.max_delay_ms, c.partitions,
      c.gst_ms, c.restarts, c.answer_delay_ms, c.undecided,
      c.real_crypto ? " ed25519" : "",
      c.block_time ? absl::StrCat(" block_time skew<=", c.clock_skew_ms, "ms")
                   : std::string(),
      c.unsafe.weak_quorum || c.unsafe.ignore_locks || c.restart_without_wal ||
              c.unsafe_fail_open
          ? " UNSAFE"
          : "");
}

SimConfig ChaosConfig(uint64_t seed, int validators,
                      std::vector<Fault> faults) {
  Rng rng(seed * 0x9E3779B97F4A7C15ull + 17);
  SimConfig c;
  c.seed = seed;
  c.validators = validators;
  c.drop = static_cast<double>(rng.Uniform(0, 30)) / 100.0;
  c.duplicate = static_cast<double>(rng.Uniform(0, 20)) / 100.0;
  c.max_delay_ms = rng.Uniform(20, 1500);
  c.partitions = static_cast<int>(rng.Uniform(0, 3));
  c.gst_ms = rng.Uniform(1000, 12000);
  c.answer_delay_ms = rng.Uniform(0, 400);
  c.undecided = static_cast<double>(rng.Uniform(0, 30)) / 100.0;
  c.faults.assign(validators, Fault::kHonest);
  // Faulty validators at random distinct indices.
  std::vector<int> order(validators);
  for (int i = 0; i < validators; ++i) order[i] = i;
  for (int i = validators - 1; i > 0; --i) {
    std::swap(order[i], order[rng.Uniform(0, i)]);
  }
  for (size_t k = 0; k < faults.size() && k < order.size(); ++k) {
    c.faults[order[k]] = faults[k];
  }
  return c;
}

}  // namespace consortia::consensus::tendermint::sim
