#include "commands.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api_access.h"
#include "app_words.h"
#include "args.h"
#include "consortia/config.h"
#include "consortia/crypto_suite.h"
#include "consortia/genesis_file.h"
#include "consortia/http_client.h"
#include "consortia/proof_bundle.h"
#include "consortia/tx_json.h"
#include "consortia/types.h"
#include "nlohmann/json.hpp"

namespace consortia::cli {
namespace {

constexpr char kDefaultApi[] = "http://127.0.0.1:26657";

}  // namespace

int Fail(const absl::Status& s) {
  // The api's certificate was refused: say how to trust a private CA.
  const bool cert =
      s.message().find("certificate verify failed") != std::string_view::npos;
  std::fprintf(stderr, "consortia: %s%s\n", std::string(s.message()).c_str(),
               cert ? " (to trust a private CA: --tls-ca-file FILE or "
                      "CONSORTIA_TLS_CA_FILE)"
                    : "");
  return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

std::string ApiUrl(const Args& args) {
  const char* env = std::getenv("CONSORTIA_API");
  return args.Get("api", env != nullptr && *env != '\0' ? env : kDefaultApi);
}

absl::StatusOr<HttpTarget> ApiTarget(const Args& args) {
  auto target = ParseHttpUrl(ApiUrl(args));
  if (!target.ok()) return target.status();
  const char* ca_env = std::getenv("CONSORTIA_TLS_CA_FILE");
  target->tls_ca_file =
      args.Get("tls-ca-file", ca_env != nullptr ? ca_env : "");
  if (!target->tls_ca_file.empty() && !target->tls) {
    return absl::InvalidArgumentError(
        "--tls-ca-file (CONSORTIA_TLS_CA_FILE) needs an https:// --api");
  }
  const char* env = std::getenv("CONSORTIA_API_KEY");
  std::string key = args.Get("api-key", env != nullptr ? env : "");
  if (!key.empty()) {
    target->headers.emplace_back("Authorization", "Bearer " + key);
  }
  return target;
}

std::string KeyHint(int status) {
  if (status != 401 && status != 403) return "";
  return " (give an API key with --api-key KEY or CONSORTIA_API_KEY; consortia "
         "apikey create makes one)";
}

absl::StatusOr<nlohmann::json> GetJson(const HttpTarget& api,
                                       const std::string& path) {
  auto res = HttpCall(api, "GET", path);
  if (!res.ok()) return res.status();
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status != 200) {
    std::string detail =
        j.is_object() ? j.value("detail", res->body) : res->body;
    if (res->status == 404) return absl::NotFoundError(detail);
    return absl::UnavailableError(absl::StrCat("HTTP ", res->status, " from ",
                                               path, ": ", detail,
                                               KeyHint(res->status)));
  }
  if (j.is_discarded()) {
    return absl::InternalError(absl::StrCat("non-JSON answer from ", path));
  }
  return j;
}

namespace {

// Follows the api's event stream (GET /v1/events?from_height=...) until the
// tx event of `tx_hash` arrives. NotFound-free: DeadlineExceeded when
// `deadline` passes first, Unavailable when the stream cannot be followed
// (not reachable, refused, cut off): the caller then polls instead.
absl::Status WaitForTxEvent(const HttpTarget& api, uint64_t from_height,
                            const std::string& tx_hash, absl::Time deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  if (getaddrinfo(api.host.c_str(), std::to_string(api.port).c_str(), &hints,
                  &addrs) != 0 ||
      addrs == nullptr) {
    return absl::UnavailableError("cannot resolve the api host");
  }
  int fd = -1;
  for (addrinfo* a = addrs; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(addrs);
  if (fd < 0) return absl::UnavailableError("cannot reach the api");
  // HTTP/1.0: the body comes unchunked and ends with the connection.
  std::string req = absl::StrCat("GET ", api.base_path,
                                 "/v1/events?from_height=", from_height,
                                 " HTTP/1.0\r\nHost: ", api.host, "\r\n");
  for (const auto& [name, value] : api.headers) {
    absl::StrAppend(&req, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&req, "Accept: text/event-stream\r\n\r\n");
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return absl::UnavailableError("cannot send to the api");
  }
  std::string buf;
  bool header_done = false;
  const std::string needle = absl::StrCat("\"tx_hash\":\"", tx_hash, "\"");
  while (true) {
    int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      ::close(fd);
      return absl::DeadlineExceededError("no event in time");
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000))) <= 0) {
      continue;
    }
    char chunk[8192];
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      ::close(fd);
      return absl::UnavailableError("the event stream ended");
    }
    buf.append(chunk, static_cast<size_t>(n));
    if (!header_done) {
      size_t end = buf.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      if (buf.compare(0, 12, "HTTP/1.1 200") != 0 &&
          buf.compare(0, 12, "HTTP/1.0 200") != 0) {
        ::close(fd);
        return absl::UnavailableError("the api refused the event stream");
      }
      buf.erase(0, end + 4);
      header_done = true;
    }
    size_t end;
    while ((end = buf.find("\n\n")) != std::string::npos) {
      std::string event = buf.substr(0, end);
      buf.erase(0, end + 2);
      if (event.find("event: tx\n") != std::string::npos &&
          event.find(needle) != std::string::npos) {
        ::close(fd);
        return absl::OkStatus();
      }
      if (event.find("event: cutoff\n") != std::string::npos) {
        ::close(fd);
        return absl::UnavailableError("the api cut the event stream off");
      }
    }
  }
}

// Loads a key file (strictly, LoadNodeKey) and warns on stderr when its
// group or others may read it.
absl::StatusOr<NodeKey> LoadKeyFile(const std::string& path) {
  absl::StatusOr<NodeKey> key = LoadNodeKey(path);
  if (!key.ok()) return key.status();
  if (absl::Status mode = CheckKeyFileMode(path); !mode.ok()) {
    std::fprintf(stderr, "consortia: warning: %s\n",
                 std::string(mode.message()).c_str());
  }
  return key;
}

// "{i}" in `arg` replaced by `i` (the --count form of submit).
std::string WithIndex(std::string arg, uint64_t i) {
  const std::string index = std::to_string(i);
  for (size_t at = arg.find("{i}"); at != std::string::npos;
       at = arg.find("{i}", at + index.size())) {
    arg.replace(at, 3, index);
  }
  return arg;
}

// POSTs a batch body to /v1/txs:batch and prints the api's answer. The
// hashes of the txs it answered "pending", or an error (the batch was
// refused as a whole, or `pending` would be short: how many were refused).
absl::StatusOr<std::vector<std::string>> PostBatch(const HttpTarget& api,
                                                   const std::string& body) {
  auto res = HttpCall(api, "POST", "/v1/txs:batch", body);
  if (!res.ok()) return res.status();
  std::printf("%s\n", res->body.c_str());
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status != 200) {
    std::string detail =
        j.is_object() ? j.value("detail", res->body) : res->body;
    return absl::UnavailableError(
        absl::StrCat("the api refused the batch (HTTP ", res->status,
                     "): ", detail, KeyHint(res->status)));
  }
  if (!j.is_object() || !j.contains("results") || !j["results"].is_array()) {
    return absl::InternalError("unexpected batch answer from the api");
  }
  std::vector<std::string> pending;
  size_t refused = 0;
  for (const nlohmann::json& r : j["results"]) {
    if (r.is_object() && r.value("status", "") == "pending") {
      pending.push_back(r.value("tx_hash", ""));
    } else {
      ++refused;
    }
  }
  if (refused > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(refused, " of ", j["results"].size(),
                     " txs were refused (see their problems above)"));
  }
  return pending;
}

}  // namespace

absl::Status WriteNewKeyFile(const std::string& path, std::string_view data) {
  // Written to a temporary file (mode 0600, from mkostemp) and linked to its
  // name: link() fails if the name exists, so nothing is ever overwritten,
  // and the name never shows a half-written file.
  std::string tmp = path + ".tmpXXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create a file beside ", path, ": ", std::strerror(errno)));
  }
  auto fail = [&](absl::string_view what, int err) {
    if (fd >= 0) close(fd);
    unlink(tmp.c_str());
    return absl::InternalError(
        absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(err)));
  };
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", errno);
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("fsync", errno);
  if (close(fd) != 0) {
    fd = -1;
    return fail("close", errno);
  }
  fd = -1;
  if (link(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    if (err == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat(path,
                       " already exists; keygen never overwrites a key "
                       "(move it away first if you mean to replace it)"));
    }
    return absl::InternalError(
        absl::StrCat("cannot create ", path, ": ", std::strerror(err)));
  }
  unlink(tmp.c_str());
  return absl::OkStatus();
}

int KeygenCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, {"out", "suite"}, {});
  if (!args.ok()) return Fail(args.status());
  auto out = args->Require("out");
  if (!out.ok()) return Fail(out.status());
  auto suite = GetCryptoSuite(args->Get("suite", "ed25519-sha256"));
  if (!suite.ok()) return Fail(suite.status());
  KeyPair kp = (*suite)->GenerateKey();
  NodeKey key{std::string((*suite)->name()), kp.public_key, kp.secret_key};
  if (auto s = WriteNewKeyFile(*out, NodeKeyToJson(key)); !s.ok()) {
    return Fail(s);
  }
  std::printf("%s\n", ToHex(kp.public_key).c_str());
  return 0;
}

int GenesisCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, {"chain-id", "out", "suite"}, {});
  if (!args.ok()) return Fail(args.status());
  auto chain_id = args->Require("chain-id");
  auto out = args->Require("out");
  if (!chain_id.ok()) return Fail(chain_id.status());
  if (!out.ok()) return Fail(out.status());
  if (args->positional().empty()) {
    return Fail(
        absl::InvalidArgumentError("name at least one validator key file"));
  }
  Genesis g;
  g.chain_id = *chain_id;
  g.genesis_time_ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  for (size_t i = 0; i < args->positional().size(); ++i) {
    auto key = LoadKeyFile(args->positional()[i]);
    if (!key.ok()) return Fail(key.status());
    // The chain's suite: --suite, else the first key's; every validator key
    // must be of it.
    if (i == 0) g.crypto_suite = args->Get("suite", key->crypto_suite);
    if (key->crypto_suite != g.crypto_suite) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          args->positional()[i], ": a key of suite ", key->crypto_suite,
          ", but the chain's suite is ", g.crypto_suite)));
    }
    g.validators.push_back(
        Validator{absl::StrCat("validator", i), key->public_key, 1});
  }
  std::string json = GenesisToJson(g);
  if (auto parsed = ParseGenesisJson(json); !parsed.ok()) {
    return Fail(parsed.status());
  }
  if (auto s = WriteFileAtomic(*out, json); !s.ok()) return Fail(s);
  std::printf("wrote %s with %zu validator(s)\n", out->c_str(),
              g.validators.size());
  return 0;
}

int SubmitCommand(const std::vector<std::string>& argv) {
  return SubmitTx(argv, /*refusal_fails=*/false);
}

int SubmitTx(const std::vector<std::string>& argv, bool refusal_fails) {
  auto args =
      Args::Parse(argv,
                  {"api", "api-key", "tls-ca-file", "genesis", "key", "app",
                   "method", "valid-for", "nonce", "timeout", "count"},
                  {"wait", "dry-run"});
  if (!args.ok()) return Fail(args.status());
  std::string api_url = ApiUrl(*args);
  auto api = ApiTarget(*args);
  if (!api.ok()) return Fail(api.status());
  // The chain id comes from the genesis the user trusts, never from the
  // node: a node that lied about it could otherwise have the key sign a tx
  // for another chain.
  auto genesis_path = args->Require("genesis");
  if (!genesis_path.ok()) {
    return Fail(absl::InvalidArgumentError(
        "--genesis is required: the chain id the tx is signed for comes from "
        "the genesis file, not from the node"));
  }
  auto key_path = args->Require("key");
  auto app = args->Require("app");
  auto method = args->Require("method");
  if (!key_path.ok()) return Fail(key_path.status());
  if (!app.ok()) return Fail(app.status());
  if (!method.ok()) return Fail(method.status());
  auto valid_for = args->GetU64("valid-for", 100);
  if (!valid_for.ok()) return Fail(valid_for.status());
  // --count N: N txs, posted as one batch.
  auto count = args->GetU64("count", 0);
  if (!count.ok()) return Fail(count.status());
  if (args->Has("count") && *count == 0) {
    return Fail(absl::InvalidArgumentError("--count must be at least 1"));
  }
  auto genesis = LoadGenesis(*genesis_path);
  if (!genesis.ok()) return Fail(genesis.status());
  auto key = LoadKeyFile(*key_path);
  if (!key.ok()) return Fail(key.status());
  if (key->crypto_suite != genesis->crypto_suite) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("the key is a ", key->crypto_suite, " key, but chain ",
                     genesis->chain_id, " uses ", genesis->crypto_suite)));
  }
  auto suite = GetCryptoSuite(key->crypto_suite);
  if (!suite.ok()) return Fail(suite.status());

  // The current height comes from the latest block (a wrong one only makes
  // the tx expire early or be refused as beyond the replay window); its
  // chain id must be the genesis's.
  auto latest = GetJson(*api, "/v1/blocks/latest");
  if (!latest.ok()) return Fail(latest.status());
  Transaction tx;
  tx.chain_id = genesis->chain_id;
  uint64_t height = 0;
  std::string node_chain_id;
  try {
    node_chain_id = (*latest)["header"]["chain_id"].get<std::string>();
    height = (*latest)["header"]["height"].get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    return Fail(absl::InternalError(
        absl::StrCat("unexpected block JSON from the api: ", e.what())));
  }
  if (node_chain_id != genesis->chain_id) {
    return Fail(absl::FailedPreconditionError(
        absl::StrCat("the node at ", api_url, " serves chain \"", node_chain_id,
                     "\", but the genesis says \"", genesis->chain_id,
                     "\"; nothing was signed")));
  }
  std::random_device rd;
  uint64_t random_nonce = (uint64_t{rd()} << 32) | rd();
  auto nonce = args->GetU64("nonce", random_nonce);
  if (!nonce.ok()) return Fail(nonce.status());
  tx.valid_until = height + *valid_for;
  tx.sender = key->public_key;
  tx.app = *app;
  tx.method = *method;
  // The txs: one, or --count of them (nonces nonce, nonce + 1, ...; "{i}" in
  // an ARG replaced by the tx's index).
  std::vector<Transaction> txs;
  const uint64_t n = args->Has("count") ? *count : 1;
  for (uint64_t i = 0; i < n; ++i) {
    Transaction t = tx;
    t.nonce = *nonce + i;
    for (const std::string& arg : args->positional()) {
      t.args.push_back(args->Has("count") ? WithIndex(arg, i) : arg);
    }
    auto sig = (*suite)->Sign(key->secret_key, TxSignBytes(t));
    if (!sig.ok()) return Fail(sig.status());
    t.signature = *sig;
    txs.push_back(std::move(t));
  }
  std::vector<std::string> hashes;
  if (!args->Has("count")) {
    std::string json = TxToJson(txs[0]);
    if (args->Has("dry-run")) {
      std::printf("%s\n", json.c_str());
      return 0;
    }
    auto res = HttpCall(*api, "POST", "/v1/txs", json);
    if (!res.ok()) return Fail(res.status());
    std::printf("%s\n", res->body.c_str());
    if (res->status != 200 && res->status != 202) {
      // A 403 for the tx's signing key (not a member of the consortium) is
      // not about the API key.
      const bool signer_refused =
          res->body.find("/problems/unregistered-sender") != std::string::npos;
      if (!signer_refused && !KeyHint(res->status).empty()) {
        std::fprintf(stderr, "consortia: the api refused the key (HTTP %d)%s\n",
                     res->status, KeyHint(res->status).c_str());
      }
      return 1;
    }
    hashes.push_back(ToHex(TxHash(**suite, txs[0])));
  } else {
    std::string body = "{\"txs\":[";
    for (size_t i = 0; i < txs.size(); ++i) {
      if (i > 0) body += ",";
      body += TxToJson(txs[i]);
    }
    body += "]}";
    if (args->Has("dry-run")) {
      std::printf("%s\n", body.c_str());
      return 0;
    }
    auto pending = PostBatch(*api, body);
    if (!pending.ok()) return Fail(pending.status());
    hashes = *std::move(pending);
  }
  if (!args->Has("wait")) return 0;

  auto timeout = args->GetU64("timeout", 30);
  if (!timeout.ok()) return Fail(timeout.status());
  absl::Time deadline = absl::Now() + absl::Seconds(*timeout);
  // Follow the event stream from the next block until the event of the last
  // tx sent; if it cannot be followed (an older api), poll instead. Then read
  // each tx (a batch's txs may land in different blocks).
  absl::Status followed =
      WaitForTxEvent(*api, height + 1, hashes.back(), deadline);
  if (absl::IsDeadlineExceeded(followed)) {
    return Fail(absl::DeadlineExceededError(absl::StrCat(
        "tx ", hashes.back(), " not committed after ", *timeout, " s")));
  }
  size_t done = 0;  // hashes[0, done) are committed
  while (done < hashes.size() && absl::Now() < deadline) {
    auto got = GetJson(*api, "/v1/txs/" + hashes[done]);
    if (got.ok()) {
      if (hashes.size() == 1) std::printf("%s\n", got->dump(2).c_str());
      const nlohmann::json& receipt = (*got)["receipt"];
      if (refusal_fails && receipt.is_object() &&
          receipt.value("code", 0) != 0) {
        std::fprintf(stderr,
                     "consortia: tx %s committed, but its app refused it: "
                     "%s: %s\n",
                     hashes[done].c_str(),
                     receipt.value("code_name", "?").c_str(),
                     receipt.value("log", "").c_str());
        return 3;
      }
      ++done;
      continue;
    }
    if (!absl::IsNotFound(got.status())) return Fail(got.status());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (done == hashes.size()) {
    if (hashes.size() > 1) {
      std::printf("committed %zu txs\n", hashes.size());
    }
    return 0;
  }
  return Fail(absl::DeadlineExceededError(
      absl::StrCat("tx ", hashes[done], " not committed after ", *timeout,
                   " s (", done, " of ", hashes.size(), " were)")));
}

int SubmitBatchCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, {"api", "api-key"}, {});
  if (!args.ok()) return Fail(args.status());
  if (args->positional().size() != 1) {
    return Fail(absl::InvalidArgumentError(
        "usage: consortia submit-batch [--api URL] [--api-key KEY] FILE"));
  }
  auto api = ApiTarget(*args);
  if (!api.ok()) return Fail(api.status());
  auto body = ReadFile(args->positional()[0]);
  if (!body.ok()) return Fail(body.status());
  // A bare array of txs is sent as {"txs":[...]}.
  const size_t first = body->find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (*body)[first] == '[') {
    *body = absl::StrCat("{\"txs\":", *body, "}");
  }
  auto pending = PostBatch(*api, *body);
  if (!pending.ok()) return Fail(pending.status());
  return 0;
}

int ProbeCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, {"timeout"}, {});
  if (!args.ok()) return Fail(args.status());
  if (args->positional().size() != 1) {
    return Fail(absl::InvalidArgumentError("usage: consortia probe URL"));
  }
  auto timeout = args->GetU64("timeout", 5);
  if (!timeout.ok()) return Fail(timeout.status());
  const std::string& url = args->positional()[0];
  auto target = ParseHttpUrl(url);
  if (!target.ok()) return Fail(target.status());
  // The URL's path is the target's base path; the request is for it alone.
  std::string path = target->base_path.empty() ? "/" : target->base_path;
  target->base_path.clear();
  auto res = HttpCall(*target, "GET", path, "", "",
                      absl::Seconds(static_cast<int64_t>(*timeout)));
  if (!res.ok()) return Fail(res.status());
  if (res->status != 200) {
    return Fail(absl::UnavailableError(
        absl::StrCat(url, " answered HTTP ", res->status)));
  }
  return 0;
}

int GetCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(argv, {"api", "api-key", "tls-ca-file"}, {});
  if (!args.ok()) return Fail(args.status());
  const auto& pos = args->positional();
  std::string path;
  if (pos.size() == 2 && pos[0] == "tx") {
    path = "/v1/txs/" + pos[1];
  } else if (pos.size() == 2 && pos[0] == "block") {
    path = "/v1/blocks/" + pos[1];
  } else if (pos.size() == 3 && pos[0] == "state") {
    path = "/v1/state/" + pos[1] + "/" + pos[2];
  } else {
    return Fail(absl::InvalidArgumentError(
        "usage: consortia get tx HASH | block HEIGHT|latest | state APP KEY"));
  }
  auto api = ApiTarget(*args);
  if (!api.ok()) return Fail(api.status());
  auto j = GetJson(*api, path);
  if (!j.ok()) return Fail(j.status());
  std::printf("%s\n", j->dump(2).c_str());
  return 0;
}

std::string PathSegment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

namespace {

// Text when every byte is printable ASCII, else hex.
std::string Printable(const Bytes& b) {
  for (uint8_t c : b) {
    if (c < 0x20 || c > 0x7e) return absl::StrCat("0x", ToHex(b));
  }
  return absl::StrCat("\"", std::string(AsString(b)), "\"");
}

// The proof bundle of GET /v1/state/{app}/{key}[?height=H]: in the 200 body
// when the key has a value, in the 404 problem body when it has none. The
// whole body goes to *answer (its validator_changes with it).
absl::StatusOr<StateRecord> FetchStateRecord(const HttpTarget& api,
                                             const std::string& path,
                                             nlohmann::json* answer) {
  auto res = HttpCall(api, "GET", path);
  if (!res.ok()) return res.status();
  nlohmann::json& j = *answer;
  j = nlohmann::json::parse(res->body, nullptr, false);
  std::string hex;
  if (j.is_object() && j.contains("proof") && j["proof"].is_object() &&
      j["proof"].value("encoding", "") == "consortia-staterecord-v1" &&
      j["proof"].contains("hex") && j["proof"]["hex"].is_string()) {
    hex = j["proof"]["hex"].get<std::string>();
  } else {
    std::string detail =
        j.is_object() ? j.value("detail", res->body) : res->body;
    if (res->status == 404) return absl::NotFoundError(detail);
    return absl::UnavailableError(absl::StrCat("HTTP ", res->status, " from ",
                                               path, ": ", detail,
                                               KeyHint(res->status)));
  }
  auto bytes = FromHex(hex);
  if (!bytes.ok()) return bytes.status();
  return DecodeStateRecord(*bytes);
}

// The 32 bytes of a JSON hex string; throws (json) on anything else.
Hash32 JsonHash(const nlohmann::json& j) {
  auto h = HashFromHex(j.get<std::string>());
  if (!h.ok()) throw std::invalid_argument("not a hash");
  return *h;
}

// A block answer without its raw record (the api withheld the block's
// invoice txs, --api_invoice_reads=parties): its header and certificate from
// the JSON. The verifier checks them as it checks the raw record's (the
// certificate signs the header's hash).
absl::StatusOr<BlockRecord> BlockRecordFromJson(const nlohmann::json& j) {
  BlockRecord r;
  try {
    const nlohmann::json& h = j.at("header");
    BlockHeader& hdr = r.block.header;
    hdr.chain_id = h.at("chain_id").get<std::string>();
    hdr.height = h.at("height").get<uint64_t>();
    hdr.time_ms = h.at("time_ms").get<uint64_t>();
    auto proposer = FromHex(h.at("proposer").get<std::string>());
    if (!proposer.ok()) throw std::invalid_argument("proposer");
    hdr.proposer = *proposer;
    hdr.prev_hash = JsonHash(h.at("prev_hash"));
    hdr.tx_root = JsonHash(h.at("tx_root"));
    hdr.state_root = JsonHash(h.at("state_root"));
    hdr.receipts_root = JsonHash(h.at("receipts_root"));
    r.block_hash = JsonHash(j.at("block_hash"));
    const nlohmann::json& c = j.at("certificate");
    if (!c.is_null()) {
      CommitCertificate cert;
      cert.height = c.at("height").get<uint64_t>();
      cert.round = c.at("round").get<uint32_t>();
      cert.block_hash = JsonHash(c.at("block_hash"));
      for (const nlohmann::json& sig : c.at("signatures")) {
        auto bytes = FromHex(sig.at("signature").get<std::string>());
        if (!bytes.ok()) throw std::invalid_argument("signature");
        cert.sigs.push_back(
            CommitSig{sig.at("validator_index").get<uint32_t>(), *bytes});
      }
      r.cert = std::move(cert);
    }
  } catch (const std::exception&) {
    return absl::InternalError(
        "the api's block answer has neither a raw record nor a well-formed "
        "header and certificate");
  }
  return r;
}

// Block `height`'s header and certificate, from the raw record of GET
// /v1/blocks/{height} (or its JSON when the api withheld the raw record).
// NotFound while that block does not exist.
absl::StatusOr<BlockRecord> FetchBlockRecord(const HttpTarget& api,
                                             uint64_t height) {
  auto j = GetJson(api, absl::StrCat("/v1/blocks/", height));
  if (!j.ok()) return j.status();
  if (j->is_object() && j->contains("raw") && (*j)["raw"].is_null()) {
    return BlockRecordFromJson(*j);
  }
  std::string hex;
  try {
    hex = (*j)["raw"]["hex"].get<std::string>();
  } catch (const nlohmann::json::exception&) {
    return absl::InternalError("the api's block answer has no raw record");
  }
  auto bytes = FromHex(hex);
  if (!bytes.ok()) return bytes.status();
  return DecodeBlockRecord(*bytes);
}

// Completes a state record whose proof lacks the next block's header and
// certificate with those of GET /v1/blocks/{height + 1}, waiting up to
// `timeout` for that block (DeadlineExceeded after it; InvalidArgument when
// the block comes without a certificate). Nothing else is checked here: the
// verifier checks it all.
absl::Status AddCertification(const HttpTarget& api, absl::Duration timeout,
                              StateRecord* record) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!record->next_header.has_value()) {
    auto next = FetchBlockRecord(api, record->height + 1);
    if (next.ok()) {
      if (!next->cert.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "block ", record->height + 1, " comes without its certificate"));
      }
      record->next_header = next->block.header;
      record->next_cert = *next->cert;
      return absl::OkStatus();
    }
    if (!absl::IsNotFound(next.status())) return next.status();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the state after block ", record->height,
          " is proven but not yet certified: block ", record->height + 1,
          " did not appear within ", absl::FormatDuration(timeout)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<nlohmann::json> CompleteStateAnswer(const HttpTarget& api,
                                                   nlohmann::json answer,
                                                   absl::Duration timeout) {
  if (!answer.is_object() || !answer["proof"].is_object() ||
      !answer["proof"]["hex"].is_string()) {
    return absl::InternalError("the api's answer has no state proof");
  }
  auto bytes = FromHex(answer["proof"]["hex"].get<std::string>());
  if (!bytes.ok()) return bytes.status();
  auto record = DecodeStateRecord(*bytes);
  if (!record.ok()) return record.status();
  if (auto s = AddCertification(api, timeout, &*record); !s.ok()) return s;
  answer["proof"]["hex"] = ToHex(EncodeStateRecord(*record));
  answer["certified"] = true;
  return answer;
}

namespace {

int Rejected(const absl::Status& s) {
  std::fprintf(stderr, "consortia: proof REJECTED: %s\n",
               std::string(s.message()).c_str());
  return 1;
}

// The chain's validator sets, followed from the genesis through the
// answer's "validator_changes" (the hex of each change's state record, in
// height order; absent on a chain whose set never changed), each change
// checked (FollowValidatorChanges); then one line per change. An error
// (InvalidArgument for a malformed list) names the change that fails.
absl::StatusOr<std::vector<ValidatorEpoch>> FollowAnswerChanges(
    const nlohmann::json& answer, const Genesis& genesis,
    const CryptoSuite& suite) {
  std::vector<StateRecord> changes;
  if (answer.is_object() && answer.contains("validator_changes")) {
    const nlohmann::json& list = answer["validator_changes"];
    if (!list.is_array()) {
      return absl::InvalidArgumentError(
          "the answer's validator_changes is not a list");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      absl::StatusOr<Bytes> bytes =
          list[i].is_string()
              ? FromHex(list[i].get<std::string>())
              : absl::StatusOr<Bytes>(
                    absl::InvalidArgumentError("not a hex string"));
      absl::StatusOr<StateRecord> rec =
          bytes.ok() ? DecodeStateRecord(*bytes)
                     : absl::StatusOr<StateRecord>(bytes.status());
      if (!rec.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "validator_changes[", i, "]: ", rec.status().message()));
      }
      changes.push_back(*std::move(rec));
    }
  }
  absl::StatusOr<std::vector<ValidatorEpoch>> epochs =
      FollowValidatorChanges(suite, genesis, changes);
  if (!epochs.ok()) return epochs.status();
  for (size_t i = 0; i < changes.size(); ++i) {
    const ValidatorEpoch& e = (*epochs)[i + 1];
    std::printf(
        "validator set changed at height %llu (committed at %llu): %zu "
        "validators\n",
        static_cast<unsigned long long>(e.from_height),
        static_cast<unsigned long long>(changes[i].height),
        e.validators.size());
  }
  return epochs;
}

// "OK: ..." for a proven and certified state record, with what an app's
// record says in words.
void PrintProvenState(const std::vector<ValidatorEpoch>& epochs,
                      const std::string& app, const std::string& key,
                      const StateRecord& record) {
  const std::string what =
      record.found ? absl::StrCat(app, "/", key, " = ", Printable(record.value),
                                  " (owner ", ToHex(record.owner), ")")
                   : absl::StrCat(app, "/", key, " has no value");
  std::printf(
      "OK: %s in the state after block %llu (root %s), certified by block "
      "%llu (%zu of %zu validators)\n",
      what.c_str(), static_cast<unsigned long long>(record.height),
      ToHex(record.state_root).c_str(),
      static_cast<unsigned long long>(record.next_header->height),
      record.next_cert->sigs.size(),
      ValidatorsAt(epochs, record.next_header->height).size());
  if (record.found) {
    std::printf("proven: %s\n",
                DescribeRecord(app, key, AsString(record.value)).c_str());
  }
}

// `verify --state APP KEY`: the value (or absence) of APP/KEY in the latest
// state, proven against the state root that the next block's header
// carries, that header certified by the genesis validators. The state after
// the latest block is certified only once the next block exists: until then
// the command waits for it (at most --timeout seconds).
int VerifyState(const Args& args, const Genesis& genesis,
                const CryptoSuite& suite) {
  if (args.positional().size() != 2) {
    return Fail(absl::InvalidArgumentError(
        "usage: consortia verify --genesis FILE --state APP KEY"));
  }
  const std::string& app = args.positional()[0];
  const std::string& key = args.positional()[1];
  auto target = ApiTarget(args);
  if (!target.ok()) return Fail(target.status());
  const HttpTarget& api = *target;
  auto timeout = args.GetU64("timeout", 30);
  if (!timeout.ok()) return Fail(timeout.status());

  nlohmann::json answer;
  auto record = FetchStateRecord(
      api, "/v1/state/" + PathSegment(app) + "/" + PathSegment(key), &answer);
  if (!record.ok()) return Fail(record.status());
  // From here on nothing the api said is trusted: only the proof bytes, the
  // validator changes' bytes, the block bytes and the genesis.
  auto epochs = FollowAnswerChanges(answer, genesis, suite);
  if (!epochs.ok()) return Rejected(epochs.status());
  if (auto s =
          VerifyStateRecord(suite, genesis, *epochs, app, key, *record, false);
      !s.ok()) {
    return Rejected(s);
  }
  if (auto s = AddCertification(api, absl::Seconds(*timeout), &*record);
      !s.ok()) {
    return absl::IsInvalidArgument(s) ? Rejected(s) : Fail(s);
  }
  if (auto s =
          VerifyStateRecord(suite, genesis, *epochs, app, key, *record, true);
      !s.ok()) {
    return Rejected(s);
  }
  PrintProvenState(*epochs, app, key, *record);
  return 0;
}

// `verify --answer FILE`: an answer of /v1/state/{app}/{key} or of a
// /v1/apps route saved earlier (`consortia invoice show --out FILE`),
// checked offline: its proof must carry the next block's header and
// certificate, and nothing but the genesis is trusted.
int VerifyAnswer(const Args& args, const Genesis& genesis,
                 const CryptoSuite& suite) {
  auto text = ReadFile(args.Get("answer"));
  if (!text.ok()) return Fail(text.status());
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || !j["app"].is_string() || !j["key"].is_string() ||
      !j["proof"].is_object() || !j["proof"]["hex"].is_string() ||
      j["proof"].value("encoding", "") != "consortia-staterecord-v1") {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        args.Get("answer"),
        " is not a saved state answer: it needs app, key and proof {encoding: "
        "consortia-staterecord-v1, hex}")));
  }
  const std::string app = j["app"].get<std::string>();
  std::string key = j["key"].get<std::string>();
  if (j.value("key_encoding", "utf-8") == "hex") {
    auto raw = FromHex(key);
    if (!raw.ok()) return Rejected(raw.status());
    key = std::string(AsString(*raw));
  }
  auto bytes = FromHex(j["proof"]["hex"].get<std::string>());
  if (!bytes.ok()) return Rejected(bytes.status());
  auto record = DecodeStateRecord(*bytes);
  if (!record.ok()) return Rejected(record.status());
  if (!record->next_header.has_value()) {
    return Rejected(absl::FailedPreconditionError(absl::StrCat(
        "the saved proof is of the state after block ", record->height,
        ", which block ", record->height + 1,
        " certifies, and that block was not made when it was saved; save "
        "the answer again, or verify online with --state")));
  }
  auto epochs = FollowAnswerChanges(j, genesis, suite);
  if (!epochs.ok()) return Rejected(epochs.status());
  if (auto s =
          VerifyStateRecord(suite, genesis, *epochs, app, key, *record, true);
      !s.ok()) {
    return Rejected(s);
  }
  // What the answer shows a reader must be what was proven.
  if (j.contains("value")) {
    std::string shown = j["value"].is_string() ? j["value"].get<std::string>()
                                               : std::string("\x01");
    if (j.value("value_encoding", "utf-8") == "hex") {
      auto raw = FromHex(shown);
      shown = raw.ok() ? std::string(AsString(*raw)) : std::string("\x01");
    }
    if (!record->found || shown != AsString(record->value)) {
      return Rejected(absl::InvalidArgumentError(
          "the answer's value is not the value its proof proves"));
    }
  }
  PrintProvenState(*epochs, app, key, *record);
  return 0;
}

}  // namespace

int VerifyCommand(const std::vector<std::string>& argv) {
  auto args = Args::Parse(
      argv, {"api", "api-key", "tls-ca-file", "genesis", "timeout", "answer"},
      {"state"});
  if (!args.ok()) return Fail(args.status());
  auto genesis_path = args->Require("genesis");
  if (!genesis_path.ok()) return Fail(genesis_path.status());
  if (!args->Has("state") && !args->Has("answer") &&
      args->positional().size() != 1) {
    return Fail(absl::InvalidArgumentError(
        "usage: consortia verify --genesis FILE TXHASH | --state APP KEY | "
        "--answer FILE"));
  }
  auto genesis = LoadGenesis(*genesis_path);
  if (!genesis.ok()) return Fail(genesis.status());
  auto suite = GetCryptoSuite(genesis->crypto_suite);
  if (!suite.ok()) return Fail(suite.status());
  if (args->Has("state")) return VerifyState(*args, *genesis, **suite);
  if (args->Has("answer")) return VerifyAnswer(*args, *genesis, **suite);
  auto hash = HashFromHex(args->positional()[0]);
  if (!hash.ok()) return Fail(hash.status());

  auto api = ApiTarget(*args);
  if (!api.ok()) return Fail(api.status());
  auto j = GetJson(*api, "/v1/txs/" + args->positional()[0]);
  if (!j.ok()) return Fail(j.status());
  std::string proof_hex;
  try {
    proof_hex = (*j)["proof"]["hex"].get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    return Fail(absl::InternalError("the api's answer has no proof"));
  }
  // From here on nothing the api said is trusted: only the proof bytes and
  // the genesis.
  auto bytes = FromHex(proof_hex);
  if (!bytes.ok()) return Fail(bytes.status());
  auto record = DecodeTxRecord(*bytes);
  if (!record.ok()) return Fail(record.status());
  auto epochs = FollowAnswerChanges(*j, *genesis, **suite);
  if (!epochs.ok()) return Rejected(epochs.status());
  if (auto s = VerifyTxRecord(**suite, *genesis, *epochs, *record, *hash);
      !s.ok()) {
    return Rejected(s);
  }
  std::printf("OK: tx %s is in block %llu (certified by %zu of %zu validators)",
              args->positional()[0].c_str(),
              static_cast<unsigned long long>(record->height),
              record->cert.sigs.size(),
              ValidatorsAt(*epochs, record->height).size());
  if (record->next_header.has_value()) {
    std::printf("; receipt %s certified in block %llu\n",
                std::string(ExecCodeName(record->receipt.code)).c_str(),
                static_cast<unsigned long long>(record->next_header->height));
  } else {
    std::printf("; its receipt is certified by the next block, not yet made\n");
  }
  return 0;
}

}  // namespace consortia::cli
