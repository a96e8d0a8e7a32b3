// Fakes and helpers for the consensus tests: a clock that moves when told,
// and the shared fakes of the services around consensus (common/testing/:
// a mempool, and a ledger that checks every block extends its chain
// exactly, with its blocks read back as storage's BlockSource).
#ifndef CONSORTIA_CONSENSUS_TESTS_FAKES_H_
#define CONSORTIA_CONSENSUS_TESTS_FAKES_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clock.h"
#include "consortia/service_api.h"
#include "consortia/testing/fake_ledger.h"
#include "consortia/testing/fake_mempool.h"
#include "consortia/testing/fake_storage_queries.h"
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

// The fakes of the services consensus talks to (a mempool, storage's
// LedgerApi and BlockSource) are the shared ones of common/testing/.
using ::consortia::testing::FakeBlockSource;
using ::consortia::testing::FakeLedger;
using ::consortia::testing::FakeMempool;

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
