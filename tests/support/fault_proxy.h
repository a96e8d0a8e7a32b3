// Test-only: TCP forwarders on 127.0.0.1 that can be cut and healed, for
// partitioning real processes without firewall rules. Each link listens on
// its own port and forwards every connection to one target port. A cut link
// closes its open connections and closes every new one at once (the client
// sees its peer vanish and keeps reconnecting, as ZeroMQ does); a healed link
// forwards again.
#ifndef CONSORTIA_TESTS_SUPPORT_FAULT_PROXY_H_
#define CONSORTIA_TESTS_SUPPORT_FAULT_PROXY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace consortia::testing {

class FaultProxy {
 public:
  FaultProxy();
  // Stops the forwarding thread and closes every socket.
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // A new link that forwards 127.0.0.1:<returned port> to
  // 127.0.0.1:target_port. Returns the link id (0, 1, ...) through *id.
  absl::StatusOr<uint16_t> AddLink(uint16_t target_port, int* id);
  // Cuts or heals one link. Unknown ids are ignored.
  void SetCut(int id, bool cut);
  // Connections accepted over the proxy's life (for tests of the proxy).
  uint64_t accepted() const;

 private:
  struct Conn {
    int client = -1;
    int server = -1;
    int link = 0;
  };
  struct Link {
    int listen_fd = -1;
    uint16_t target_port = 0;
    bool cut = false;
  };

  void Loop();
  void CloseConn(Conn& c);

  mutable absl::Mutex mu_;
  std::vector<Link> links_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;
  // Forwarding thread only.
  std::vector<Conn> conns_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace consortia::testing

#endif  // CONSORTIA_TESTS_SUPPORT_FAULT_PROXY_H_
