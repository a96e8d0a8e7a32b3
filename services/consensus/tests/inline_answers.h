// Test-only: a StateMachine whose block requests and validity requests are
// answered at once, inside the input that caused them, by two callbacks. The
// tests of the algorithm's rules use it so that they read as the paper does
// (valid(v) and getValue() as plain functions); the asynchronous answers
// themselves are tested directly against StateMachine and in the simulation.
#ifndef CONSORTIA_CONSENSUS_TESTS_INLINE_ANSWERS_H_
#define CONSORTIA_CONSENSUS_TESTS_INLINE_ANSWERS_H_

#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "tendermint/state_machine.h"

namespace consortia::consensus::tendermint {

class InlineAnswers {
 public:
  using BlockSource =
      std::function<absl::StatusOr<Block>(uint64_t height, uint32_t round)>;
  using ValidityCheck = std::function<bool(const Block& block)>;

  InlineAnswers(std::unique_ptr<StateMachine> machine, BlockSource source,
                ValidityCheck valid)
      : machine_(std::move(machine)),
        source_(std::move(source)),
        valid_(std::move(valid)) {}

  absl::StatusOr<Actions> StartHeight(
      uint64_t height, const std::vector<Message>& own_log = {}) {
    absl::StatusOr<Actions> a = machine_->StartHeight(height, own_log);
    if (!a.ok()) return a;
    return Resolve(*std::move(a));
  }
  Actions OnMessage(const Message& m,
                    std::optional<uint64_t> received_ms = std::nullopt) {
    return Resolve(machine_->OnMessage(m, received_ms));
  }
  Actions OnProposal(const Proposal& p,
                     std::optional<uint64_t> received_ms = std::nullopt) {
    return Resolve(machine_->OnProposal(p, received_ms));
  }
  Actions OnVote(const Vote& v) { return Resolve(machine_->OnVote(v)); }
  Actions OnCommit(const Commit& c) { return Resolve(machine_->OnCommit(c)); }
  Actions OnTimeout(uint64_t h, uint32_t r, Step s) {
    return Resolve(machine_->OnTimeout(h, r, s));
  }

  // Answers the requests among `actions` (and those the answers cause), in
  // place; returns the other actions in order.
  Actions Resolve(Actions actions) {
    Actions out;
    for (Action& a : actions) {
      if (const auto* r = std::get_if<RequestBlockAction>(&a)) {
        Actions more = Resolve(machine_->OnBlockToPropose(
            r->height, r->round, source_(r->height, r->round)));
        for (Action& m : more) out.push_back(std::move(m));
      } else if (const auto* v = std::get_if<ValidateBlockAction>(&a)) {
        const BlockVerdict verdict =
            valid_(v->block) ? BlockVerdict::kValid : BlockVerdict::kInvalid;
        Actions more = Resolve(
            machine_->OnBlockVerdict(v->height, v->block_hash, verdict));
        for (Action& m : more) out.push_back(std::move(m));
      } else {
        out.push_back(std::move(a));
      }
    }
    return out;
  }

  // Read-only state, as StateMachine's.
  uint64_t height() const { return machine_->height(); }
  uint32_t round() const { return machine_->round(); }
  Step step() const { return machine_->step(); }
  const std::optional<Commit>& decision() const { return machine_->decision(); }
  int64_t locked_round() const { return machine_->locked_round(); }
  int64_t valid_round() const { return machine_->valid_round(); }
  std::optional<Hash32> locked_block_hash() const {
    return machine_->locked_block_hash();
  }
  const Counters& counters() const { return machine_->counters(); }
  const std::vector<Evidence>& evidence() const { return machine_->evidence(); }
  std::vector<Message> GossipMessages() const {
    return machine_->GossipMessages();
  }
  StateMachine& machine() { return *machine_; }

 private:
  std::unique_ptr<StateMachine> machine_;
  BlockSource source_;
  ValidityCheck valid_;
};

}  // namespace consortia::consensus::tendermint

#endif  // CONSORTIA_CONSENSUS_TESTS_INLINE_ANSWERS_H_
