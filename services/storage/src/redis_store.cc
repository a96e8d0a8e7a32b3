#include "redis_store.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <bitset>
#include <charconv>
#include <cstring>
#include <optional>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "consortia/log.h"

namespace consortia::storage {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const {
    if (c != nullptr) redisFree(c);
  }
};
// A connection and its CLIENT ID (0 when Redis would not tell it).
struct Conn {
  std::unique_ptr<redisContext, ContextDeleter> ctx;
  int64_t client_id = 0;
  redisContext* get() const { return ctx.get(); }
  redisContext* operator->() const { return ctx.get(); }
};

// Reads the ZRANGEBYLEX page and the values of its keys in one atomic step:
// KEYS = index, data; ARGV = min, max, count. Returns {keys, values}.
constexpr char kPageScript[] =
    "local ks = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], "
    "'LIMIT', 0, tonumber(ARGV[3]))\n"
    "if #ks == 0 then return {ks, ks} end\n"
    "return {ks, redis.call('HMGET', KEYS[2], unpack(ks))}\n";

timeval TimevalOf(absl::Duration d) {
  timeval tv{};
  const int64_t us = std::max<int64_t>(absl::ToInt64Microseconds(d), 1000);
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}

absl::string_view Sv(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

std::string_view ReplyText(const redisReply* r) {
  return std::string_view(r->str, r->len);
}

// A broken connection (no reply): Unavailable, or DeadlineExceeded when the
// socket timed out.
absl::Status ConnError(const redisContext* c, absl::string_view where,
                       absl::string_view what) {
  const std::string why =
      c == nullptr ? "cannot allocate a connection" : std::string(c->errstr);
  std::string msg = absl::StrCat("redis ", where, ": ", what, ": ", why);
  if (c != nullptr && c->err == REDIS_ERR_IO &&
      (absl::StrContains(why, "temporarily unavailable") ||
       absl::StrContains(why, "timed out"))) {
    return absl::DeadlineExceededError(msg);
  }
  return absl::UnavailableError(msg);
}

// An error reply from Redis.
absl::Status ReplyError(std::string_view err, absl::string_view where,
                        absl::string_view what) {
  std::string msg = absl::StrCat("redis ", where, ": ", what, ": ", Sv(err));
  for (const char* p : {"LOADING", "READONLY", "MASTERDOWN", "BUSY", "TRYAGAIN",
                        "CLUSTERDOWN", "NOREPLICAS"}) {
    if (absl::StartsWith(Sv(err), p)) return absl::UnavailableError(msg);
  }
  if (absl::StartsWith(Sv(err), "OOM") ||
      absl::StartsWith(Sv(err), "MISCONF")) {
    return absl::ResourceExhaustedError(msg);
  }
  if (absl::StartsWith(Sv(err), "WRONGTYPE")) return absl::DataLossError(msg);
  if (absl::StartsWith(Sv(err), "NOAUTH") ||
      absl::StartsWith(Sv(err), "WRONGPASS") ||
      absl::StartsWith(Sv(err), "NOPERM")) {
    return absl::PermissionDeniedError(msg);
  }
  return absl::InternalError(msg);
}

// The smallest string greater than every string that starts with `prefix`,
// or nullopt when there is none (the prefix is all 0xff bytes).
std::optional<std::string> PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xff) {
    s.pop_back();
  }
  if (s.empty()) return std::nullopt;
  s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
  return s;
}

// One command given as binary-safe arguments (views: the bytes must outlive
// the Args).
class Args {
 public:
  void Add(std::string_view a) { args_.push_back(a); }
  size_t argc() const { return args_.size(); }

  // Appends the command to `out` in the Redis protocol (RESP): "*argc",
  // then each argument as "$len" and its bytes, each part ending in CRLF.
  // The same bytes as hiredis's redisFormatCommandArgv, without its
  // printf per argument, which took ~10% of a block commit's CPU (a block
  // is tens of thousands of arguments).
  void AppendTo(std::string* out) const {
    size_t bytes = kHeaderBytes;
    for (std::string_view a : args_) bytes += kHeaderBytes + a.size() + 2;
    out->reserve(out->size() + bytes);
    AppendHeader('*', args_.size(), out);
    for (std::string_view a : args_) {
      AppendHeader('$', a.size(), out);
      out->append(a);
      out->append("\r\n");
    }
  }

 private:
  // A tag, up to 20 digits and CRLF.
  static constexpr size_t kHeaderBytes = 23;
  static void AppendHeader(char tag, size_t n, std::string* out) {
    char buf[kHeaderBytes];
    buf[0] = tag;
    char* end = std::to_chars(buf + 1, buf + sizeof(buf) - 2, n).ptr;
    *end++ = '\r';
    *end++ = '\n';
    out->append(buf, static_cast<size_t>(end - buf));
  }

  std::vector<std::string_view> args_;
};

class RedisStore;

// An iterator that is over before it starts, with an error.
class FailedIterator : public KvIterator {
 public:
  explicit FailedIterator(absl::Status s) : status_(std::move(s)) {}
  void Seek(std::string_view) override {}
  bool Valid() const override { return false; }
  void Next() override {}
  std::string_view key() const override { return {}; }
  std::string_view value() const override { return {}; }
  absl::Status status() const override { return status_; }

 private:
  absl::Status status_;
};

class RedisIterator : public KvIterator {
 public:
  RedisIterator(RedisStore* store, std::string prefix);

  void Seek(std::string_view suffix) override {
    std::string target = prefix_;
    target.append(suffix);
    Load("[" + target);
  }
  bool Valid() const override { return status_.ok() && pos_ < page_.size(); }
  void Next() override {
    if (!Valid()) return;
    ++pos_;
    if (pos_ == page_.size() && more_) Load("(" + page_.back().first);
  }
  std::string_view key() const override { return page_[pos_].first; }
  std::string_view value() const override { return page_[pos_].second; }
  absl::Status status() const override { return status_; }

 private:
  void Load(const std::string& min);

  RedisStore* store_;
  std::string prefix_;
  std::string max_;  // ZRANGEBYLEX upper bound of the prefix
  std::vector<std::pair<std::string, std::string>> page_;
  size_t pos_ = 0;
  bool more_ = false;  // the page was full: there may be more keys
  absl::Status status_;
};

class RedisStore : public KvStore {
 public:
  explicit RedisStore(RedisStoreOptions opts)
      : opts_(std::move(opts)),
        data_key_(opts_.key_prefix + "data"),
        index_key_(opts_.key_prefix + "index"),
        token_key_(opts_.key_prefix + "token"),
        ordered_key_(opts_.key_prefix + "ordered"),
        where_(absl::StrCat(opts_.host, ":", opts_.port, "/", opts_.db)),
        all_ordered_(opts_.ordered_prefixes.empty()) {
    for (char c : opts_.ordered_prefixes) {
      ordered_[static_cast<unsigned char>(c)] = true;
    }
    std::random_device rd;
    token_nonce_ = absl::StrFormat("%08x%08x", rd(), rd());
  }

  // Connects and checks durability and the types of our keys.
  absl::Status Init() {
    absl::StatusOr<Conn> c = Connect();
    if (!c.ok()) return c.status();
    if (absl::Status s = CheckDurability(c->get()); !s.ok()) return s;
    for (const std::string* k : {&data_key_, &index_key_}) {
      Args a;
      a.Add("TYPE");
      a.Add(*k);
      absl::StatusOr<Reply> r = Command(c->get(), a, "type");
      if (!r.ok()) return r.status();
      const std::string_view want = k == &data_key_ ? "hash" : "zset";
      if ((*r)->type != REDIS_REPLY_STATUS ||
          (ReplyText(r->get()) != "none" && ReplyText(r->get()) != want)) {
        return absl::FailedPreconditionError(
            absl::StrCat("redis ", where_, ": key '", Sv(*k), "' is not a ",
                         Sv(want), ": another program uses this key prefix"));
      }
    }
    if (absl::Status s = CheckOrderedPrefixes(c->get()); !s.ok()) return s;
    Release(*std::move(c));
    return absl::OkStatus();
  }

  // The ordered index holds the keys under the prefixes it was written
  // with: the first open records them, later opens must name the same.
  absl::Status CheckOrderedPrefixes(redisContext* c) {
    const std::string mine = all_ordered_ ? "*" : opts_.ordered_prefixes;
    Args set;
    set.Add("SET");
    set.Add(ordered_key_);
    set.Add(mine);
    set.Add("NX");
    absl::StatusOr<Reply> r = Command(c, set, "record ordered prefixes");
    if (!r.ok()) return r.status();
    Args get;
    get.Add("GET");
    get.Add(ordered_key_);
    r = Command(c, get, "read ordered prefixes");
    if (!r.ok()) return r.status();
    if ((*r)->type != REDIS_REPLY_STRING || ReplyText(r->get()) != mine) {
      return absl::FailedPreconditionError(absl::StrCat(
          "redis ", where_, ": the store under prefix '", opts_.key_prefix,
          "' keeps an ordered index of other key prefixes than this version "
          "('",
          (*r)->type == REDIS_REPLY_STRING ? Sv(ReplyText(r->get()))
                                           : absl::string_view("?"),
          "' vs '", mine, "'); it cannot be iterated correctly"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<std::string>> Get(
      std::string_view key) override {
    if (absl::Status s = Settle(); !s.ok()) return s;
    std::optional<std::string> out;
    absl::Status s = WithConnection([&](redisContext* c) -> absl::Status {
      Args a;
      a.Add("HGET");
      a.Add(data_key_);
      a.Add(key);
      absl::StatusOr<Reply> r = Command(c, a, "get");
      if (!r.ok()) return r.status();
      if ((*r)->type == REDIS_REPLY_NIL) {
        out.reset();
      } else if ((*r)->type == REDIS_REPLY_STRING) {
        out = std::string(ReplyText(r->get()));
      } else {
        return Unexpected("get");
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    if (absl::Status s = Settle(); !s.ok()) return s;
    std::vector<std::optional<std::string>> out(keys.size());
    if (keys.empty()) return out;
    absl::Status s = WithConnection([&](redisContext* c) -> absl::Status {
      Args a;
      a.Add("HMGET");
      a.Add(data_key_);
      for (const std::string& k : keys) a.Add(k);
      absl::StatusOr<Reply> r = Command(c, a, "multiget");
      if (!r.ok()) return r.status();
      if ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != keys.size()) {
        return Unexpected("multiget");
      }
      for (size_t i = 0; i < keys.size(); ++i) {
        const redisReply* e = (*r)->element[i];
        if (e->type == REDIS_REPLY_STRING) {
          out[i] = std::string(ReplyText(e));
        } else if (e->type == REDIS_REPLY_NIL) {
          out[i].reset();
        } else {
          return Unexpected("multiget");
        }
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  std::unique_ptr<KvIterator> NewIterator(std::string_view prefix) override {
    if (!all_ordered_ && (prefix.empty() || !Ordered(prefix))) {
      return std::make_unique<FailedIterator>(absl::FailedPreconditionError(
          absl::StrCat("redis store: keys with prefix '", Sv(prefix),
                       "' are not kept in order (ordered_prefixes is '",
                       opts_.ordered_prefixes, "')")));
    }
    return std::make_unique<RedisIterator>(this, std::string(prefix));
  }

  absl::Status Write(const WriteBatch& batch) override {
    if (batch.empty()) return absl::OkStatus();
    absl::MutexLock wl(&write_mu_);
    if (absl::Status s = Settle(); !s.ok()) return s;
    const std::string token = absl::StrCat(token_nonce_, "-", ++token_count_);
    for (int attempt = 0;; ++attempt) {
      absl::StatusOr<std::pair<Conn, bool>> lease = Acquire();
      if (!lease.ok()) return lease.status();
      Outcome o = SendTransaction(lease->first.get(), batch, token);
      const bool reused = lease->second;
      const int64_t client_id = lease->first.client_id;
      Release(std::move(lease->first));
      switch (o.kind) {
        case Outcome::kApplied:
          return absl::OkStatus();
        case Outcome::kNotApplied:
          // A pooled connection that Redis closed (restart, idle timeout)
          // fails on first use: try once more on a fresh one.
          if (attempt == 0 && reused && o.broken) continue;
          return o.status;
        case Outcome::kPartial:
          Fence(o.status);
          return o.status;
        case Outcome::kAmbiguous:
          return ResolveAmbiguousWrite(token, client_id, o.status);
      }
    }
  }

  std::string Describe() const override {
    return absl::StrCat("redis://", where_, " prefix '", opts_.key_prefix, "'");
  }

  absl::Status Ping() override {
    if (absl::Status s = Settle(); !s.ok()) return s;
    return WithConnection([&](redisContext* c) -> absl::Status {
      Args a;
      a.Add("PING");
      absl::StatusOr<Reply> r = Command(c, a, "ping");
      if (!r.ok()) return r.status();
      if ((*r)->type != REDIS_REPLY_STATUS || ReplyText(r->get()) != "PONG") {
        return Unexpected("ping");
      }
      return absl::OkStatus();
    });
  }

  std::optional<uint64_t> ApproximateSizeBytes() override {
    uint64_t total = 0;
    absl::Status s = WithConnection([&](redisContext* c) -> absl::Status {
      for (const std::string* k : {&data_key_, &index_key_}) {
        Args a;
        a.Add("MEMORY");
        a.Add("USAGE");
        a.Add(*k);
        absl::StatusOr<Reply> r = Command(c, a, "memory usage");
        if (!r.ok()) return r.status();
        if ((*r)->type == REDIS_REPLY_INTEGER && (*r)->integer > 0) {
          total += static_cast<uint64_t>((*r)->integer);
        }
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return std::nullopt;
    return total;
  }

  // One page of the ordered key index, keys in [min, max_) as ZRANGEBYLEX
  // bounds, with their values.
  absl::Status ReadPage(const std::string& min, const std::string& max,
                        std::vector<std::pair<std::string, std::string>>* out,
                        bool* full) {
    out->clear();
    *full = false;
    if (absl::Status s = Settle(); !s.ok()) return s;
    const std::string count = absl::StrCat(opts_.scan_page_keys);
    return WithConnection([&](redisContext* c) -> absl::Status {
      out->clear();
      Args a;
      a.Add("EVAL");
      a.Add(kPageScript);
      a.Add("2");
      a.Add(index_key_);
      a.Add(data_key_);
      a.Add(min);
      a.Add(max);
      a.Add(count);
      absl::StatusOr<Reply> r = Command(c, a, "scan");
      if (!r.ok()) return r.status();
      const redisReply* rep = r->get();
      if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
          rep->element[0]->type != REDIS_REPLY_ARRAY ||
          rep->element[1]->type != REDIS_REPLY_ARRAY ||
          rep->element[0]->elements != rep->element[1]->elements) {
        return Unexpected("scan");
      }
      const redisReply* ks = rep->element[0];
      const redisReply* vs = rep->element[1];
      out->reserve(ks->elements);
      for (size_t i = 0; i < ks->elements; ++i) {
        if (ks->element[i]->type != REDIS_REPLY_STRING)
          return Unexpected("scan");
        if (vs->element[i]->type != REDIS_REPLY_STRING) {
          return absl::DataLossError(
              absl::StrCat("redis ", where_,
                           ": scan: the key index holds a "
                           "key that has no value"));
        }
        out->emplace_back(std::string(ReplyText(ks->element[i])),
                          std::string(ReplyText(vs->element[i])));
      }
      *full = ks->elements == static_cast<size_t>(opts_.scan_page_keys);
      return absl::OkStatus();
    });
  }

 private:
  struct Outcome {
    enum Kind { kApplied, kNotApplied, kAmbiguous, kPartial } kind;
    absl::Status status;
    bool broken = false;  // the connection broke
  };

  // Whether `key` belongs in the ordered index.
  bool Ordered(std::string_view key) const {
    return all_ordered_ ||
           (!key.empty() && ordered_[static_cast<unsigned char>(key[0])]);
  }

  absl::Status Unexpected(absl::string_view what) const {
    return absl::DataLossError(
        absl::StrCat("redis ", where_, ": ", what, ": unexpected reply type"));
  }

  // Sends one command and reads its reply. A broken connection is left with
  // c->err set, so that Release drops it.
  absl::StatusOr<Reply> Command(redisContext* c, Args& a,
                                absl::string_view what) {
    std::string wire;
    a.AppendTo(&wire);
    void* raw = nullptr;
    if (redisAppendFormattedCommand(c, wire.data(), wire.size()) != REDIS_OK ||
        redisGetReply(c, &raw) != REDIS_OK) {
      return ConnError(c, where_, what);
    }
    Reply r(static_cast<redisReply*>(raw));
    if (r->type == REDIS_REPLY_ERROR) {
      return ReplyError(ReplyText(r.get()), where_, what);
    }
    return r;
  }

  absl::Status CheckDurability(redisContext* c) {
    {
      // An allkeys-* eviction policy would silently drop ledger keys when
      // Redis is full: never acceptable. (volatile-* policies only evict
      // keys with a TTL, and the store sets none.)
      Args a;
      a.Add("CONFIG");
      a.Add("GET");
      a.Add("maxmemory-policy");
      absl::StatusOr<Reply> r = Command(c, a, "config get");
      if (!r.ok() && c->err != 0) return r.status();
      if (r.ok() && (*r)->type == REDIS_REPLY_ARRAY && (*r)->elements == 2 &&
          (*r)->element[1]->type == REDIS_REPLY_STRING &&
          absl::StartsWith(Sv(ReplyText((*r)->element[1])), "allkeys")) {
        return absl::FailedPreconditionError(absl::StrCat(
            "redis ", where_, " has maxmemory-policy '",
            Sv(ReplyText((*r)->element[1])),
            "': it would evict ledger keys when full; use noeviction"));
      }
    }
    std::string problem;
    for (const auto& [name, want] :
         {std::pair<std::string, std::string>{"appendonly", "yes"},
          std::pair<std::string, std::string>{"appendfsync", "always"}}) {
      Args a;
      a.Add("CONFIG");
      a.Add("GET");
      a.Add(name);
      absl::StatusOr<Reply> r = Command(c, a, "config get");
      if (!r.ok()) {
        if (absl::IsUnavailable(r.status()) ||
            absl::IsDeadlineExceeded(r.status())) {
          return r.status();
        }
        problem = absl::StrCat("cannot read its configuration (",
                               r.status().message(), ")");
        break;
      }
      const redisReply* rep = r->get();
      if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
          rep->element[1]->type != REDIS_REPLY_STRING) {
        problem = absl::StrCat("CONFIG GET ", name, " gave no value");
        break;
      }
      if (ReplyText(rep->element[1]) != want) {
        problem = absl::StrCat(name, " is '", Sv(ReplyText(rep->element[1])),
                               "', not '", want, "'");
        break;
      }
    }
    if (problem.empty()) return absl::OkStatus();
    const std::string msg = absl::StrCat(
        "redis ", where_, " is not durable: ", problem,
        ". Consortia needs appendonly yes and appendfsync always so that an "
        "acknowledged block survives a crash; set "
        "--storage_redis_allow_weak_durability to run anyway");
    if (opts_.require_durability) return absl::FailedPreconditionError(msg);
    spdlog::warn("storage: {}", msg);
    return absl::OkStatus();
  }

  // A new connection, authenticated and on the right database. Fails fast
  // with Unavailable while the backoff after a failed attempt runs.
  absl::StatusOr<Conn> Connect() {
    {
      absl::MutexLock l(&backoff_mu_);
      const absl::Time now = absl::Now();
      if (now < next_attempt_) {
        return absl::UnavailableError(absl::StrCat(
            "redis ", where_, " is unavailable (", last_error_,
            "); next attempt in ",
            absl::ToInt64Milliseconds(next_attempt_ - now), " ms"));
      }
    }
    absl::StatusOr<Conn> c = ConnectOnce();
    absl::MutexLock l(&backoff_mu_);
    if (c.ok()) {
      if (failing_) {
        spdlog::info("storage: reconnected to redis {}", where_);
      }
      failing_ = false;
      backoff_ = absl::ZeroDuration();
      return c;
    }
    if (!failing_) {
      spdlog::warn("storage: cannot reach redis {}: {}", where_,
                   std::string(c.status().message()));
    }
    failing_ = true;
    backoff_ = backoff_ == absl::ZeroDuration()
                   ? opts_.backoff_initial
                   : std::min(backoff_ * 2, opts_.backoff_max);
    next_attempt_ = absl::Now() + backoff_;
    last_error_ = std::string(c.status().message());
    return c.status();
  }

  // Opens one connection (outside backoff_mu_: it waits for the network).
  absl::StatusOr<Conn> ConnectOnce() ABSL_LOCKS_EXCLUDED(backoff_mu_) {
    const timeval tv = TimevalOf(opts_.timeout);
    Conn c;
    c.ctx.reset(redisConnectWithTimeout(opts_.host.c_str(), opts_.port, tv));
    if (c.ctx == nullptr || c->err != 0) {
      return ConnError(c.get(), where_, "connect");
    }
    if (redisSetTimeout(c.get(), tv) != REDIS_OK) {
      return ConnError(c.get(), where_, "set timeout");
    }
    redisEnableKeepAlive(c.get());
    if (!opts_.password.empty()) {
      Args a;
      a.Add("AUTH");
      a.Add(opts_.password);
      absl::StatusOr<Reply> r = Command(c.get(), a, "auth");
      if (!r.ok()) return r.status();
    }
    if (opts_.db != 0) {
      const std::string db = absl::StrCat(opts_.db);
      Args a;
      a.Add("SELECT");
      a.Add(db);
      absl::StatusOr<Reply> r = Command(c.get(), a, "select");
      if (!r.ok()) return r.status();
    }
    {
      // Lets a later connection kill this one (see ReadTokenIs).
      Args a;
      a.Add("CLIENT");
      a.Add("ID");
      absl::StatusOr<Reply> r = Command(c.get(), a, "client id");
      if (r.ok() && (*r)->type == REDIS_REPLY_INTEGER) {
        c.client_id = (*r)->integer;
      } else if (!r.ok() && c->err != 0) {
        return r.status();
      }
    }
    return c;
  }

  // A pooled connection (second = true) or a new one.
  absl::StatusOr<std::pair<Conn, bool>> Acquire() {
    {
      absl::MutexLock l(&pool_mu_);
      if (!idle_.empty()) {
        Conn c = std::move(idle_.back());
        idle_.pop_back();
        return std::make_pair(std::move(c), true);
      }
    }
    absl::StatusOr<Conn> c = Connect();
    if (!c.ok()) return c.status();
    return std::make_pair(*std::move(c), false);
  }

  // Keeps a healthy connection for reuse; a broken one is closed, and so are
  // the pooled ones (they most likely broke too).
  void Release(Conn c) {
    absl::MutexLock l(&pool_mu_);
    if (c->err != 0) {
      idle_.clear();
      return;
    }
    if (idle_.size() < static_cast<size_t>(opts_.max_idle_connections)) {
      idle_.push_back(std::move(c));
    }
  }

  // Runs fn (idempotent reads) on a connection; once more on a fresh one
  // when a pooled connection turns out to be broken.
  template <typename Fn>
  absl::Status WithConnection(Fn fn) {
    for (int attempt = 0;; ++attempt) {
      absl::StatusOr<std::pair<Conn, bool>> lease = Acquire();
      if (!lease.ok()) return lease.status();
      absl::Status s = fn(lease->first.get());
      const bool broken = lease->first->err != 0;
      const bool reused = lease->second;
      Release(std::move(lease->first));
      if (!s.ok() && broken && reused && attempt == 0) continue;
      return s;
    }
  }

  // Sends MULTI, the batch, SET token, EXEC in one pipeline and reads the
  // replies.
  Outcome SendTransaction(redisContext* c, const WriteBatch& batch,
                          const std::string& token) {
    // The whole transaction is formatted into one buffer, handed to hiredis
    // at once.
    std::string wire;
    wire.reserve(batch.ByteSize() + batch.ops().size() * 32 + 256);
    int commands = 0;
    auto append = [&](const Args& a) {
      a.AppendTo(&wire);
      ++commands;
    };
    {
      Args a;
      a.Add("MULTI");
      append(a);
    }
    // Each run of puts (or of deletes) in batch order becomes HSET + ZADD
    // (HDEL + ZREM) commands of at most scan_page_keys keys. Redis runs a
    // transaction's commands in order, and the fields of one command in
    // order, so the last op on a key wins, as in RocksDB.
    const std::vector<WriteBatch::Op>& ops = batch.ops();
    const size_t chunk = static_cast<size_t>(opts_.scan_page_keys);
    for (size_t i = 0; i < ops.size();) {
      const bool del = ops[i].is_delete;
      size_t end = i;
      while (end < ops.size() && end - i < chunk && ops[end].is_delete == del) {
        ++end;
      }
      Args h;
      h.Add(del ? "HDEL" : "HSET");
      h.Add(data_key_);
      Args z;
      z.Add(del ? "ZREM" : "ZADD");
      z.Add(index_key_);
      for (size_t j = i; j < end; ++j) {
        h.Add(ops[j].key);
        if (!del) h.Add(ops[j].value);
        if (Ordered(ops[j].key)) {
          if (!del) z.Add("0");
          z.Add(ops[j].key);
        }
      }
      append(h);
      if (z.argc() > 2) append(z);
      i = end;
    }
    {
      Args a;
      a.Add("SET");
      a.Add(token_key_);
      a.Add(token);
      append(a);
    }
    {
      Args a;
      a.Add("EXEC");
      append(a);
    }
    if (c->err != 0 ||
        redisAppendFormattedCommand(c, wire.data(), wire.size()) != REDIS_OK) {
      return {Outcome::kNotApplied, ConnError(c, where_, "write"), true};
    }

    // Until all of the pipeline (EXEC is its last bytes) is in the socket,
    // a failure means Redis never got EXEC: nothing was applied.
    int done = 0;
    while (done == 0) {
      if (redisBufferWrite(c, &done) == REDIS_ERR) {
        return {Outcome::kNotApplied, ConnError(c, where_, "write"), true};
      }
    }

    absl::Status first_error;
    bool executed_outside = false;  // a command ran although MULTI failed
    bool in_multi = true;
    for (int i = 0; i < commands; ++i) {
      void* raw = nullptr;
      if (redisGetReply(c, &raw) != REDIS_OK) {
        return {Outcome::kAmbiguous, ConnError(c, where_, "write"), true};
      }
      Reply r(static_cast<redisReply*>(raw));
      const bool is_exec = i == commands - 1;
      if (i == 0) {
        if (r->type == REDIS_REPLY_ERROR) {
          in_multi = false;
          first_error = ReplyError(ReplyText(r.get()), where_, "write: multi");
        }
        continue;
      }
      if (!is_exec) {
        if (r->type == REDIS_REPLY_ERROR) {
          if (first_error.ok()) {
            first_error = ReplyError(ReplyText(r.get()), where_, "write");
          }
        } else if (!in_multi) {
          executed_outside = true;
        }
        continue;
      }
      // The EXEC reply.
      if (executed_outside) {
        return {Outcome::kPartial,
                absl::DataLossError(absl::StrCat(
                    "redis ", where_,
                    ": write: MULTI was refused but some commands of the "
                    "batch ran: ",
                    first_error.message())),
                false};
      }
      if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_NIL ||
          !in_multi) {
        absl::Status s =
            !first_error.ok()
                ? first_error
                : (r->type == REDIS_REPLY_ERROR
                       ? ReplyError(ReplyText(r.get()), where_, "write: exec")
                       : absl::InternalError(absl::StrCat(
                             "redis ", where_, ": write: exec aborted")));
        return {Outcome::kNotApplied, s, false};
      }
      if (r->type != REDIS_REPLY_ARRAY) {
        return {Outcome::kPartial, Unexpected("write: exec"), false};
      }
      for (size_t k = 0; k < r->elements; ++k) {
        if (r->element[k]->type == REDIS_REPLY_ERROR) {
          return {Outcome::kPartial,
                  absl::DataLossError(absl::StrCat(
                      "redis ", where_,
                      ": write: part of the batch failed inside EXEC: ",
                      Sv(ReplyText(r->element[k])))),
                  false};
        }
      }
      return {Outcome::kApplied, absl::OkStatus(), false};
    }
    return {Outcome::kAmbiguous,
            absl::InternalError("redis write: no EXEC reply"), false};
  }

  // The EXEC reply of the batch with `token` was lost. Tries, for up to
  // ambiguous_write_wait, to read the token back: OK if the batch was
  // applied, Unavailable if it was not or the outcome is still unknown (it
  // is then settled by the next call, see Settle).
  absl::Status ResolveAmbiguousWrite(const std::string& token,
                                     int64_t client_id,
                                     const absl::Status& cause)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) {
    spdlog::warn(
        "storage: redis {}: lost the reply to a batch ({}); reading back "
        "whether it was applied",
        where_, std::string(cause.message()));
    const absl::Time deadline = absl::Now() + opts_.ambiguous_write_wait;
    while (true) {
      absl::StatusOr<bool> applied = ReadTokenIs(token, client_id);
      if (absl::IsFailedPrecondition(applied.status())) {
        Fence(applied.status());
        return applied.status();
      }
      if (applied.ok()) {
        if (*applied) {
          spdlog::info("storage: redis {}: the batch was applied", where_);
          return absl::OkStatus();
        }
        return absl::UnavailableError(
            absl::StrCat(cause.message(), " (the batch was not applied)"));
      }
      if (absl::Now() >= deadline) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    {
      absl::MutexLock l(&state_mu_);
      pending_ = Pending{token, client_id};
    }
    trouble_.store(true);
    return absl::UnavailableError(absl::StrCat(
        cause.message(),
        " (whether the batch was applied is not known yet; it is settled "
        "when redis answers again)"));
  }

  // Whether the batch with `token`, sent on the connection `client_id`, was
  // applied. That connection is killed first, so that a transaction still
  // queued in Redis (sent before a pause or a network stall) can no longer
  // run after we looked. FailedPrecondition when that cannot be done (Redis
  // refuses CLIENT) and the token is not there: the outcome cannot be known.
  absl::StatusOr<bool> ReadTokenIs(const std::string& token,
                                   int64_t client_id) {
    std::optional<bool> same;
    bool killed = false;
    absl::Status s = WithConnection([&](redisContext* c) -> absl::Status {
      if (client_id != 0) {
        const std::string id = absl::StrCat(client_id);
        Args a;
        a.Add("CLIENT");
        a.Add("KILL");
        a.Add("ID");
        a.Add(id);
        absl::StatusOr<Reply> r = Command(c, a, "kill the writing connection");
        if (!r.ok() && c->err != 0) return r.status();
        killed = r.ok();
      }
      Args a;
      a.Add("GET");
      a.Add(token_key_);
      absl::StatusOr<Reply> r = Command(c, a, "read back the batch token");
      if (!r.ok()) return r.status();
      same = (*r)->type == REDIS_REPLY_STRING && ReplyText(r->get()) == token;
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    if (!*same && !killed) {
      return absl::FailedPreconditionError(absl::StrCat(
          "redis ", where_,
          ": lost the reply to a batch and cannot tell whether it was "
          "applied (CLIENT ID / CLIENT KILL are not allowed)"));
    }
    return *same;
  }

  // Refuses every later call with `why`.
  void Fence(const absl::Status& why) {
    absl::MutexLock l(&state_mu_);
    fenced_ = absl::FailedPreconditionError(absl::StrCat(
        why.message(),
        "; the store refuses further calls: restart the storage service to "
        "reload the chain from redis"));
    spdlog::error("storage: {}", std::string(fenced_.message()));
    trouble_.store(true);
  }

  // Before any call: settles a pending ambiguous write. OK when there is
  // none (or it was not applied); the fence status once the store refuses
  // calls; Unavailable while the outcome cannot be read.
  absl::Status Settle() {
    if (!trouble_.load()) return absl::OkStatus();
    std::optional<Pending> pending;
    {
      absl::MutexLock l(&state_mu_);
      if (!fenced_.ok()) return fenced_;
      pending = pending_;
    }
    if (!pending.has_value()) return absl::OkStatus();
    absl::StatusOr<bool> applied =
        ReadTokenIs(pending->token, pending->client_id);
    if (absl::IsFailedPrecondition(applied.status())) {
      Fence(applied.status());
      absl::MutexLock l(&state_mu_);
      return fenced_;
    }
    if (!applied.ok()) return applied.status();
    if (*applied) {
      Fence(absl::FailedPreconditionError(absl::StrCat(
          "redis ", where_,
          ": a batch reported as failed (its reply was lost) was applied "
          "after all")));
      absl::MutexLock l(&state_mu_);
      pending_.reset();
      return fenced_;
    }
    absl::MutexLock l(&state_mu_);
    if (pending_.has_value() && pending_->token == pending->token) {
      pending_.reset();
      spdlog::info(
          "storage: redis {}: the batch whose reply was lost was "
          "not applied",
          where_);
    }
    if (fenced_.ok() && !pending_.has_value()) trouble_.store(false);
    return absl::OkStatus();
  }

  const RedisStoreOptions opts_;
  const std::string data_key_;
  const std::string index_key_;
  const std::string token_key_;
  const std::string ordered_key_;
  const std::string where_;  // host:port/db, for messages
  const bool all_ordered_;
  std::bitset<256> ordered_;  // first bytes of the ordered keys

  absl::Mutex pool_mu_;
  std::vector<Conn> idle_ ABSL_GUARDED_BY(pool_mu_);

  absl::Mutex backoff_mu_;
  absl::Time next_attempt_ ABSL_GUARDED_BY(backoff_mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(backoff_mu_);
  std::string last_error_ ABSL_GUARDED_BY(backoff_mu_);
  bool failing_ ABSL_GUARDED_BY(backoff_mu_) = false;

  // Serializes writes (each has its own token).
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(state_mu_);
  std::string token_nonce_;
  uint64_t token_count_ ABSL_GUARDED_BY(write_mu_) = 0;

  // A pending ambiguous write or a fence; trouble_ is their fast check.
  absl::Mutex state_mu_;
  struct Pending {
    std::string token;
    int64_t client_id = 0;
  };
  std::optional<Pending> pending_ ABSL_GUARDED_BY(state_mu_);
  absl::Status fenced_ ABSL_GUARDED_BY(state_mu_);
  std::atomic<bool> trouble_{false};
};

RedisIterator::RedisIterator(RedisStore* store, std::string prefix)
    : store_(store), prefix_(std::move(prefix)) {
  std::optional<std::string> succ = PrefixSuccessor(prefix_);
  max_ = succ.has_value() ? "(" + *succ : "+";
  Load(prefix_.empty() ? "-" : "[" + prefix_);
}

void RedisIterator::Load(const std::string& min) {
  pos_ = 0;
  status_ = store_->ReadPage(min, max_, &page_, &more_);
  if (!status_.ok()) page_.clear();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KvStore>> OpenRedisStore(
    const RedisStoreOptions& opts) {
  if (opts.host.empty())
    return absl::InvalidArgumentError("redis host is empty");
  if (opts.key_prefix.empty()) {
    return absl::InvalidArgumentError("redis key prefix is empty");
  }
  if (opts.scan_page_keys < 1) {
    return absl::InvalidArgumentError("redis scan_page_keys must be >= 1");
  }
  auto store = std::make_unique<RedisStore>(opts);
  if (absl::Status s = store->Init(); !s.ok()) return s;
  return std::unique_ptr<KvStore>(std::move(store));
}

}  // namespace consortia::storage
