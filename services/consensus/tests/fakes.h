// Fakes for the consensus tests: a clock that moves when told, a mempool,
// and a ledger that checks every block extends its chain exactly.
#ifndef CONSORTIA_CONSENSUS_TESTS_FAKES_H_
#define CONSORTIA_CONSENSUS_TESTS_FAKES_H_

#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clock.h"
#include "consortia/merkle.h"
#include "consortia/service_api.h"
#include "consortia/types.h"

namespace consortia::consensus::testing {

inline constexpr char kChainId[] = "testnet";

// A clock that moves only when told.
class FakeClock : public Clock {
 public:
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1700000000);
};

// The system clock shifted by a fixed offset (a node whose clock is off).
class OffsetClock : public Clock {
 public:
  explicit OffsetClock(absl::Duration offset) : offset_(offset) {}
  absl::Time Now() const override { return absl::Now() + offset_; }

 private:
  const absl::Duration offset_;
};

// Pending txs in arrival order; they leave when the ledger commits them.
// CheckProposal vouches for every tx (as a mempool that admitted them
// would), or gives no verdict at all after SetChecksUnavailable(true) (a
// mempool that is down or frozen).
class FakeMempool : public MempoolApi {
 public:
  void SetChecksUnavailable(bool unavailable) {
    absl::MutexLock lock(&mu_);
    checks_unavailable_ = unavailable;
  }
  int checks() const {
    absl::MutexLock lock(&mu_);
    return checks_;
  }
  void Add(std::vector<Bytes> txs) {
    absl::MutexLock lock(&mu_);
    for (Bytes& t : txs) pending_.push_back(std::move(t));
  }
  void Remove(const std::vector<Bytes>& txs) {
    absl::MutexLock lock(&mu_);
    for (const Bytes& t : txs) std::erase(pending_, t);
  }
  int reaps() const {
    absl::MutexLock lock(&mu_);
    return reaps_;
  }

  absl::StatusOr<std::vector<SubmitResult>> Submit(
      const std::vector<Bytes>&) override {
    return absl::UnimplementedError("consensus never submits");
  }
  absl::StatusOr<std::vector<Bytes>> Reap(const ReapRequest& req) override {
    absl::MutexLock lock(&mu_);
    ++reaps_;
    std::vector<Bytes> out;
    uint64_t bytes = 0;
    for (const Bytes& t : pending_) {
      if (out.size() >= req.max_txs || bytes + t.size() > req.max_bytes) break;
      bytes += t.size();
      out.push_back(t);
    }
    return out;
  }
  absl::StatusOr<std::vector<ProposalTxCheck>> CheckProposal(
      const std::vector<Bytes>& raw_txs, uint64_t) override {
    absl::MutexLock lock(&mu_);
    ++checks_;
    if (checks_unavailable_) {
      return absl::UnavailableError("FakeMempool: checks unavailable");
    }
    return std::vector<ProposalTxCheck>(raw_txs.size());
  }

 private:
  mutable absl::Mutex mu_;
  std::deque<Bytes> pending_ ABSL_GUARDED_BY(mu_);
  int reaps_ ABSL_GUARDED_BY(mu_) = 0;
  int checks_ ABSL_GUARDED_BY(mu_) = 0;
  bool checks_unavailable_ ABSL_GUARDED_BY(mu_) = false;
};

// A ledger that checks every block extends its chain exactly: height,
// prev_hash, the roots it returned last, tx_root, time and the certificate.
// It records every violation; tests expect none.
class FakeLedger : public LedgerApi {
 public:
  FakeLedger(const Genesis& genesis, FakeMempool* mempool)
      : genesis_(genesis), mempool_(mempool) {}

  // Refuse the next n commits without persisting them.
  void FailNextCommits(int n) {
    absl::MutexLock lock(&mu_);
    fail_commits_ = n;
  }
  // Persist the next n commits but answer with an error (a lost reply).
  void LoseNextReplies(int n) {
    absl::MutexLock lock(&mu_);
    lose_replies_ = n;
  }
  void SetDown(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }

  uint64_t height() const {
    absl::MutexLock lock(&mu_);
    return state_.height;
  }
  std::vector<Block> blocks() const {
    absl::MutexLock lock(&mu_);
    return blocks_;
  }
  std::vector<CommitCertificate> certs() const {
    absl::MutexLock lock(&mu_);
    return certs_;
  }
  std::vector<std::string> violations() const {
    absl::MutexLock lock(&mu_);
    return violations_;
  }
  int commit_calls() const {
    absl::MutexLock lock(&mu_);
    return commit_calls_;
  }
  int state_calls() const {
    absl::MutexLock lock(&mu_);
    return state_calls_;
  }
  std::vector<EvidenceRecord> evidence() const {
    absl::MutexLock lock(&mu_);
    return evidence_;
  }

  absl::Status RecordEvidence(
      const std::vector<EvidenceRecord>& records) override {
    absl::MutexLock lock(&mu_);
    if (down_) return absl::UnavailableError("storage is down");
    evidence_.insert(evidence_.end(), records.begin(), records.end());
    return absl::OkStatus();
  }

  absl::StatusOr<ChainState> GetChainState() override {
    absl::MutexLock lock(&mu_);
    ++state_calls_;
    if (down_) return absl::UnavailableError("storage is down");
    return state_;
  }

  absl::StatusOr<CommitResult> CommitBlock(
      ByteView encoded, const CommitCertificate& cert) override {
    absl::StatusOr<Block> decoded = DecodeBlock(encoded);
    if (!decoded.ok()) return decoded.status();
    const Block& block = *decoded;
    const CryptoSuite& suite = Ed25519Sha256();
    std::vector<Bytes> committed;
    CommitResult result;
    {
      absl::MutexLock lock(&mu_);
      ++commit_calls_;
      if (down_) return absl::UnavailableError("storage is down");
      if (fail_commits_ > 0) {
        --fail_commits_;
        return absl::InternalError("disk hiccup");
      }
      const BlockHeader& h = block.header;
      if (h.height != state_.height + 1) {
        return Violation(
            absl::StrCat("height ", h.height, " after ", state_.height));
      }
      if (h.prev_hash != state_.last_block_hash) {
        return Violation("prev_hash does not link");
      }
      if (h.state_root != state_.state_root ||
          h.receipts_root != state_.receipts_root) {
        return Violation("roots differ from the ones returned last");
      }
      if (h.chain_id != kChainId) return Violation("chain id");
      if (h.time_ms <= state_.last_time_ms) return Violation("time");
      if (h.tx_root != MerkleRoot(suite, block.txs)) {
        return Violation("tx_root");
      }
      if (absl::Status s = VerifyCertificate(suite, genesis_, h, cert);
          !s.ok()) {
        return Violation(absl::StrCat("certificate: ", s.message()));
      }
      const Hash32 hash = BlockHash(suite, h);
      result.state_root = suite.Hash(ToBytes(absl::StrCat("state", h.height)));
      result.receipts_root =
          suite.Hash(ToBytes(absl::StrCat("receipts", h.height)));
      state_ = ChainState{h.height, hash, h.time_ms, result.state_root,
                          result.receipts_root};
      blocks_.push_back(block);
      certs_.push_back(cert);
      committed = block.txs;
    }
    mempool_->Remove(committed);
    absl::MutexLock lock(&mu_);
    if (lose_replies_ > 0) {
      --lose_replies_;
      return absl::DeadlineExceededError("reply lost");
    }
    return result;
  }

 private:
  absl::Status Violation(std::string what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    violations_.push_back(what);
    return absl::FailedPreconditionError(what);
  }

  const Genesis genesis_;
  FakeMempool* const mempool_;
  mutable absl::Mutex mu_;
  ChainState state_ ABSL_GUARDED_BY(mu_);
  std::vector<Block> blocks_ ABSL_GUARDED_BY(mu_);
  std::vector<CommitCertificate> certs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
  int fail_commits_ ABSL_GUARDED_BY(mu_) = 0;
  int lose_replies_ ABSL_GUARDED_BY(mu_) = 0;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  int commit_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<EvidenceRecord> evidence_ ABSL_GUARDED_BY(mu_);
  int state_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

// The blocks of a FakeLedger as storage's query side serves them (only what
// block sync reads: blocks by height, with their certificates). Counts
// reads.
class FakeQuery : public QueryApi {
 public:
  explicit FakeQuery(const FakeLedger* ledger) : ledger_(ledger) {}

  // GetBlock calls.
  int block_reads() const {
    absl::MutexLock lock(&mu_);
    return block_reads_;
  }
  // GetBlocks calls, and the blocks they returned.
  int range_reads() const {
    absl::MutexLock lock(&mu_);
    return range_reads_;
  }
  int blocks_read() const {
    absl::MutexLock lock(&mu_);
    return blocks_read_;
  }

  absl::StatusOr<BlockRecord> GetBlock(
      std::optional<uint64_t> height) override {
    {
      absl::MutexLock lock(&mu_);
      ++block_reads_;
    }
    const std::vector<Block> blocks = ledger_->blocks();
    return Record(height.value_or(blocks.size()), blocks, ledger_->certs());
  }
  // As storage: at most `limit`, stopping at the block that reaches
  // max_bytes.
  absl::StatusOr<std::vector<BlockRecord>> GetBlocks(
      uint64_t from, uint32_t limit, uint64_t max_bytes) override {
    if (from == 0 || limit == 0 || limit > kMaxGetBlocks || max_bytes == 0) {
      return absl::InvalidArgumentError("FakeQuery::GetBlocks: bad range");
    }
    const std::vector<Block> blocks = ledger_->blocks();
    const std::vector<CommitCertificate> certs = ledger_->certs();
    std::vector<BlockRecord> out;
    uint64_t bytes = 0;
    for (uint64_t h = from;
         h < from + limit && h <= blocks.size() && bytes < max_bytes; ++h) {
      absl::StatusOr<BlockRecord> r = Record(h, blocks, certs);
      if (!r.ok()) return r.status();
      bytes += EncodeBlock(r->block).size();
      out.push_back(*std::move(r));
    }
    absl::MutexLock lock(&mu_);
    ++range_reads_;
    blocks_read_ += static_cast<int>(out.size());
    return out;
  }
  absl::StatusOr<TxRecord> GetTx(const Hash32&) override {
    return absl::UnimplementedError("FakeQuery::GetTx");
  }
  absl::StatusOr<StateRecord> GetState(const std::string&,
                                       const std::string&) override {
    return absl::UnimplementedError("FakeQuery::GetState");
  }
  absl::StatusOr<CommittedPage> GetCommitted(uint64_t, uint64_t) override {
    return absl::UnimplementedError("FakeQuery::GetCommitted");
  }
  // As storage: the height of each committed tx (by TxHash), or 0.
  absl::StatusOr<std::vector<uint64_t>> CommittedHeights(
      const std::vector<Hash32>& hashes) override {
    std::map<Hash32, uint64_t> at;
    const std::vector<Block> blocks = ledger_->blocks();
    for (size_t h = 0; h < blocks.size(); ++h) {
      for (const Bytes& raw : blocks[h].txs) {
        absl::StatusOr<Transaction> tx = DecodeTx(raw);
        if (tx.ok()) at.emplace(TxHash(Ed25519Sha256(), *tx), h + 1);
      }
    }
    std::vector<uint64_t> out;
    for (const Hash32& hash : hashes) {
      auto it = at.find(hash);
      out.push_back(it == at.end() ? 0 : it->second);
    }
    absl::MutexLock lock(&mu_);
    ++committed_reads_;
    return out;
  }
  int committed_reads() const {
    absl::MutexLock lock(&mu_);
    return committed_reads_;
  }

 private:
  static absl::StatusOr<BlockRecord> Record(
      uint64_t h, const std::vector<Block>& blocks,
      const std::vector<CommitCertificate>& certs) {
    if (h == 0 || h > blocks.size()) {
      return absl::NotFoundError(absl::StrCat("no block ", h));
    }
    BlockRecord r;
    r.block = blocks[h - 1];
    r.block_hash = BlockHash(Ed25519Sha256(), r.block.header);
    r.cert = certs[h - 1];
    return r;
  }

  const FakeLedger* const ledger_;
  mutable absl::Mutex mu_;
  int block_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int range_reads_ ABSL_GUARDED_BY(mu_) = 0;
  int blocks_read_ ABSL_GUARDED_BY(mu_) = 0;
  int committed_reads_ ABSL_GUARDED_BY(mu_) = 0;
};

// Polls cond until it holds or 30 s pass.
template <typename F>
bool WaitFor(F cond) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return cond();
}

inline std::vector<Bytes> MakeTxs(int n, const std::string& tag) {
  std::vector<Bytes> txs;
  for (int i = 0; i < n; ++i) txs.push_back(ToBytes(absl::StrCat(tag, "-", i)));
  return txs;
}

// n kv txs of chain kChainId signed with `key` (ed25519), valid until
// height 900. With forge = true the signatures do not verify.
inline std::vector<Bytes> MakeSignedTxs(int n, const std::string& tag,
                                        const KeyPair& key,
                                        bool forge = false) {
  std::vector<Bytes> txs;
  for (int i = 0; i < n; ++i) {
    Transaction tx;
    tx.chain_id = kChainId;
    tx.nonce = static_cast<uint64_t>(i);
    tx.valid_until = 900;
    tx.sender = key.public_key;
    tx.app = "kv";
    tx.method = "set";
    tx.args = {absl::StrCat(tag, "-", i), "v"};
    tx.signature = *Ed25519Sha256().Sign(key.secret_key, TxSignBytes(tx));
    if (forge) tx.signature[0] ^= 1;
    txs.push_back(EncodeTx(tx));
  }
  return txs;
}

inline std::vector<Bytes> AllTxs(const std::vector<Block>& blocks) {
  std::vector<Bytes> out;
  for (const Block& b : blocks)
    out.insert(out.end(), b.txs.begin(), b.txs.end());
  return out;
}

}  // namespace consortia::consensus::testing

#endif  // CONSORTIA_CONSENSUS_TESTS_FAKES_H_
