// The Redis backend of KvStore, through hiredis (0.14, plain TCP).
//
// Layout in Redis (all under one configurable key prefix P, so that several
// nodes can share one Redis):
//   P + "data"   a hash: store key -> value (binary-safe field and value)
//   P + "index"  a sorted set of the store keys, all with score 0, so that
//                ZRANGEBYLEX walks keys in byte order, exactly like RocksDB's
//                default comparator (Redis compares members with memcmp);
//                every key, or only those under Options::ordered_prefixes
//   P + "token"  the token of the last applied batch (see Write below)
//   P + "ordered" the prefixes the index holds (Options::ordered_prefixes,
//                "*" for all), recorded at the first open; a later open with
//                other prefixes is refused (FailedPrecondition)
// For a Redis Cluster the three keys must share a slot: put a hash tag in
// the prefix ("{node0}:"). hiredis does not follow cluster redirections, so
// the supported deployment is one primary (managed Redis, Sentinel behind a
// stable address, or a plain server).
//
// Writes. A WriteBatch becomes ONE pipelined MULTI / EXEC: its ops are folded
// per key (the last op on a key wins, as in RocksDB), then HSET / ZADD for
// the puts, HDEL / ZREM for the deletes, and SET of a fresh token. Redis
// applies the transaction whole, and with appendonly yes + appendfsync always
// it answers EXEC only after the AOF is fsynced, so an acknowledged batch
// survives a crash of Redis or of the machine.
//
// A lost EXEC reply (Redis died after receiving EXEC, before answering) is
// ambiguous: the batch may or may not be in the AOF. Write then reconnects
// (with backoff, for up to Options::ambiguous_write_wait), kills the old
// connection (CLIENT KILL ID, so that a transaction still queued behind a
// paused Redis can no longer run) and reads the token to learn the outcome,
// so that it returns OK exactly when the batch was applied. If Redis stays away
// longer, Write returns Unavailable and every later call first settles the
// outcome; if the batch turns out to have been applied after all, the store
// refuses all further calls with FailedPrecondition ("restart the storage
// service"), because its caller believes that batch failed. The ledger is then
// reloaded from Redis on restart, at the height that really committed. A
// transaction that Redis applies only in part (an error inside EXEC, which
// happens only if someone else wrote our keys with another type) stops the
// store in the same way.
//
// Reads. Get is HGET; MultiGet is one HMGET (a single command, so one
// consistent snapshot). An iterator reads pages of up to
// Options::scan_page_keys keys with a small Lua script that runs
// ZRANGEBYLEX + HMGET atomically: each page is consistent, and keys come in
// byte order. Unlike RocksDB, the iterator is not one snapshot across pages:
// a batch written while an iteration is between pages is seen by the later
// pages only. The ledger's iterations (over committed blocks, which never
// change) are not affected.
//
// Connections. A small pool: each call takes a connection (or opens one),
// uses it and puts it back. Connecting and every command obey
// Options::timeout. When Redis cannot be reached, calls fail at once with
// Unavailable and reconnection is attempted with exponential backoff
// (Options::backoff_initial doubling up to backoff_max); an I/O error drops
// every pooled connection.
//
// Errors: Unavailable when Redis cannot be reached, the connection breaks,
// or Redis is loading / read-only; DeadlineExceeded when Redis does not
// answer within the timeout; ResourceExhausted when Redis refuses a write
// for lack of memory or because its AOF cannot be written (MISCONF);
// DataLoss when what Redis holds is not what this store wrote; Internal for
// any other error reply; FailedPrecondition after an ambiguous write that
// was applied (above).
//
// Thread-safe: any number of threads may call concurrently.
#ifndef CONSORTIA_SERVICES_STORAGE_SRC_REDIS_STORE_H_
#define CONSORTIA_SERVICES_STORAGE_SRC_REDIS_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kv_store.h"

namespace consortia::storage {

struct RedisStoreOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;            // SELECT on every connection
  std::string password;  // AUTH on every connection when not empty
  std::string key_prefix = "consortia:";
  // Connect timeout and per-command timeout.
  absl::Duration timeout = absl::Seconds(2);
  // Refuse to open unless Redis reports appendonly yes and appendfsync
  // always (CONFIG GET). Turning this off is for throw-away networks: Redis
  // then acknowledges batches it may lose in a crash.
  bool require_durability = true;
  // Reconnection backoff after a failed connect.
  absl::Duration backoff_initial = absl::Milliseconds(50);
  absl::Duration backoff_max = absl::Seconds(2);
  // How long Write keeps trying to learn the outcome of a batch whose EXEC
  // reply was lost, before it gives up with Unavailable.
  // Meanwhile the caller waits (a commit waits for Redis to return rather
  // than fail and risk being wrong about it).
  absl::Duration ambiguous_write_wait = absl::Seconds(60);
  // The first bytes of the keys kept in the ordered index, one char each
  // (the ledger passes the prefixes it iterates: LedgerOrderedPrefixes in
  // store_factory.h). Empty = every key. The index costs a sorted-set
  // insert per key; keys that are only ever read by name (tree nodes, tx
  // index) need none. NewIterator over any other prefix (or over "") yields
  // FailedPrecondition.
  std::string ordered_prefixes;
  // Keys per iterator page (and per HSET / ZADD command inside a batch).
  int scan_page_keys = 512;
  // Idle connections kept for reuse.
  int max_idle_connections = 4;
};

// Connects, checks the durability settings (and that Redis would never
// evict keys: an allkeys-* maxmemory-policy is refused even with
// require_durability off), and returns the store.
// Unavailable if Redis cannot be reached; FailedPrecondition naming the
// setting when Redis is not configured for durability (and
// require_durability is set), or cannot tell (CONFIG disabled);
// InvalidArgument for an empty key prefix or host.
absl::StatusOr<std::unique_ptr<KvStore>> OpenRedisStore(
    const RedisStoreOptions& opts);

}  // namespace consortia::storage

#endif  // CONSORTIA_SERVICES_STORAGE_SRC_REDIS_STORE_H_
