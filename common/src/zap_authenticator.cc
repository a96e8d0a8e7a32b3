#include "consortia/zap_authenticator.h"

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "p2p_internal.h"
#include "poll_loop.h"
#include "spdlog/spdlog.h"
#include "zmq.hpp"

namespace consortia {
namespace {

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
// ZAP requests carry 7 frames for CURVE.
constexpr size_t kMaxZapFrames = 16;

using AllowMap = std::map<CurveKey, std::string>;

absl::StatusOr<AllowMap> BuildAllowMap(std::vector<AllowedKey> allowed) {
  AllowMap map;
  for (AllowedKey& a : allowed) {
    if (a.node_id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("zap: the allow-list entry for key ",
                       CurveKeyToZ85(a.public_key), " has no node id"));
    }
    auto [it, inserted] = map.emplace(a.public_key, a.node_id);
    if (!inserted && it->second != a.node_id) {
      return absl::InvalidArgumentError(absl::StrCat(
          "zap: key ", CurveKeyToZ85(a.public_key), " is listed for both \"",
          it->second, "\" and \"", a.node_id, "\""));
    }
  }
  return map;
}

class ZapAuthenticatorImpl final : public ZapAuthenticator {
 public:
  ZapAuthenticatorImpl(zmq::context_t& ctx, zmq::socket_t rep,
                       std::string domain, ZapMetrics* metrics, AllowMap map)
      : ctx_(&ctx),
        rep_(std::move(rep)),
        domain_(std::move(domain)),
        metrics_(metrics),
        allowed_(std::move(map)) {}

  ~ZapAuthenticatorImpl() override {
    loop_.Stop();
    rep_.close();  // when the loop never ran; otherwise already closed
  }

  bool ok() const { return loop_.ok(); }
  void Start() {
    loop_.Watch(rep_, [this] { ServeRequests(); });
    // Closed on the loop's thread so that a terminated context can finish
    // even while this object is still referenced.
    loop_.Start([this] { rep_.close(); });
  }

  absl::Status SetAllowList(std::vector<AllowedKey> allowed) override {
    absl::StatusOr<AllowMap> map = BuildAllowMap(std::move(allowed));
    if (!map.ok()) return map.status();
    absl::MutexLock l(&mu_);
    allowed_ = *std::move(map);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> NodeIdOf(const CurveKey& key) const override {
    absl::MutexLock l(&mu_);
    auto it = allowed_.find(key);
    if (it == allowed_.end()) {
      return absl::NotFoundError(
          absl::StrCat("zap: key ", CurveKeyToZ85(key), " is not allowed"));
    }
    return it->second;
  }

  void RefuseUntil(const CurveKey& key, absl::Time until) override {
    absl::MutexLock l(&mu_);
    refused_until_[key] = until;
  }

  const std::string& domain() const override { return domain_; }
  const zmq::context_t* context() const override { return ctx_; }
  uint64_t accepted() const override { return accepted_.load(); }
  uint64_t refused() const override { return refused_.load(); }

 private:
  struct Answer {
    std::string code;
    std::string text;
    std::string user_id;
  };

  void ServeRequests() {
    std::vector<zmq::message_t> frames;
    bool too_many;
    for (int i = 0; i < kMaxBatchPerWake && !loop_.stopping(); ++i) {
      if (!RecvMultipart(rep_, &frames, kMaxZapFrames, &too_many)) {
        return;
      }
      std::string request_id =
          frames.size() >= 2 ? frames[1].to_string() : std::string();
      Answer answer = Decide(frames, too_many);
      if (answer.code == "200") {
        accepted_.fetch_add(1);
        if (metrics_ != nullptr) metrics_->Accepted();
      } else {
        refused_.fetch_add(1);
        if (metrics_ != nullptr) metrics_->Refused();
      }
      // A REP socket must answer before it can read the next request.
      std::array<std::string, 6> reply = {
          "1.0", request_id, answer.code, answer.text, answer.user_id, ""};
      for (size_t f = 0; f < reply.size(); ++f) {
        rep_.send(zmq::buffer(reply[f]), f + 1 < reply.size()
                                             ? zmq::send_flags::sndmore
                                             : zmq::send_flags::none);
      }
    }
  }

  // Frames (RFC 27): version, request id, domain, address, routing id,
  // mechanism, credentials...
  Answer Decide(const std::vector<zmq::message_t>& frames, bool too_many) {
    if (too_many || frames.size() < 6 || frames[0].to_string_view() != "1.0") {
      LogRefusal("a malformed ZAP request", "");
      return {"500", "malformed ZAP request", ""};
    }
    std::string_view domain = frames[2].to_string_view();
    std::string_view address = frames[3].to_string_view();
    std::string_view mechanism = frames[5].to_string_view();
    if (mechanism != "CURVE" || frames.size() != 7 ||
        frames[6].size() != CurveKey().size()) {
      LogRefusal(absl::StrCat("mechanism ", std::string(mechanism)), address);
      return {"400", "only CURVE is accepted", ""};
    }
    if (domain != domain_) {
      LogRefusal(absl::StrCat("ZAP domain \"", std::string(domain), "\""),
                 address);
      return {"400", "unknown ZAP domain", ""};
    }
    CurveKey key;
    std::memcpy(key.data(), frames[6].data(), key.size());
    {
      absl::MutexLock l(&mu_);
      if (auto r = refused_until_.find(key); r != refused_until_.end()) {
        if (absl::Now() < r->second) {
          LogRefusal(
              absl::StrCat("backed-off key ", CurveKeyToZ85(key), " (abuse)"),
              address);
          return {"400", "backed off", ""};
        }
        refused_until_.erase(r);
      }
      auto it = allowed_.find(key);
      if (it != allowed_.end()) return {"200", "OK", it->second};
    }
    LogRefusal(absl::StrCat("key ", CurveKeyToZ85(key)), address);
    return {"400", "key not allowed", ""};
  }

  // Thread of the loop only. A peer that keeps retrying is refused at every
  // reconnect, so the log says so at most once per kLogEvery.
  void LogRefusal(const std::string& what, std::string_view address) {
    absl::Time now = absl::Now();
    ++suppressed_;
    if (now - last_log_ < p2p_internal::kLogEvery) return;
    spdlog::warn("p2p: refused {} from {} ({} refusal(s) since last report)",
                 what, address.empty() ? "?" : std::string(address),
                 suppressed_);
    last_log_ = now;
    suppressed_ = 0;
  }

  const zmq::context_t* const ctx_;
  zmq::socket_t rep_;  // the loop's once started
  const std::string domain_;
  ZapMetrics* const metrics_;
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};

  mutable absl::Mutex mu_;
  AllowMap allowed_ ABSL_GUARDED_BY(mu_);
  // Keys refused for a while (RefuseUntil); at most one per allowed key.
  std::map<CurveKey, absl::Time> refused_until_ ABSL_GUARDED_BY(mu_);

  // Loop thread only.
  absl::Time last_log_ = absl::InfinitePast();
  uint64_t suppressed_ = 0;

  PollLoop loop_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<ZapAuthenticator>> StartZapAuthenticator(
    zmq::context_t& ctx, std::vector<AllowedKey> allowed, std::string domain,
    ZapMetrics* metrics) {
  if (domain.empty()) {
    return absl::InvalidArgumentError("zap: the domain is empty");
  }
  absl::StatusOr<AllowMap> map = BuildAllowMap(std::move(allowed));
  if (!map.ok()) return map.status();
  try {
    zmq::socket_t rep(ctx, zmq::socket_type::rep);
    rep.set(zmq::sockopt::linger, 0);
    try {
      rep.bind(kZapEndpoint);
    } catch (const zmq::error_t& e) {
      if (e.num() == EADDRINUSE) {
        return absl::AlreadyExistsError(
            "zap: this zmq context already has a ZAP handler (one per "
            "context)");
      }
      return p2p_internal::SocketError(e, "cannot bind the ZAP endpoint");
    }
    auto zap = std::make_shared<ZapAuthenticatorImpl>(
        ctx, std::move(rep), std::move(domain), metrics, *std::move(map));
    if (!zap->ok()) {
      return absl::ResourceExhaustedError("zap: cannot create an eventfd");
    }
    zap->Start();
    return zap;
  } catch (const zmq::error_t& e) {
    return p2p_internal::SocketError(e, "cannot create the ZAP socket");
  }
}

}  // namespace consortia
