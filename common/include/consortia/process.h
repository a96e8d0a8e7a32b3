// Child processes for the local network launcher and the end-to-end tests:
// start a program with arguments and a log file, signal it by its pid, wait.
#ifndef CONSORTIA_COMMON_PROCESS_H_
#define CONSORTIA_COMMON_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace consortia {

// One child process. Not thread-safe. The destructor kills (SIGKILL) and
// reaps a child that is still running, so no test leaves a server behind.
class ChildProcess {
 public:
  // Starts argv[0] (a path) with argv; stdout and stderr are appended to
  // log_path ("" = inherit). Internal with errno text if it cannot start.
  static absl::StatusOr<ChildProcess> Start(
      const std::vector<std::string>& argv, const std::string& log_path);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running();
  // Sends a signal (SIGTERM, SIGKILL, SIGSTOP, SIGCONT) to this pid only.
  void Signal(int sig);
  // Waits for the child to exit; DeadlineExceeded if it has not by then.
  // Returns the exit status as waitpid gives it.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // SIGTERM, wait up to grace, then SIGKILL. Returns the wait status.
  int Stop(absl::Duration grace = absl::Seconds(10));

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// A TCP port on 127.0.0.1 that was free a moment ago, for a server to bind
// (tests and the local network). It is picked at random below the kernel's
// ephemeral range (ip_local_port_range), and never twice in one process:
// an endpoint is often dialled before it is bound (ZeroMQ retries every
// 100 ms), and a port in the ephemeral range can be handed to such a connect
// as its source port (a TCP self-connect on loopback), after which the bind
// fails with "Address already in use". Falls back to a port the kernel picks
// (bind to 0) when none is found there. Thread-safe.
absl::StatusOr<uint16_t> PickFreePort();

}  // namespace consortia

#endif  // CONSORTIA_COMMON_PROCESS_H_
