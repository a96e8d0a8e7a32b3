// Test helper for the WAL crash test (wal_test.cc): a validator stand-in that
// opens the WAL in argv[1] and signs votes through a DoubleSignGuard in front
// of a KeySigner in an endless loop, height after height: a prevote and a
// precommit in round 0 and then EndHeight. The block hash it wants to vote
// for depends on argv[2] (the run number), so a run restarted after a kill at
// a height whose votes were already logged asks for conflicting votes and
// must be refused; it then re-sends the logged vote instead (as a restarted
// driver does: its state machine takes the logged votes back).
//
// Every vote it would send goes to stdout AFTER the guard returned its
// signature (logged and synced), or after the guard refused it and the logged
// vote was read back, as "SENT <height> <round> <type> <hash hex>", every
// EndHeight as "END <height>", one write(2) per line. The test kills it with
// SIGKILL at a random moment.
//
// Usage: wal_crash_child <wal_dir> <run> <max_segment_bytes> <keep_heights>
// Writes go out in small pieces (a few bytes per write(2) call), so that a
// kill often lands in the middle of a frame and leaves a torn tail.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consortia/crypto_suite.h"
#include "consortia/types.h"
#include "double_sign_guard.h"
#include "tendermint/state_machine.h"
#include "wal.h"

namespace {

using consortia::Bytes;
using consortia::ByteView;
using consortia::Hash32;
using consortia::Vote;
using consortia::VoteType;
using consortia::consensus::DoubleSignGuard;
using consortia::consensus::Wal;
using consortia::consensus::WalEnv;
using consortia::consensus::WalFileLock;
using consortia::consensus::WalWritableFile;
using consortia::consensus::tendermint::KeySigner;

// Splits every append into 7-byte writes with a yield in between.
class ChoppyFile final : public WalWritableFile {
 public:
  explicit ChoppyFile(std::unique_ptr<WalWritableFile> base)
      : base_(std::move(base)) {}
  absl::Status Append(ByteView data) override {
    for (size_t i = 0; i < data.size(); i += 7) {
      absl::Status s =
          base_->Append(data.subspan(i, std::min<size_t>(7, data.size() - i)));
      if (!s.ok()) return s;
      sched_yield();
    }
    return absl::OkStatus();
  }
  absl::Status Sync() override { return base_->Sync(); }

 private:
  std::unique_ptr<WalWritableFile> base_;
};

class ChoppyEnv final : public WalEnv {
 public:
  explicit ChoppyEnv(std::unique_ptr<WalEnv> base) : base_(std::move(base)) {}
  absl::Status CreateDirs(const std::string& dir) override {
    return base_->CreateDirs(dir);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    return base_->ListDir(dir);
  }
  absl::StatusOr<Bytes> ReadFile(const std::string& path) override {
    return base_->ReadFile(path);
  }
  absl::StatusOr<std::unique_ptr<WalWritableFile>> OpenAppend(
      const std::string& path) override {
    absl::StatusOr<std::unique_ptr<WalWritableFile>> f =
        base_->OpenAppend(path);
    if (!f.ok()) return f.status();
    return std::unique_ptr<WalWritableFile>(new ChoppyFile(*std::move(f)));
  }
  absl::Status Truncate(const std::string& path, uint64_t size) override {
    return base_->Truncate(path, size);
  }
  absl::Status Remove(const std::string& path) override {
    return base_->Remove(path);
  }
  absl::Status SyncDir(const std::string& dir) override {
    return base_->SyncDir(dir);
  }
  absl::StatusOr<std::unique_ptr<WalFileLock>> Lock(
      const std::string& path) override {
    return base_->Lock(path);
  }

 private:
  std::unique_ptr<WalEnv> base_;
};

void Say(const std::string& line) {
  std::string out = line + "\n";
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::write(STDOUT_FILENO, out.data() + done, out.size() - done);
    if (n <= 0) std::_Exit(3);
    done += static_cast<size_t>(n);
  }
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "wal_crash_child: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    return Fail(
        "usage: wal_crash_child <wal_dir> <run> <max_segment_bytes> "
        "<keep_heights>");
  }
  const std::string dir = argv[1];
  const uint64_t run = std::strtoull(argv[2], nullptr, 10);
  ChoppyEnv env(consortia::consensus::NewPosixWalEnv());
  consortia::consensus::WalOptions options;
  options.max_segment_bytes = std::strtoull(argv[3], nullptr, 10);
  options.keep_heights = std::strtoull(argv[4], nullptr, 10);
  options.env = &env;
  consortia::consensus::WalOpenReport report;
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(dir, options, &report);
  if (!wal.ok()) return Fail(wal.status().ToString());
  if (report.tail_cut) Say(absl::StrCat("CUT ", report.cut_bytes));

  const consortia::CryptoSuite& suite = consortia::Ed25519Sha256();
  Bytes seed(32, 7);
  absl::StatusOr<consortia::KeyPair> key = suite.KeyFromSeed(seed);
  if (!key.ok()) return Fail(key.status().ToString());
  absl::StatusOr<std::unique_ptr<KeySigner>> key_signer =
      KeySigner::Create(suite, key->secret_key, key->public_key);
  if (!key_signer.ok()) return Fail(key_signer.status().ToString());
  DoubleSignGuard guard(wal->get(), *std::move(key_signer));

  for (uint64_t height = (*wal)->last_end_height() + 1;; ++height) {
    for (VoteType type : {VoteType::kPrevote, VoteType::kPrecommit}) {
      Hash32 hash{};
      for (int i = 0; i < 8; ++i) {
        hash[i] = static_cast<uint8_t>(height >> (8 * i));
        hash[8 + i] = static_cast<uint8_t>(run >> (8 * i));
      }
      hash[16] = static_cast<uint8_t>(type);
      Vote v;
      v.type = type;
      v.height = height;
      v.round = 0;
      v.block_hash = hash;
      v.validator_index = 0;
      absl::StatusOr<Bytes> sig =
          guard.SignVote(v, consortia::VoteSignBytes("crash-test", v));
      if (sig.ok()) {
        v.signature = *std::move(sig);
      } else if (absl::IsFailedPrecondition(sig.status())) {
        // Refused: another vote was logged for this slot; send that one.
        std::optional<Vote> logged = (*wal)->FindSignedVote(height, 0, type);
        if (!logged.has_value()) return Fail(sig.status().ToString());
        v = *std::move(logged);
      } else {
        return Fail(sig.status().ToString());
      }
      Say(absl::StrCat("SENT ", v.height, " ", v.round, " ",
                       static_cast<int>(v.type), " ",
                       consortia::ToHex(v.block_hash)));
    }
    absl::Status s = (*wal)->Append(consortia::consensus::WalEndHeight{height});
    if (!s.ok()) return Fail(s.ToString());
    Say(absl::StrCat("END ", height));
  }
}
