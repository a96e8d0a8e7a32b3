// Test-only: builds keys, genesis and signed txs, and runs a real node as
// separate processes (or as one consortia-node process) on 127.0.0.1 ports,
// stopping every process by its own pid when the harness is destroyed.
#ifndef CONSORTIA_TESTS_SUPPORT_NODE_HARNESS_H_
#define CONSORTIA_TESTS_SUPPORT_NODE_HARNESS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/crypto_suite.h"
#include "consortia/http_client.h"
#include "consortia/process.h"
#include "consortia/types.h"

namespace consortia::testing {

// A key pair of `suite` (the default suite unless given), deterministic in
// `seed_byte`.
KeyPair TestKey(uint8_t seed_byte, const CryptoSuite& suite = Ed25519Sha256());

// A signed transaction for the chain, signed with `suite` (the key's).
Transaction SignedTx(const KeyPair& key, const std::string& chain_id,
                     uint64_t nonce, uint64_t valid_until,
                     const std::string& app, const std::string& method,
                     std::vector<std::string> args,
                     const CryptoSuite& suite = Ed25519Sha256());

// The suites the core end-to-end scenarios run on (TEST_P parameters), and
// a test name suffix for each ("ed25519_sha256", "sm2_sm3").
std::vector<std::string> AllCryptoSuites();
std::string SuiteTestName(const std::string& suite);
// The suite of that name; aborts for an unknown one (a broken test).
const CryptoSuite& SuiteNamed(const std::string& name);

// A fresh temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct NodeHarnessOptions {
  bool single_process = false;  // consortia-node --all instead of four binaries
  // More flags, by binary name ("consortia-api", ...; "consortia-node" in the
  // single-process form).
  std::map<std::string, std::vector<std::string>> extra_flags;
  // When set, the api speaks HTTPS (give it --api_tls_cert_file and
  // --api_tls_key_file in extra_flags) and api() is an https target for
  // "localhost" trusting only the CA certificates of this file.
  std::string api_tls_ca_file = {};
  // The genesis's crypto suite, and the node key's.
  std::string crypto_suite = "ed25519-sha256";
  // Set: a permissioned chain with this consortium in its genesis.
  std::optional<Consortium> consortium = {};
};

// One validator node. Not thread-safe.
class NodeHarness {
 public:
  // Writes a one-validator genesis and node key under dir.
  explicit NodeHarness(std::string dir, NodeHarnessOptions options = {});
  ~NodeHarness();

  // Starts the processes and waits (up to `timeout`) for the api's /readyz.
  absl::Status Start(absl::Duration timeout = absl::Seconds(60));
  // SIGTERM to each process in reverse start order; returns the first
  // non-clean exit as an error.
  absl::Status Stop();

  // Crash tests. Kill sends SIGKILL to the named processes (binary names as
  // in ops(); every process when empty) one right after the other, then
  // reaps them. Restart starts every killed process again with the same
  // flags and ports and waits (up to `timeout`) for the api's /readyz; a
  // process that exits while starting is started again (up to 3 times in
  // all), since one of its freed ports may have been taken meanwhile.
  absl::Status Kill(const std::vector<std::string>& binaries = {});
  absl::Status Restart(absl::Duration timeout = absl::Seconds(60));

  const Genesis& genesis() const { return genesis_; }
  // The genesis's crypto suite.
  const CryptoSuite& suite() const { return SuiteNamed(genesis_.crypto_suite); }
  const HttpTarget& api() const { return api_; }
  // The ops endpoints (/metrics) of every process, by binary name.
  const std::map<std::string, HttpTarget>& ops() const { return ops_; }
  std::string LogTail(size_t bytes = 4000) const;
  // The pid of a running process by binary name; -1 when there is none.
  pid_t pid(const std::string& binary) const;

  absl::StatusOr<HttpResult> Get(const std::string& path) const;
  // The chain's height from GET /v1/blocks/latest, waiting (up to `timeout`)
  // for block 1; DeadlineExceeded, with the log tail, if none came.
  absl::StatusOr<uint64_t> CurrentHeight(
      absl::Duration timeout = absl::Seconds(30)) const;
  absl::StatusOr<HttpResult> Post(const std::string& path,
                                  const std::string& body) const;

 private:
  std::string dir_;
  NodeHarnessOptions options_;
  Genesis genesis_;
  HttpTarget api_;
  std::map<std::string, HttpTarget> ops_;
  std::vector<std::pair<std::string, ChildProcess>> procs_;
  // Per process: its argv (for Restart) and whether Kill stopped it.
  std::map<std::string, std::vector<std::string>> argv_;
  std::map<std::string, bool> killed_;

  // Waits for the api's /readyz while every process keeps running.
  absl::Status WaitReady(absl::Duration timeout);
};

// Directory of the built binaries (set by CMake).
std::string BinDir();

}  // namespace consortia::testing

#endif  // CONSORTIA_TESTS_SUPPORT_NODE_HARNESS_H_
