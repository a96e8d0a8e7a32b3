// A chain whose validator set changes, built by hand with real signatures,
// for the tests of the verifier's side of validator-set changes
// (validator_changes_test.cc; the CLI's, tests/e2e/cli_verify_test.cc): the
// genesis set G of test_chain.h's Chain (four validators) changes at block 5
// to W (four others, from height 7), and W at block 9 to X (five others, from
// height 12). Each change is the admin app's "validators/pending" record
// alone in its state, certified by the next block, which the set in force
// signs.
#ifndef CONSORTIA_COMMON_TESTS_VALIDATOR_CHANGE_CHAIN_H_
#define CONSORTIA_COMMON_TESTS_VALIDATOR_CHANGE_CHAIN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/admin_records.h"
#include "consortia/crypto_suite.h"
#include "consortia/proof_bundle.h"
#include "consortia/state_proof.h"
#include "consortia/types.h"
#include "test_chain.h"

namespace consortia::testing {

// A validator set with its secret keys.
struct ValidatorSet {
  std::vector<KeyPair> keys;
  std::vector<Validator> validators;
};

class ValidatorChangeChain {
 public:
  ValidatorChangeChain() : suite_(chain_.suite()) {
    g_.validators = chain_.genesis().validators;
    for (int i = 0; i < 4; ++i) {
      g_.keys.push_back(chain_.Key(static_cast<uint8_t>(i + 1)));
    }
    w_ = MakeSet("w", 10, 4);
    x_ = MakeSet("x", 20, 5);
    change5_ = Change(5, 7, g_, w_);
    change9_ = Change(9, 12, w_, x_);
  }

  ValidatorSet MakeSet(const std::string& prefix, uint8_t seed, int n) const {
    ValidatorSet s;
    for (int i = 0; i < n; ++i) {
      s.keys.push_back(chain_.Key(static_cast<uint8_t>(seed + i)));
      s.validators.push_back(
          {absl::StrCat(prefix, i), s.keys.back().public_key, 1});
    }
    return s;
  }

  static std::vector<admin::ValidatorEntry> Entries(const ValidatorSet& s) {
    std::vector<admin::ValidatorEntry> out;
    for (const Validator& v : s.validators) {
      out.push_back({v.name, v.public_key, v.power});
    }
    return out;
  }

  // A header of `height` with this state root.
  static BlockHeader Header(uint64_t height, const Hash32& state_root) {
    BlockHeader h;
    h.chain_id = kChain;
    h.height = height;
    h.time_ms = 1700000000000 + height * 1000;
    h.state_root = state_root;
    return h;
  }

  // A certificate of h signed by `signers` of `set` (default: the first
  // ones holding just more than two thirds of its power).
  CommitCertificate Certify(const BlockHeader& h, const ValidatorSet& set,
                            std::vector<uint32_t> signers = {}) const {
    if (signers.empty()) {
      for (uint32_t i = 0; i < 2 * set.keys.size() / 3 + 1; ++i) {
        signers.push_back(i);
      }
    }
    CommitCertificate c;
    c.height = h.height;
    c.block_hash = BlockHash(suite_, h);
    for (uint32_t i : signers) {
      Vote v;
      v.type = VoteType::kPrecommit;
      v.height = h.height;
      v.block_hash = c.block_hash;
      v.validator_index = i;
      c.sigs.push_back(
          {i, *suite_.Sign(set.keys[i].secret_key, VoteSignBytes(kChain, v))});
    }
    return c;
  }

  // The record of (app, key) = value, alone in the state after `height`,
  // certified by block height + 1 signed by `signers`.
  StateRecord Record(std::string_view app, std::string_view key,
                     const std::string& value, uint64_t height,
                     const ValidatorSet& signers) const {
    StateRecord r;
    r.found = true;
    r.value = ToBytes(value);
    r.height = height;
    const Hash32 path = StateKeyPath(suite_, app, key);
    r.proof.leaf = StateLeaf{path, StateValueHash(suite_, r.value, r.owner)};
    r.state_root = StateProofRoot(suite_, path, r.proof);
    r.next_header = Header(height + 1, r.state_root);
    r.next_cert = Certify(*r.next_header, signers);
    return r;
  }

  // The change of block `committed` from `from` to `to`, certified by `from`.
  StateRecord Change(uint64_t committed, uint64_t effective,
                     const ValidatorSet& from, const ValidatorSet& to) const {
    admin::ValidatorChangeRecord c;
    c.validators = Entries(to);
    c.previous = Entries(from);
    c.committed_height = committed;
    c.effective_height = effective;
    return Record(admin::kAppName, admin::kValidatorsKey,
                  admin::EncodeValidatorChange(c), committed, from);
  }

  const Chain& chain() const { return chain_; }
  const CryptoSuite& suite() const { return suite_; }
  const Genesis& genesis() const { return chain_.genesis(); }
  const ValidatorSet& g() const { return g_; }
  const ValidatorSet& w() const { return w_; }
  const ValidatorSet& x() const { return x_; }
  const StateRecord& change5() const { return change5_; }
  const StateRecord& change9() const { return change9_; }

 private:
  Chain chain_;
  const CryptoSuite& suite_;
  ValidatorSet g_, w_, x_;
  StateRecord change5_, change9_;
};

}  // namespace consortia::testing

#endif  // CONSORTIA_COMMON_TESTS_VALIDATOR_CHANGE_CHAIN_H_
