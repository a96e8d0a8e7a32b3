#include "consortia/config.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "consortia/crypto_suite.h"
#include "consortia/options.h"
#include "json_strict.h"
#include "nlohmann/json.hpp"

CONSORTIA_OPTION_UNBOUNDED(
    "node", std::string, node_name, "node0",
    "Name of this node, as in the genesis validator list and in logs "
    "(non-empty).");
CONSORTIA_OPTION_UNBOUNDED("node", std::string, genesis, "",
                           "Path of the genesis JSON file (required).");
CONSORTIA_OPTION_UNBOUNDED(
    "node", std::string, node_key, "",
    "Path of this node's key file (JSON: crypto_suite, public_key, "
    "secret_key in hex; `consortia keygen`); required by consensus.");
CONSORTIA_OPTION_UNBOUNDED(
    "node", std::string, data_dir, "./data",
    "Directory for this node's persistent data (non-empty).");
CONSORTIA_OPTION_UNBOUNDED(
    "node", std::string, mempool_endpoint, "tcp://127.0.0.1:26601",
    "Bus endpoint of the mempool service (tcp://, ipc:// or inproc://).");
CONSORTIA_OPTION_UNBOUNDED("node", std::string, storage_endpoint,
                           "tcp://127.0.0.1:26602",
                           "Bus endpoint of the storage service's requests.");
CONSORTIA_OPTION_UNBOUNDED("node", std::string, storage_events,
                           "tcp://127.0.0.1:26603",
                           "Bus endpoint where storage publishes its events.");
CONSORTIA_OPTION_UNBOUNDED(
    "node", std::string, metrics_host, "127.0.0.1",
    "Address of the metrics and health endpoint (non-empty when "
    "--metrics_port is set).");
CONSORTIA_OPTION("node", int, metrics_port, 0, 0, 65535,
                 "Port of the metrics and health endpoint (0 = none).");
CONSORTIA_OPTION_UNBOUNDED("node", std::string, log_level, "info",
                           "Log level: trace, debug, info, warn or error.");
CONSORTIA_OPTION("node", int64_t, bus_timeout_ms, 5000, 10, 600000,
                 "Deadline of one request between services, in milliseconds.");

namespace consortia {
namespace {

constexpr char kEnvPrefix[] = "CONSORTIA_";

bool KnownScheme(std::string_view endpoint) {
  for (std::string_view scheme : {"tcp://", "ipc://", "inproc://"}) {
    if (endpoint.starts_with(scheme) && endpoint.size() > scheme.size()) {
      return true;
    }
  }
  return false;
}

absl::Status CheckEndpoint(const char* flag, const std::string& endpoint) {
  if (!KnownScheme(endpoint)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=\"", endpoint,
                     "\": expected tcp://host:port, ipc://path or "
                     "inproc://name"));
  }
  return absl::OkStatus();
}

absl::Status ErrnoStatus(int err, absl::string_view what,
                         absl::string_view path) {
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// Writes all of data to fd, retrying short writes and EINTR.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

std::vector<char*> ParseFlagsAndEnv(int argc, char** argv, const char* usage) {
  // The usage message may be set once per process (Abseil exits otherwise).
  static std::once_flag usage_once;
  std::call_once(usage_once, [usage] { absl::SetProgramUsageMessage(usage); });

  // --help and --dump_options print the declared options (options.h) and
  // exit. (Abseil's own --help lists only flags defined in the main file.)
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--help" || arg == "-help" || arg == "-h") {
      std::printf("%s\n%s", usage, OptionsHelpText().c_str());
      std::exit(0);
    }
    if (arg == "--dump_options" || arg == "-dump_options") {
      std::printf("%s", DumpOptionsJson().c_str());
      std::exit(0);
    }
  }

  for (const auto& [name, flag] : absl::GetAllFlags()) {
    std::string env_name =
        absl::StrCat(kEnvPrefix, absl::AsciiStrToUpper(name));
    const char* value = std::getenv(env_name.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr,
                   "%s: invalid value \"%s\" in environment variable %s"
                   " (flag --%s): %s\n",
                   argc > 0 ? argv[0] : "consortia", value, env_name.c_str(),
                   std::string(name).c_str(), error.c_str());
      std::exit(2);
    }
  }
  return absl::ParseCommandLine(argc, argv);
}

void ConfigureServerRuntime() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

NodeConfig NodeConfig::FromFlags() {
  NodeConfig c;
  c.node_name = absl::GetFlag(FLAGS_node_name);
  c.genesis_path = absl::GetFlag(FLAGS_genesis);
  c.node_key_path = absl::GetFlag(FLAGS_node_key);
  c.data_dir = absl::GetFlag(FLAGS_data_dir);
  c.mempool_endpoint = absl::GetFlag(FLAGS_mempool_endpoint);
  c.storage_endpoint = absl::GetFlag(FLAGS_storage_endpoint);
  c.storage_events = absl::GetFlag(FLAGS_storage_events);
  c.metrics_host = absl::GetFlag(FLAGS_metrics_host);
  c.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  c.log_level = absl::GetFlag(FLAGS_log_level);
  c.bus_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_bus_timeout_ms));
  return c;
}

absl::Status NodeConfig::Validate() const {
  if (node_name.empty()) {
    return absl::InvalidArgumentError("--node_name must not be empty");
  }
  if (data_dir.empty()) {
    return absl::InvalidArgumentError("--data_dir must not be empty");
  }
  if (absl::Status s = CheckEndpoint("mempool_endpoint", mempool_endpoint);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckEndpoint("storage_endpoint", storage_endpoint);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckEndpoint("storage_events", storage_events);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckOptionBounds(OPTION_metrics_port, int64_t{metrics_port});
      !s.ok()) {
    return s;
  }
  if (metrics_port != 0 && metrics_host.empty()) {
    return absl::InvalidArgumentError(
        "--metrics_host must not be empty when --metrics_port is set");
  }
  if (log_level != "trace" && log_level != "debug" && log_level != "info" &&
      log_level != "warn" && log_level != "error") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log_level=", log_level,
                     ": expected trace, debug, info, warn or error"));
  }
  if (absl::Status s = CheckOptionBounds(
          OPTION_bus_timeout_ms, absl::ToInt64Milliseconds(bus_timeout));
      !s.ok()) {
    return s;
  }
  return absl::OkStatus();
}

void BlockTerminationSignals(bool hangup) {
  sigset_t set = TerminationSignals();
  if (hangup) sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void WaitForTerminationSignal(const std::function<void()>& on_hangup) {
  sigset_t set = TerminationSignals();
  if (on_hangup) sigaddset(&set, SIGHUP);
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGHUP) return;
    on_hangup();
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd;
  do {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, "cannot open", path);
  std::string out;
  char buf[64 * 1024];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return ErrnoStatus(err, "cannot read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// The file is created with mode 0600 (it may hold a secret key); the data is
// on disk, and the rename durable, before this returns OK.
absl::Status WriteFileAtomic(const std::string& path, std::string_view data,
                             int mode) {
  std::string tmp = path + ".tmpXXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0)
    return ErrnoStatus(errno, "cannot create a temporary file for", path);
  auto fail = [&](absl::string_view what) {
    int err = errno;
    if (fd >= 0) close(fd);
    unlink(tmp.c_str());
    return ErrnoStatus(err, what, path);
  };
  if (mode != 0600 && fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    return fail("cannot set the mode of");
  }
  if (!WriteAll(fd, data)) return fail("cannot write");
  if (fsync(fd) != 0) return fail("cannot fsync");
  if (close(fd) != 0) {
    fd = -1;
    return fail("cannot close");
  }
  fd = -1;
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename onto");
  // Make the rename itself durable.
  std::string dir = DirName(path);
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoStatus(errno, "cannot open directory", dir);
  int rc = fsync(dfd);
  int err = errno;
  close(dfd);
  if (rc != 0) return ErrnoStatus(err, "cannot fsync directory", dir);
  return absl::OkStatus();
}

absl::StatusOr<NodeKey> LoadNodeKey(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  // Strict: malformed JSON, trailing bytes after the object and repeated
  // fields are errors (a key file is written by keygen, never by hand).
  absl::StatusOr<nlohmann::json> parsed =
      json_internal::ParseStrictJson(*text, absl::StrCat("node key ", path));
  if (!parsed.ok()) return parsed.status();
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("node key ", path, ": not a JSON object"));
  }
  static constexpr std::array<std::string_view, 3> kFields = {
      "crypto_suite", "public_key", "secret_key"};
  for (const auto& [name, value] : j.items()) {
    if (std::find(kFields.begin(), kFields.end(), name) == kFields.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node key ", path, ": unknown field \"", name,
          "\" (a key file has only crypto_suite, public_key, secret_key)"));
    }
  }
  auto field = [&](const char* name) -> absl::StatusOr<std::string> {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("node key ", path, ": field \"", name,
                       "\" is missing or not a string"));
    }
    return it->get<std::string>();
  };
  NodeKey key;
  absl::StatusOr<std::string> suite_name = field("crypto_suite");
  if (!suite_name.ok()) return suite_name.status();
  key.crypto_suite = *suite_name;
  for (auto [name, out] :
       {std::pair<const char*, Bytes*>{"public_key", &key.public_key},
        std::pair<const char*, Bytes*>{"secret_key", &key.secret_key}}) {
    absl::StatusOr<std::string> hex = field(name);
    if (!hex.ok()) return hex.status();
    absl::StatusOr<Bytes> bytes = FromHex(*hex);
    if (!bytes.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("node key ", path, ": field \"", name,
                       "\": ", bytes.status().message()));
    }
    *out = *std::move(bytes);
  }

  absl::StatusOr<const CryptoSuite*> suite = GetCryptoSuite(key.crypto_suite);
  if (!suite.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("node key ", path,
                                                   ": unknown crypto_suite \"",
                                                   key.crypto_suite, "\""));
  }
  if (key.public_key.size() != (*suite)->public_key_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("node key ", path, ": public_key has ",
                     key.public_key.size(), " bytes, ", key.crypto_suite,
                     " keys have ", (*suite)->public_key_size()));
  }
  // The suite's secret key size, from a throwaway key (the interface does
  // not state it; generating one costs microseconds).
  const size_t secret_size = (*suite)->GenerateKey().secret_key.size();
  if (key.secret_key.size() != secret_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node key ", path, ": secret_key has ", key.secret_key.size(),
        " bytes, ", key.crypto_suite, " secret keys have ", secret_size));
  }
  // The two halves must belong together: sign and verify a probe message.
  static constexpr std::string_view kProbe = "consortia/node-key-check/v1";
  absl::StatusOr<Bytes> sig = (*suite)->Sign(key.secret_key, AsBytes(kProbe));
  if (!sig.ok() || !(*suite)->Verify(key.public_key, AsBytes(kProbe), *sig)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node key ", path, ": secret_key does not match public_key"));
  }
  return key;
}

absl::Status CheckKeyFileMode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return ErrnoStatus(errno, "cannot stat", path);
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o",
                  static_cast<unsigned>(st.st_mode & 07777));
    return absl::FailedPreconditionError(absl::StrCat(
        "key file ", path, " is accessible by group or others (mode ", mode,
        "); it holds a secret key: chmod 600 ", path));
  }
  return absl::OkStatus();
}

std::string NodeKeyToJson(const NodeKey& k) {
  nlohmann::json j = {{"crypto_suite", k.crypto_suite},
                      {"public_key", ToHex(k.public_key)},
                      {"secret_key", ToHex(k.secret_key)}};
  // Replace (never throw on) invalid UTF-8 in the suite name.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace consortia
