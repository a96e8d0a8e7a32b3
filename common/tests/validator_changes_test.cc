// Following the validator-set changes from the genesis (proof_bundle.h,
// FollowValidatorChanges) and checking proof bundles against the set of
// their height, on the chain of validator_change_chain.h (real signatures):
// the genesis set G (four validators) changes at block 5 to W (effective at
// 7), and W changes at block 9 to X (effective at 12).
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "consortia/admin_records.h"
#include "consortia/crypto_suite.h"
#include "consortia/merkle.h"
#include "consortia/proof_bundle.h"
#include "consortia/state_proof.h"
#include "consortia/types.h"
#include "gtest/gtest.h"
#include "test_chain.h"
#include "validator_change_chain.h"

namespace consortia {
namespace {

using ::consortia::testing::Chain;
using ::consortia::testing::HashOf;
using ::consortia::testing::ValidatorChangeChain;

void ExpectRejected(const absl::Status& s, std::string_view reason) {
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(absl::string_view(reason.data(), reason.size())),
            absl::string_view::npos)
      << "expected a failure about '" << reason << "', got " << s;
}

template <typename T>
void ExpectRejected(const absl::StatusOr<T>& s, std::string_view reason) {
  ExpectRejected(s.status(), reason);
}

// The fixture's chain (validator_change_chain.h), its parts under short
// names.
class ValidatorChangesTest : public ::testing::Test {
 protected:
  using Set = ::consortia::testing::ValidatorSet;

  ValidatorChangesTest()
      : chain_(vc_.chain()),
        suite_(vc_.suite()),
        g_(vc_.g()),
        w_(vc_.w()),
        x_(vc_.x()),
        change5_(vc_.change5()),
        change9_(vc_.change9()) {}

  static std::vector<admin::ValidatorEntry> Entries(const Set& s) {
    return ValidatorChangeChain::Entries(s);
  }
  static BlockHeader Header(uint64_t height, const Hash32& state_root) {
    return ValidatorChangeChain::Header(height, state_root);
  }
  CommitCertificate Certify(const BlockHeader& h, const Set& set,
                            std::vector<uint32_t> signers = {}) const {
    return vc_.Certify(h, set, std::move(signers));
  }
  StateRecord Record(std::string_view app, std::string_view key,
                     const std::string& value, uint64_t height,
                     const Set& signers) const {
    return vc_.Record(app, key, value, height, signers);
  }
  StateRecord Change(uint64_t committed, uint64_t effective, const Set& from,
                     const Set& to) const {
    return vc_.Change(committed, effective, from, to);
  }

  absl::StatusOr<std::vector<ValidatorEpoch>> Follow(
      const std::vector<StateRecord>& changes) {
    return FollowValidatorChanges(suite_, chain_.genesis(), changes);
  }

  ValidatorChangeChain vc_;
  const Chain& chain_;
  const CryptoSuite& suite_;
  const Set& g_;
  const Set& w_;
  const Set& x_;
  const StateRecord& change5_;
  const StateRecord& change9_;
};

TEST_F(ValidatorChangesTest, FollowsTheChangesFromTheGenesis) {
  auto epochs = Follow({change5_, change9_});
  ASSERT_TRUE(epochs.ok()) << epochs.status();
  ASSERT_EQ(epochs->size(), 3u);
  EXPECT_EQ((*epochs)[0], (ValidatorEpoch{1, g_.validators}));
  EXPECT_EQ((*epochs)[1], (ValidatorEpoch{7, w_.validators}));
  EXPECT_EQ((*epochs)[2], (ValidatorEpoch{12, x_.validators}));
  // Decoded from their bundles, as a client gets them.
  std::vector<StateRecord> decoded;
  for (const StateRecord& r : {change5_, change9_}) {
    decoded.push_back(*DecodeStateRecord(EncodeStateRecord(r)));
  }
  EXPECT_EQ(*Follow(decoded), *epochs);
  // No change: the genesis set alone.
  EXPECT_EQ(*Follow({}), GenesisEpochs(chain_.genesis()));
}

TEST_F(ValidatorChangesTest, BundlesAreCheckedAgainstTheSetOfTheirHeight) {
  const std::vector<ValidatorEpoch> epochs = *Follow({change5_, change9_});
  const Genesis& genesis = chain_.genesis();
  // The state after block 12, certified by block 13, which X signs.
  const StateRecord late = Record("kv", "k", "v", 12, x_);
  EXPECT_TRUE(
      VerifyStateRecord(suite_, genesis, epochs, "kv", "k", late, true).ok());
  ExpectRejected(VerifyStateRecord(suite_, genesis, "kv", "k", late, true),
                 "signature");
  // Block 11 is still W's to sign.
  const StateRecord before = Record("kv", "k", "v", 10, w_);
  EXPECT_TRUE(
      VerifyStateRecord(suite_, genesis, epochs, "kv", "k", before, true).ok());
  ExpectRejected(VerifyStateRecord(suite_, genesis, epochs, "kv", "k",
                                   Record("kv", "k", "v", 10, x_), true),
                 "signature");

  // A block of height 8 (W's).
  BlockRecord block;
  block.block.header = Header(8, HashOf("root"));
  block.block.header.tx_root = MerkleRoot(suite_, block.block.txs);
  block.block_hash = BlockHash(suite_, block.block.header);
  block.cert = Certify(block.block.header, w_);
  EXPECT_TRUE(VerifyBlockRecord(suite_, genesis, epochs, block).ok())
      << VerifyBlockRecord(suite_, genesis, epochs, block);
  EXPECT_FALSE(VerifyBlockRecord(suite_, genesis, block).ok());
  block.cert = Certify(block.block.header, g_);
  EXPECT_FALSE(VerifyBlockRecord(suite_, genesis, epochs, block).ok());
  block.cert.reset();
  ExpectRejected(VerifyBlockRecord(suite_, genesis, epochs, block),
                 "without its certificate");

  // A tx of block 13 (X's), its receipt certified by block 14.
  TxRecord tx = chain_.Record(0);
  Block b13 = chain_.block1();
  b13.header.height = 13;
  BlockHeader h14 = chain_.h2();
  h14.height = 14;
  h14.prev_hash = BlockHash(suite_, b13.header);
  tx.height = 13;
  tx.header = b13.header;
  tx.cert = Certify(b13.header, x_);
  tx.next_header = h14;
  tx.next_cert = Certify(h14, x_, {1, 2, 3, 4});
  EXPECT_TRUE(
      VerifyTxRecord(suite_, genesis, epochs, tx, chain_.tx_hash(0)).ok())
      << VerifyTxRecord(suite_, genesis, epochs, tx, chain_.tx_hash(0));
  EXPECT_FALSE(VerifyTxRecord(suite_, genesis, tx, chain_.tx_hash(0)).ok());
  // Block 1's tx keeps verifying with the genesis set in the epochs.
  EXPECT_TRUE(VerifyTxRecord(suite_, genesis, epochs, chain_.Record(1),
                             chain_.tx_hash(1))
                  .ok());
  ExpectRejected(VerifyTxRecord(suite_, genesis, {}, tx, chain_.tx_hash(0)),
                 "no validator set");
}

TEST_F(ValidatorChangesTest, RejectsATamperedValue) {
  StateRecord r = change9_;
  admin::ValidatorChangeRecord c =
      *admin::DecodeValidatorChange(AsString(r.value));
  c.validators.pop_back();
  r.value = ToBytes(admin::EncodeValidatorChange(c));
  ExpectRejected(Follow({change5_, r}), "validator change at height 9: ");
  ExpectRejected(Follow({change5_, r}), "another value");
}

TEST_F(ValidatorChangesTest, RejectsATamperedProof) {
  StateRecord r = change5_;
  r.proof.siblings.push_back(HashOf("node"));
  ExpectRejected(Follow({r, change9_}), "validator change at height 5: ");
  r = change5_;
  r.proof.leaf->value_hash[0] ^= 1;
  ExpectRejected(Follow({r, change9_}), "validator change at height 5: ");
  r = change5_;
  r.state_root[0] ^= 1;
  ExpectRejected(Follow({r, change9_}), "validator change at height 5: ");
}

TEST_F(ValidatorChangesTest, RejectsATamperedHeader) {
  StateRecord r = change5_;
  r.next_header->time_ms += 1;  // the certificate no longer matches
  ExpectRejected(Follow({r, change9_}), "validator change at height 5: ");
  r = change5_;
  r.next_header->state_root = HashOf("elsewhere");
  ExpectRejected(Follow({r, change9_}), "another state root");
  r = change5_;
  r.next_header.reset();
  r.next_cert.reset();
  const auto uncertified = Follow({r, change9_});
  ExpectRejected(uncertified, "validator change at height 5: ");
  EXPECT_EQ(uncertified.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ValidatorChangesTest, RejectsATamperedCertificate) {
  StateRecord r = change9_;
  r.next_cert->sigs[1].signature[3] ^= 1;
  ExpectRejected(Follow({change5_, r}), "validator change at height 9: ");
  // Signed by the new set instead of the one in force.
  r = change9_;
  r.next_cert = Certify(*r.next_header, x_);
  ExpectRejected(Follow({change5_, r}), "validator change at height 9: ");
  // Too few signers.
  r = change9_;
  r.next_cert = Certify(*r.next_header, w_, {0, 1});
  ExpectRejected(Follow({change5_, r}), "validator change at height 9: ");
}

TEST_F(ValidatorChangesTest, RejectsAMissingChange) {
  // Without the first change, the second's certificate (W's) does not
  // verify against the genesis set still in force.
  ExpectRejected(Follow({change9_}), "validator change at height 9: ");
  ExpectRejected(Follow({change9_}), "signature");
  // Without the last, X's certificates do not verify against W.
  const std::vector<ValidatorEpoch> epochs = *Follow({change5_});
  ExpectRejected(VerifyStateRecord(suite_, chain_.genesis(), epochs, "kv", "k",
                                   Record("kv", "k", "v", 12, x_), true),
                 "signature");
}

TEST_F(ValidatorChangesTest, RejectsReorderedChanges) {
  ExpectRejected(Follow({change9_, change5_}), "validator change at height 9");
  ExpectRejected(Follow({change5_, change5_}), "increasing height");
}

TEST_F(ValidatorChangesTest, RejectsAPreviousSetThatIsNotInForce) {
  // A change that claims to replace another set than the genesis's.
  const StateRecord forged = Change(5, 7, w_, x_);
  // (certified by W, which is not in force at 6)
  ExpectRejected(Follow({forged}), "validator change at height 5: ");
  // Certified by G but naming W as the previous set.
  admin::ValidatorChangeRecord c;
  c.validators = Entries(x_);
  c.previous = Entries(w_);
  c.committed_height = 5;
  c.effective_height = 7;
  const StateRecord lying = Record(admin::kAppName, admin::kValidatorsKey,
                                   admin::EncodeValidatorChange(c), 5, g_);
  ExpectRejected(Follow({lying}), "previous set is not the set in force");
  // A power changed in the previous set.
  c.previous = Entries(g_);
  c.previous[2].power = 5;
  ExpectRejected(Follow({Record(admin::kAppName, admin::kValidatorsKey,
                                admin::EncodeValidatorChange(c), 5, g_)}),
                 "previous set");
}

TEST_F(ValidatorChangesTest, RejectsChangesThatBreakTheRules) {
  // Committed at another height than the record's.
  admin::ValidatorChangeRecord c;
  c.validators = Entries(w_);
  c.previous = Entries(g_);
  c.committed_height = 4;
  c.effective_height = 7;
  ExpectRejected(Follow({Record(admin::kAppName, admin::kValidatorsKey,
                                admin::EncodeValidatorChange(c), 5, g_)}),
                 "committed at 4");
  // Effective at once.
  ExpectRejected(Follow({Change(5, 6, g_, w_)}), "takes effect at 6");
  // Made while the change of block 5 was pending (until 7).
  ExpectRejected(Follow({change5_, Change(6, 9, w_, x_)}),
                 "validator change at height 6: it was committed while");
  // Another key than validators/pending.
  StateRecord other = change5_;
  other.proof.leaf->path = StateKeyPath(suite_, "admin", "config");
  EXPECT_FALSE(Follow({other}).ok());
  // Absent.
  StateRecord absent = Record("kv", "k", "v", 5, g_);
  absent.found = false;
  absent.value.clear();
  ExpectRejected(Follow({absent}), "no validators/pending record");
}

}  // namespace
}  // namespace consortia
