// A PeerNet that records what is sent, for the gossip tests.
#ifndef CONSORTIA_MEMPOOL_TESTS_FAKE_PEER_NET_H_
#define CONSORTIA_MEMPOOL_TESTS_FAKE_PEER_NET_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "consortia/peer_net.h"

namespace consortia::mempool::testing {

// A PeerNet that records what is sent and refuses it when told to.
class FakePeerNet : public PeerNet {
 public:
  explicit FakePeerNet(std::vector<std::string> peers)
      : peers_(std::move(peers)) {}

  absl::Status Send(std::string_view peer_id, uint16_t type, ByteView payload,
                    uint64_t) override {
    absl::MutexLock lock(&mu_);
    if (refuse_) return absl::ResourceExhaustedError("full");
    sent_.push_back(
        {std::string(peer_id), type, Bytes(payload.begin(), payload.end())});
    return absl::OkStatus();
  }
  size_t Broadcast(uint16_t, ByteView, uint64_t) override { return 0; }
  size_t PeersConnected() const override { return peers_.size(); }
  std::vector<PeerStatus> Peers() const override {
    std::vector<PeerStatus> out;
    for (const std::string& id : peers_) {
      PeerStatus p;
      p.id = id;
      out.push_back(std::move(p));
    }
    return out;
  }
  PeerNetStats Stats() const override { return {}; }
  const std::string& node_id() const override { return id_; }

  struct Sent {
    std::string peer;
    uint16_t type;
    Bytes payload;
  };
  std::vector<Sent> sent() const {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  void set_refuse(bool refuse) {
    absl::MutexLock lock(&mu_);
    refuse_ = refuse;
  }

 private:
  const std::vector<std::string> peers_;
  const std::string id_ = "self";
  mutable absl::Mutex mu_;
  std::vector<Sent> sent_ ABSL_GUARDED_BY(mu_);
  bool refuse_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace consortia::mempool::testing

#endif  // CONSORTIA_MEMPOOL_TESTS_FAKE_PEER_NET_H_
