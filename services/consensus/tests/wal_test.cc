// Tests of the consensus write-ahead log: the record and frame codec, recovery
// from torn and damaged tails, rotation, the double-sign guard, and a kill -9
// crash test that drives wal_crash_child.
#include "wal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "consortia/merkle.h"
#include "consortia/process.h"
#include "double_sign_guard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tendermint/messages.h"
#include "tendermint/state_machine.h"

namespace consortia::consensus {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Helpers

// A fresh directory, removed with its contents at the end of the test.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string tmpl =
        (std::filesystem::path(testing::TempDir()) / "consensus_wal_XXXXXX")
            .string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Hash32 H(uint8_t fill) {
  Hash32 h{};
  h.fill(fill);
  return h;
}

Vote MakeVote(VoteType type, uint64_t height, uint32_t round, uint8_t hash,
              uint8_t sig = 0x5a) {
  Vote v;
  v.type = type;
  v.height = height;
  v.round = round;
  v.block_hash = H(hash);
  v.validator_index = 3;
  v.signature = Bytes(64, sig);
  return v;
}

Bytes ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in),
               std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const Bytes& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()),
            static_cast<std::streamsize>(data.size()));
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

std::string Segment(const std::string& dir, int n) {
  char name[64];
  std::snprintf(name, sizeof(name), "/seg-%020d.wal", n);
  return dir + name;
}

// POSIX files with switches to fail syncs and a count of syncs.
class FaultEnv final : public WalEnv {
 public:
  std::atomic<bool> fail_sync{false};
  std::atomic<int> syncs{0};

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
    auto f = base_->OpenAppend(path);
    if (!f.ok()) return f.status();
    return std::unique_ptr<WalWritableFile>(new File(this, *std::move(f)));
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
  class File final : public WalWritableFile {
   public:
    File(FaultEnv* env, std::unique_ptr<WalWritableFile> base)
        : env_(env), base_(std::move(base)) {}
    absl::Status Append(ByteView data) override { return base_->Append(data); }
    absl::Status Sync() override {
      if (env_->fail_sync) return absl::InternalError("fdatasync: EIO");
      ++env_->syncs;
      return base_->Sync();
    }

   private:
    FaultEnv* env_;
    std::unique_ptr<WalWritableFile> base_;
  };

  std::unique_ptr<WalEnv> base_ = NewPosixWalEnv();
};

class ConsensusWalTest : public ::testing::Test {
 protected:
  std::unique_ptr<Wal> OpenOk(WalOpenReport* report = nullptr) {
    absl::StatusOr<std::unique_ptr<Wal>> wal =
        Wal::Open(dir_, options_, report);
    EXPECT_TRUE(wal.ok()) << wal.status();
    return wal.ok() ? *std::move(wal) : nullptr;
  }

  ScopedTempDir tmp_;
  std::string dir_ = tmp_.path() + "/consensus/wal";
  WalOptions options_;
};

// ---------------------------------------------------------------------------
// Codec

TEST(ConsensusWalCodec, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c(0, AsBytes("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c(Crc32c(0, AsBytes("1234")), AsBytes("56789")), 0xE3069283u);
}

TEST(ConsensusWalCodec, EveryRecordKindRoundTrips) {
  std::vector<WalRecord> records = {
      MakeVote(VoteType::kPrecommit, 7, 2, 0xab),
      WalProposal{7, 2, ToBytes("proposal bytes")},
      WalEndHeight{7},
      WalPolka{9,
               {MakeVote(VoteType::kPrevote, 9, 1, 0xcd),
                MakeVote(VoteType::kPrevote, 9, 1, 0xcd)},
               ToBytes("the locked block's proposal")},
      WalPolka{10, {}, {}},
  };
  Bytes segment;
  for (const WalRecord& r : records) {
    absl::StatusOr<WalRecord> back = DecodeWalRecord(EncodeWalRecord(r));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, r);
    AppendWalFrame(r, &segment);
  }
  WalSegmentScan scan = ScanWalSegment(segment);
  EXPECT_EQ(scan.tail, WalSegmentScan::Tail::kClean);
  EXPECT_EQ(scan.records, records);
  EXPECT_EQ(scan.valid_bytes, segment.size());
}

TEST(ConsensusWalCodec, ScanFindsEveryFlippedBit) {
  std::vector<WalRecord> records = {
      MakeVote(VoteType::kPrevote, 1, 0, 1), WalEndHeight{1},
      WalProposal{2, 0, ToBytes("p")}, MakeVote(VoteType::kPrecommit, 2, 0, 2)};
  Bytes segment;
  std::vector<size_t> starts;
  for (const WalRecord& r : records) {
    starts.push_back(segment.size());
    AppendWalFrame(r, &segment);
  }
  for (size_t byte = 0; byte < segment.size(); ++byte) {
    size_t frame = 0;
    while (frame + 1 < starts.size() && starts[frame + 1] <= byte) ++frame;
    for (int bit = 0; bit < 8; ++bit) {
      Bytes damaged = segment;
      damaged[byte] ^= static_cast<uint8_t>(1u << bit);
      WalSegmentScan scan = ScanWalSegment(damaged);
      ASSERT_NE(scan.tail, WalSegmentScan::Tail::kClean)
          << "byte " << byte << " bit " << bit;
      ASSERT_EQ(scan.records.size(), frame) << "byte " << byte;
      EXPECT_EQ(scan.valid_bytes, starts[frame]);
    }
  }
}

TEST(ConsensusWalCodec, WholeFrameWithUnknownKindIsUndecodable) {
  Bytes payload = {0x77, 1, 2, 3};
  Bytes frame(8);
  frame[0] = static_cast<uint8_t>(payload.size());
  uint32_t crc = Crc32c(Crc32c(0, ByteView(frame.data(), 4)), payload);
  for (int i = 0; i < 4; ++i)
    frame[4 + i] = static_cast<uint8_t>(crc >> (8 * i));
  frame.insert(frame.end(), payload.begin(), payload.end());
  WalSegmentScan scan = ScanWalSegment(frame);
  EXPECT_EQ(scan.tail, WalSegmentScan::Tail::kUndecodable);
  EXPECT_TRUE(scan.records.empty());
}

TEST(ConsensusWalCodec, OversizedLengthIsBadLength) {
  Bytes segment;
  AppendWalFrame(WalEndHeight{3}, &segment);
  WalSegmentScan scan = ScanWalSegment(segment, /*max_record_bytes=*/1);
  EXPECT_EQ(scan.tail, WalSegmentScan::Tail::kBadLength);
  EXPECT_EQ(scan.valid_bytes, 0u);
}

// ---------------------------------------------------------------------------
// The log

TEST_F(ConsensusWalTest, OpenCreatesTheDirectoryAndAnEmptyLog) {
  WalOpenReport report;
  std::unique_ptr<Wal> wal = OpenOk(&report);
  ASSERT_NE(wal, nullptr);
  EXPECT_FALSE(report.tail_cut);
  EXPECT_EQ(report.records, 0u);
  EXPECT_TRUE(wal->Replay().empty());
  EXPECT_EQ(wal->last_end_height(), 0u);
  EXPECT_THAT(wal->TestOnlySegmentPaths(), ElementsAre(Segment(dir_, 1)));
  EXPECT_EQ(FileSize(Segment(dir_, 1)), 0u);
  wal.reset();
  // An empty segment reopens as an empty log.
  wal = OpenOk(&report);
  ASSERT_NE(wal, nullptr);
  EXPECT_FALSE(report.tail_cut);
  EXPECT_EQ(report.segments, 1u);
  EXPECT_TRUE(wal->Replay().empty());
}

TEST_F(ConsensusWalTest, RecordsSurviveReopen) {
  const Vote prevote = MakeVote(VoteType::kPrevote, 5, 0, 1);
  const Vote precommit = MakeVote(VoteType::kPrecommit, 5, 0, 1);
  const Vote prevote_r1 = MakeVote(VoteType::kPrevote, 5, 1, 2);
  const WalProposal proposal{5, 1, ToBytes("block at 5/1")};
  const WalPolka lock{5, {MakeVote(VoteType::kPrevote, 5, 0, 1)}, {}};
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(prevote).ok());
    ASSERT_TRUE(wal->Append(precommit).ok());
    ASSERT_TRUE(wal->Append(lock).ok());
    ASSERT_TRUE(wal->Append(proposal).ok());
    ASSERT_TRUE(wal->Append(prevote_r1).ok());
  }
  WalOpenReport report;
  std::unique_ptr<Wal> wal = OpenOk(&report);
  ASSERT_NE(wal, nullptr);
  EXPECT_FALSE(report.tail_cut);
  EXPECT_EQ(report.records, 5u);
  EXPECT_EQ(wal->Replay(), (std::vector<WalRecord>{prevote, precommit, lock,
                                                   proposal, prevote_r1}));
  EXPECT_EQ(wal->FindSignedVote(5, 0, VoteType::kPrecommit), precommit);
  EXPECT_EQ(wal->FindSignedVote(5, 1, VoteType::kPrevote), prevote_r1);
  EXPECT_EQ(wal->FindSignedVote(5, 1, VoteType::kPrecommit), std::nullopt);
  EXPECT_EQ(wal->FindSignedVote(6, 0, VoteType::kPrevote), std::nullopt);
  EXPECT_EQ(wal->FindProposal(5, 1), proposal.message);
  EXPECT_EQ(wal->FindProposal(5, 0), std::nullopt);
}

TEST_F(ConsensusWalTest, ReplayStartsAfterTheLastEndHeight) {
  const Vote v6 = MakeVote(VoteType::kPrevote, 6, 0, 6);
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, 5, 0, 5)).ok());
    ASSERT_TRUE(wal->Append(WalEndHeight{5}).ok());
    ASSERT_TRUE(wal->Append(v6).ok());
    EXPECT_EQ(wal->Replay(), std::vector<WalRecord>{v6});
  }
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  EXPECT_EQ(wal->last_end_height(), 5u);
  EXPECT_EQ(wal->Replay(), std::vector<WalRecord>{v6});
  // Older votes stay known for the double-sign checks.
  EXPECT_TRUE(wal->FindSignedVote(5, 0, VoteType::kPrevote).has_value());
  ASSERT_TRUE(wal->Append(WalEndHeight{6}).ok());
  EXPECT_TRUE(wal->Replay().empty());
}

TEST_F(ConsensusWalTest, RefusesConflictsAndEndHeightGoingBack) {
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  ASSERT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, 4, 0, 1)).ok());
  const uint64_t size = FileSize(Segment(dir_, 1));

  absl::Status s = wal->Append(MakeVote(VoteType::kPrevote, 4, 0, 2));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  // The same vote again (even re-signed) is not written twice.
  EXPECT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, 4, 0, 1, 0x11)).ok());
  EXPECT_EQ(FileSize(Segment(dir_, 1)), size);
  // Other round or type: no conflict.
  EXPECT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, 4, 1, 2)).ok());
  EXPECT_TRUE(wal->Append(MakeVote(VoteType::kPrecommit, 4, 0, 2)).ok());

  ASSERT_TRUE(wal->Append(WalProposal{4, 2, ToBytes("a")}).ok());
  EXPECT_EQ(wal->Append(WalProposal{4, 2, ToBytes("b")}).code(),
            absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(wal->Append(WalEndHeight{4}).ok());
  EXPECT_EQ(wal->Append(WalEndHeight{3}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ConsensusWalTest, BatchIsOneSyncAndAllOrNothing) {
  FaultEnv env;
  options_.env = &env;
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  std::vector<WalRecord> batch = {MakeVote(VoteType::kPrevote, 1, 0, 1),
                                  MakeVote(VoteType::kPrecommit, 1, 0, 1),
                                  WalEndHeight{1}};
  ASSERT_TRUE(wal->AppendBatch(batch).ok());
  EXPECT_EQ(env.syncs.load(), 1);
  const uint64_t size = FileSize(Segment(dir_, 1));

  // The second vote conflicts with the first of the same batch.
  std::vector<WalRecord> bad = {MakeVote(VoteType::kPrevote, 2, 0, 1),
                                MakeVote(VoteType::kPrevote, 2, 0, 2)};
  EXPECT_EQ(wal->AppendBatch(bad).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FileSize(Segment(dir_, 1)), size);
  EXPECT_EQ(wal->FindSignedVote(2, 0, VoteType::kPrevote), std::nullopt);
  EXPECT_EQ(env.syncs.load(), 1);
}

TEST_F(ConsensusWalTest, FailedSyncIsAnErrorAndSticky) {
  FaultEnv env;
  options_.env = &env;
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  ASSERT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, 1, 0, 1)).ok());
  env.fail_sync = true;
  absl::Status s = wal->Append(MakeVote(VoteType::kPrecommit, 1, 0, 1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_EQ(wal->stats().write_failures, 1u);
  // Not counted as logged, and later appends are refused even once the disk
  // is healthy again: what reached the disk is unknown until a reopen.
  EXPECT_EQ(wal->FindSignedVote(1, 0, VoteType::kPrecommit), std::nullopt);
  env.fail_sync = false;
  s = wal->Append(MakeVote(VoteType::kPrevote, 2, 0, 1));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  wal.reset();

  wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  EXPECT_TRUE(wal->FindSignedVote(1, 0, VoteType::kPrevote).has_value());
  EXPECT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, 2, 0, 1)).ok());
}

TEST_F(ConsensusWalTest, SecondOpenOfTheSameDirectoryIsRefused) {
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  absl::StatusOr<std::unique_ptr<Wal>> again =
      Wal::Open(dir_, options_, nullptr);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  wal.reset();
  EXPECT_NE(OpenOk(), nullptr);
}

// Builds a log of two records plus `last`, and returns the segment bytes and
// where `last` starts.
std::pair<Bytes, uint64_t> ThreeRecordLog(Wal* wal, const std::string& seg,
                                          const WalRecord& last) {
  EXPECT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, 9, 0, 1)).ok());
  EXPECT_TRUE(wal->Append(WalPolka{9, {}, {}}).ok());
  const uint64_t start = FileSize(seg);
  EXPECT_TRUE(wal->Append(last).ok());
  return {ReadAll(seg), start};
}

TEST_F(ConsensusWalTest, TornLastRecordAtEveryOffsetIsCutAndLogStaysUsable) {
  const std::string seg = Segment(dir_, 1);
  const Vote last = MakeVote(VoteType::kPrecommit, 9, 0, 1);
  Bytes full;
  uint64_t start = 0;
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    std::tie(full, start) = ThreeRecordLog(wal.get(), seg, last);
  }
  const std::vector<WalRecord> prefix = {MakeVote(VoteType::kPrevote, 9, 0, 1),
                                         WalPolka{9, {}, {}}};
  const Vote next = MakeVote(VoteType::kPrevote, 9, 1, 7);
  for (uint64_t cut = start; cut < full.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut));
    WriteAll(seg, Bytes(full.begin(), full.begin() + cut));
    WalOpenReport report;
    std::unique_ptr<Wal> wal = OpenOk(&report);
    ASSERT_NE(wal, nullptr);
    EXPECT_EQ(report.tail_cut, cut > start);
    EXPECT_EQ(report.records, 2u);
    if (cut > start) {
      EXPECT_EQ(report.cut_offset, start);
      EXPECT_EQ(report.cut_bytes, cut - start);
      EXPECT_EQ(wal->stats().tail_cuts, 1u);
    }
    EXPECT_EQ(FileSize(seg), start);
    EXPECT_EQ(wal->Replay(), prefix);
    // The torn vote is not known: the precommit slot is free again.
    EXPECT_EQ(wal->FindSignedVote(9, 0, VoteType::kPrecommit), std::nullopt);
    ASSERT_TRUE(wal->Append(next).ok());
    wal.reset();
    wal = OpenOk(&report);
    ASSERT_NE(wal, nullptr);
    EXPECT_FALSE(report.tail_cut);
    std::vector<WalRecord> want = prefix;
    want.push_back(next);
    EXPECT_EQ(wal->Replay(), want);
  }
}

TEST_F(ConsensusWalTest, FlippedBitAnywhereIsDetectedAndNothingAfterIsTrusted) {
  const std::string seg = Segment(dir_, 1);
  std::vector<WalRecord> records = {MakeVote(VoteType::kPrevote, 3, 0, 1),
                                    MakeVote(VoteType::kPrecommit, 3, 0, 1),
                                    WalProposal{3, 1, ToBytes("proposal")},
                                    MakeVote(VoteType::kPrevote, 3, 1, 2)};
  std::vector<uint64_t> starts;
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    for (const WalRecord& r : records) {
      starts.push_back(FileSize(seg));
      ASSERT_TRUE(wal->Append(r).ok());
    }
  }
  const Bytes full = ReadAll(seg);
  for (size_t byte = 0; byte < full.size(); ++byte) {
    SCOPED_TRACE(absl::StrCat("byte ", byte));
    size_t frame = 0;
    while (frame + 1 < starts.size() && starts[frame + 1] <= byte) ++frame;
    Bytes damaged = full;
    damaged[byte] ^= static_cast<uint8_t>(1u << (byte % 8));
    WriteAll(seg, damaged);
    WalOpenReport report;
    std::unique_ptr<Wal> wal = OpenOk(&report);
    ASSERT_NE(wal, nullptr);
    EXPECT_TRUE(report.tail_cut);
    EXPECT_EQ(report.cut_offset, starts[frame]);
    EXPECT_EQ(FileSize(seg), starts[frame]);
    EXPECT_EQ(wal->Replay(),
              std::vector<WalRecord>(records.begin(), records.begin() + frame));
  }
}

TEST_F(ConsensusWalTest, GoodRecordsAfterABadOneAreDropped) {
  const std::string seg = Segment(dir_, 1);
  std::vector<uint64_t> starts;
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    for (uint32_t round = 0; round < 4; ++round) {
      starts.push_back(FileSize(seg));
      ASSERT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, 3, round, 1)).ok());
    }
  }
  Bytes data = ReadAll(seg);
  data[starts[1] + kWalFrameHeaderBytes + 3] ^= 0xff;  // payload of record 2
  WriteAll(seg, data);
  WalOpenReport report;
  std::unique_ptr<Wal> wal = OpenOk(&report);
  ASSERT_NE(wal, nullptr);
  EXPECT_TRUE(report.tail_cut);
  EXPECT_THAT(report.cut_reason, HasSubstr("checksum"));
  EXPECT_EQ(report.cut_bytes, data.size() - starts[1]);
  EXPECT_EQ(FileSize(seg), starts[1]);
  EXPECT_EQ(wal->Replay().size(), 1u);
  EXPECT_EQ(wal->FindSignedVote(3, 3, VoteType::kPrevote), std::nullopt);
}

TEST_F(ConsensusWalTest, GarbageAfterTheLastRecordIsCut) {
  const std::string seg = Segment(dir_, 1);
  const Vote v = MakeVote(VoteType::kPrevote, 1, 0, 1);
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(v).ok());
  }
  const Bytes good = ReadAll(seg);
  std::mt19937 rng(42);
  std::vector<Bytes> tails = {Bytes(4096, 0), Bytes(3, 0xff), Bytes(777)};
  for (uint8_t& b : tails[2]) b = static_cast<uint8_t>(rng());
  // A whole valid frame after a garbage byte is not trusted either.
  tails.push_back({0x00});
  AppendWalFrame(MakeVote(VoteType::kPrecommit, 1, 0, 1), &tails.back());
  for (const Bytes& tail : tails) {
    Bytes data = good;
    data.insert(data.end(), tail.begin(), tail.end());
    WriteAll(seg, data);
    WalOpenReport report;
    std::unique_ptr<Wal> wal = OpenOk(&report);
    ASSERT_NE(wal, nullptr);
    EXPECT_TRUE(report.tail_cut);
    EXPECT_EQ(report.cut_bytes, tail.size());
    EXPECT_EQ(FileSize(seg), good.size());
    EXPECT_EQ(wal->Replay(), std::vector<WalRecord>{v});
    EXPECT_EQ(wal->FindSignedVote(1, 0, VoteType::kPrecommit), std::nullopt);
  }
}

TEST_F(ConsensusWalTest, WholeUndecodableRecordIsRefusedNotDropped) {
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, 1, 0, 1)).ok());
  }
  const std::string seg = Segment(dir_, 1);
  Bytes data = ReadAll(seg);
  Bytes payload = {0x42};  // a record kind this version does not know
  Bytes frame(8);
  frame[0] = 1;
  uint32_t crc = Crc32c(Crc32c(0, ByteView(frame.data(), 4)), payload);
  for (int i = 0; i < 4; ++i)
    frame[4 + i] = static_cast<uint8_t>(crc >> (8 * i));
  data.insert(data.end(), frame.begin(), frame.end());
  data.push_back(0x42);
  WriteAll(seg, data);
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(dir_, options_, nullptr);
  EXPECT_EQ(wal.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadAll(seg), data);  // left as it was for the operator
}

// Kind 4 was LockState, a record no release ever appended; the value is
// retired, never reused, and a frame of it (here in the encoding it had:
// height 9, round 0, no locked and no valid value) is refused, not replayed.
TEST_F(ConsensusWalTest, RetiredLockStateKindIsRefusedNotReplayed) {
  const Bytes payload = {4, 9, 0, 0, 0};
  absl::StatusOr<WalRecord> decoded = DecodeWalRecord(payload);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(decoded.status().message(), HasSubstr("retired"));
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    ASSERT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, 9, 0, 1)).ok());
  }
  const std::string seg = Segment(dir_, 1);
  Bytes data = ReadAll(seg);
  Bytes frame(8);
  frame[0] = static_cast<uint8_t>(payload.size());
  const uint32_t crc = Crc32c(Crc32c(0, ByteView(frame.data(), 4)), payload);
  for (int i = 0; i < 4; ++i) {
    frame[4 + i] = static_cast<uint8_t>(crc >> (8 * i));
  }
  data.insert(data.end(), frame.begin(), frame.end());
  data.insert(data.end(), payload.begin(), payload.end());
  WriteAll(seg, data);
  const WalSegmentScan scan = ScanWalSegment(data);
  EXPECT_EQ(scan.tail, WalSegmentScan::Tail::kUndecodable);
  EXPECT_EQ(scan.records.size(), 1u);
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(dir_, options_, nullptr);
  EXPECT_EQ(wal.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadAll(seg), data);  // left as it was for the operator
}

// Heights 1..n, each a prevote, a precommit and EndHeight.
void WriteHeights(Wal* wal, uint64_t from, uint64_t to) {
  for (uint64_t h = from; h <= to; ++h) {
    ASSERT_TRUE(wal->Append(MakeVote(VoteType::kPrevote, h, 0, 1)).ok());
    ASSERT_TRUE(wal->Append(MakeVote(VoteType::kPrecommit, h, 0, 1)).ok());
    ASSERT_TRUE(wal->Append(WalEndHeight{h}).ok());
  }
}

TEST_F(ConsensusWalTest, RotationStartsSegmentsAndDeletesOldOnes) {
  options_.max_segment_bytes = 600;
  options_.keep_heights = 5;
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    WriteHeights(wal.get(), 1, 60);
    WalStats stats = wal->stats();
    EXPECT_GT(stats.segments_created, 5u);
    EXPECT_GT(stats.segments_deleted, 0u);
    const std::vector<std::string> paths = wal->TestOnlySegmentPaths();
    EXPECT_LE(paths.size(), 6u);
    // Every segment but the current one ends with an EndHeight and is at least
    // max_segment_bytes long.
    for (size_t i = 0; i + 1 < paths.size(); ++i) {
      EXPECT_GE(FileSize(paths[i]), options_.max_segment_bytes);
    }
    EXPECT_NE(::access(Segment(dir_, 1).c_str(), F_OK), 0)
        << "segment 1 was not deleted";
    EXPECT_FALSE(wal->FindSignedVote(1, 0, VoteType::kPrevote).has_value());
  }
  WalOpenReport report;
  std::unique_ptr<Wal> wal = OpenOk(&report);
  ASSERT_NE(wal, nullptr);
  EXPECT_FALSE(report.tail_cut);
  EXPECT_EQ(wal->last_end_height(), 60u);
  EXPECT_TRUE(wal->Replay().empty());
  for (uint64_t h = 56; h <= 60; ++h) {
    EXPECT_TRUE(wal->FindSignedVote(h, 0, VoteType::kPrecommit).has_value())
        << h;
  }
  WriteHeights(wal.get(), 61, 70);
  EXPECT_EQ(wal->last_end_height(), 70u);
}

TEST_F(ConsensusWalTest, DamageInASealedSegmentIsDataLoss) {
  options_.max_segment_bytes = 300;
  options_.keep_heights = 1000;
  std::vector<std::string> paths;
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    WriteHeights(wal.get(), 1, 10);
    paths = wal->TestOnlySegmentPaths();
  }
  ASSERT_GE(paths.size(), 3u);
  const Bytes first = ReadAll(paths[0]);
  Bytes damaged = first;
  damaged[damaged.size() / 2] ^= 0x10;
  WriteAll(paths[0], damaged);
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(dir_, options_, nullptr);
  EXPECT_EQ(wal.status().code(), absl::StatusCode::kDataLoss) << wal.status();

  // A missing segment in the middle is refused too.
  WriteAll(paths[0], first);
  ASSERT_EQ(::unlink(paths[1].c_str()), 0);
  wal = Wal::Open(dir_, options_, nullptr);
  EXPECT_EQ(wal.status().code(), absl::StatusCode::kDataLoss) << wal.status();
}

// ---------------------------------------------------------------------------
// DoubleSignGuard

// What the fake key behind a guard was asked to sign.
struct KeyCalls {
  std::vector<Bytes> sign_bytes;  // one entry per signature made
  bool fail = false;              // answer InvalidArgument ("bad key")
};

// Signs anything with a signature of 64 times `sig`, recording the sign
// bytes it got.
class FakeKey final : public tendermint::MessageSigner {
 public:
  FakeKey(uint8_t sig, KeyCalls* calls) : sig_(sig), calls_(calls) {}
  absl::StatusOr<Bytes> SignVote(const Vote&, ByteView sign_bytes) override {
    return Sign(sign_bytes);
  }
  absl::StatusOr<Bytes> SignProposal(const Proposal&,
                                     ByteView sign_bytes) override {
    return Sign(sign_bytes);
  }

 private:
  absl::StatusOr<Bytes> Sign(ByteView sign_bytes) {
    if (calls_->fail) return absl::InvalidArgumentError("bad key");
    calls_->sign_bytes.emplace_back(sign_bytes.begin(), sign_bytes.end());
    return Bytes(64, sig_);
  }
  const uint8_t sig_;
  KeyCalls* const calls_;
};

class ConsensusWalGuardTest : public ConsensusWalTest {
 protected:
  std::unique_ptr<DoubleSignGuard> Guard(
      Wal* wal, uint8_t sig, DoubleSignGuard::PolkaFn polka = nullptr) {
    return std::make_unique<DoubleSignGuard>(
        wal, std::make_unique<FakeKey>(sig, &calls_), std::move(polka));
  }
  // The vote to sign (no signature yet) and stand-in sign bytes for it.
  static Vote Unsigned(VoteType type, uint64_t height, uint32_t round,
                       const Hash32& hash) {
    Vote v;
    v.type = type;
    v.height = height;
    v.round = round;
    v.block_hash = hash;
    v.validator_index = 3;
    return v;
  }
  static Bytes SignBytes(const Vote& v) {
    return VoteSignBytes("guard-test", v);
  }
  static Proposal MakeProposal(uint64_t height, uint32_t round,
                               const std::string& payload) {
    Proposal p;
    p.height = height;
    p.round = round;
    p.proposer_index = 3;
    p.block.header.chain_id = "guard-test";
    p.block.header.height = height;
    p.block.txs = {ToBytes(payload)};
    return p;
  }

  KeyCalls calls_;
};

// A conflicting vote is refused for the same (height, round, type) after a
// restart from the WAL, for both vote types; the same vote gets the logged
// signature back; another round is signed.
TEST_F(ConsensusWalGuardTest, RefusesAConflictingVoteAfterReopen) {
  for (VoteType type : {VoteType::kPrevote, VoteType::kPrecommit}) {
    SCOPED_TRACE(static_cast<int>(type));
    const uint64_t height = type == VoteType::kPrevote ? 8 : 9;
    {
      std::unique_ptr<Wal> wal = OpenOk();
      ASSERT_NE(wal, nullptr);
      const Vote v = Unsigned(type, height, 0, H(1));
      absl::StatusOr<Bytes> sig =
          Guard(wal.get(), 0xa1)->SignVote(v, SignBytes(v));
      ASSERT_TRUE(sig.ok()) << sig.status();
      EXPECT_EQ(*sig, Bytes(64, 0xa1));
    }
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    std::unique_ptr<DoubleSignGuard> guard = Guard(wal.get(), 0xb2);
    calls_.sign_bytes.clear();

    const Vote conflict = Unsigned(type, height, 0, H(2));
    EXPECT_EQ(guard->SignVote(conflict, SignBytes(conflict)).status().code(),
              absl::StatusCode::kFailedPrecondition);
    const Vote nil = Unsigned(type, height, 0, Hash32{});
    EXPECT_EQ(guard->SignVote(nil, SignBytes(nil)).status().code(),
              absl::StatusCode::kFailedPrecondition);
    // Another validator index is another message too.
    Vote other_index = Unsigned(type, height, 0, H(1));
    other_index.validator_index = 2;
    EXPECT_EQ(
        guard->SignVote(other_index, SignBytes(other_index)).status().code(),
        absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(wal->FindSignedVote(height, 0, type)->block_hash, H(1));

    const Vote same = Unsigned(type, height, 0, H(1));
    absl::StatusOr<Bytes> again = guard->SignVote(same, SignBytes(same));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, Bytes(64, 0xa1));  // the logged one, re-sent
    EXPECT_TRUE(calls_.sign_bytes.empty()) << "nothing may be signed anew";

    const Vote next_round = Unsigned(type, height, 1, H(2));
    absl::StatusOr<Bytes> next =
        guard->SignVote(next_round, SignBytes(next_round));
    ASSERT_TRUE(next.ok()) << next.status();
    EXPECT_EQ(*next, Bytes(64, 0xb2));
    EXPECT_EQ(calls_.sign_bytes.size(), 1u);
    Vote logged = next_round;
    logged.signature = Bytes(64, 0xb2);
    EXPECT_EQ(wal->FindSignedVote(height, 1, type), logged);
  }
}

// The key signs exactly the bytes the guard is given (it never derives its
// own), and the signature it returns and logs verifies over them.
TEST_F(ConsensusWalGuardTest, SignsExactlyTheGivenSignBytes) {
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  const Vote v = Unsigned(VoteType::kPrevote, 2, 0, H(7));
  const Bytes given = ToBytes("the exact bytes to sign");
  ASSERT_TRUE(Guard(wal.get(), 1)->SignVote(v, given).ok());
  ASSERT_EQ(calls_.sign_bytes.size(), 1u);
  EXPECT_EQ(calls_.sign_bytes[0], given);

  // With the real key: the returned and the logged signatures verify over
  // the given bytes (here those of another chain id than anyone would
  // derive), for a vote and a proposal.
  const CryptoSuite& suite = Ed25519Sha256();
  const KeyPair key = suite.GenerateKey();
  absl::StatusOr<std::unique_ptr<tendermint::KeySigner>> key_signer =
      tendermint::KeySigner::Create(suite, key.secret_key, key.public_key);
  ASSERT_TRUE(key_signer.ok()) << key_signer.status();
  DoubleSignGuard guard(wal.get(), *std::move(key_signer));
  const Vote w = Unsigned(VoteType::kPrecommit, 2, 0, H(7));
  const Bytes vote_bytes = VoteSignBytes("chain-x", w);
  absl::StatusOr<Bytes> vote_sig = guard.SignVote(w, vote_bytes);
  ASSERT_TRUE(vote_sig.ok()) << vote_sig.status();
  EXPECT_TRUE(suite.Verify(key.public_key, vote_bytes, *vote_sig));
  EXPECT_EQ(wal->FindSignedVote(2, 0, VoteType::kPrecommit)->signature,
            *vote_sig);

  const Proposal p = MakeProposal(2, 0, "tx");
  const Bytes proposal_bytes =
      ProposalSignBytes("chain-x", p, BlockHash(suite, p.block.header));
  absl::StatusOr<Bytes> proposal_sig = guard.SignProposal(p, proposal_bytes);
  ASSERT_TRUE(proposal_sig.ok()) << proposal_sig.status();
  EXPECT_TRUE(suite.Verify(key.public_key, proposal_bytes, *proposal_sig));
  // The log holds the signed proposal in its wire form (what a restarted
  // driver decodes and replays).
  std::optional<Bytes> logged = wal->FindProposal(2, 0);
  ASSERT_TRUE(logged.has_value());
  Proposal signed_p = p;
  signed_p.signature = *proposal_sig;
  EXPECT_EQ(*logged, tendermint::EncodeProposal(signed_p));
}

TEST_F(ConsensusWalGuardTest, RefusesNewVotesAtEndedHeights) {
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  std::unique_ptr<DoubleSignGuard> guard = Guard(wal.get(), 1);
  const Vote first = Unsigned(VoteType::kPrecommit, 4, 0, H(4));
  ASSERT_TRUE(guard->SignVote(first, SignBytes(first)).ok());
  ASSERT_TRUE(wal->Append(WalEndHeight{4}).ok());
  const Vote old = Unsigned(VoteType::kPrecommit, 4, 1, H(4));
  EXPECT_EQ(guard->SignVote(old, SignBytes(old)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const Vote older = Unsigned(VoteType::kPrevote, 2, 0, H(4));
  EXPECT_EQ(guard->SignVote(older, SignBytes(older)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const Proposal proposal = MakeProposal(4, 1, "late");
  EXPECT_EQ(guard->SignProposal(proposal, ToBytes("p")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(calls_.sign_bytes.size(), 1u);
  // The logged precommit can still be re-sent to peers that lag behind.
  absl::StatusOr<Bytes> resend = guard->SignVote(first, SignBytes(first));
  ASSERT_TRUE(resend.ok()) << resend.status();
  EXPECT_EQ(*resend, Bytes(64, 1));
}

TEST_F(ConsensusWalGuardTest, NothingToSendWhenTheLogOrSignerFails) {
  FaultEnv env;
  options_.env = &env;
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  std::unique_ptr<DoubleSignGuard> guard = Guard(wal.get(), 1);
  const Vote v = Unsigned(VoteType::kPrevote, 1, 0, H(1));

  calls_.fail = true;
  EXPECT_EQ(guard->SignVote(v, SignBytes(v)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wal->FindSignedVote(1, 0, VoteType::kPrevote), std::nullopt);
  calls_.fail = false;

  env.fail_sync = true;
  absl::StatusOr<Bytes> r = guard->SignVote(v, SignBytes(v));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal) << r.status();
  const Proposal p = MakeProposal(1, 0, "x");
  EXPECT_FALSE(guard->SignProposal(p, ToBytes("p")).ok());
}

// One proposal per (height, round), ever: after a restart from the WAL a
// second one is refused (the same one too: the state machine takes the
// logged proposal back and never asks again); another round is signed.
TEST_F(ConsensusWalGuardTest, AProposerProposesOncePerRound) {
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    std::unique_ptr<DoubleSignGuard> guard = Guard(wal.get(), 1);
    absl::StatusOr<Bytes> sig =
        guard->SignProposal(MakeProposal(3, 0, "first"), ToBytes("first"));
    ASSERT_TRUE(sig.ok()) << sig.status();
    // Within the same run as well.
    EXPECT_EQ(guard->SignProposal(MakeProposal(3, 0, "second"), ToBytes("2"))
                  .status()
                  .code(),
              absl::StatusCode::kFailedPrecondition);
  }
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  std::unique_ptr<DoubleSignGuard> guard = Guard(wal.get(), 1);
  calls_.sign_bytes.clear();
  const std::optional<Bytes> logged = wal->FindProposal(3, 0);
  ASSERT_TRUE(logged.has_value());
  for (const char* payload : {"second", "first"}) {
    EXPECT_EQ(guard->SignProposal(MakeProposal(3, 0, payload), ToBytes(payload))
                  .status()
                  .code(),
              absl::StatusCode::kFailedPrecondition)
        << payload;
  }
  EXPECT_TRUE(calls_.sign_bytes.empty());
  EXPECT_EQ(wal->FindProposal(3, 0), logged);
  ASSERT_TRUE(
      guard->SignProposal(MakeProposal(3, 1, "second"), ToBytes("r1")).ok());
  EXPECT_EQ(calls_.sign_bytes, std::vector<Bytes>{ToBytes("r1")});
}

// Before a non-nil precommit the polka is logged (without this validator's
// own votes); a nil precommit, a prevote, or a precommit logged before asks
// for none.
TEST_F(ConsensusWalGuardTest, LogsThePolkaBeforeANonNilPrecommit) {
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  int asked = 0;
  const Vote mine = MakeVote(VoteType::kPrevote, 6, 2, 9, 0x77);  // index 3
  Vote other = mine;
  other.validator_index = 1;
  std::unique_ptr<DoubleSignGuard> guard = Guard(
      wal.get(), 1, [&](uint64_t height, uint32_t round, const Hash32& hash) {
        ++asked;
        EXPECT_EQ(height, 6u);
        EXPECT_EQ(round, 2u);
        EXPECT_EQ(hash, H(9));
        return WalPolka{height, {mine, other}, ToBytes("their proposal")};
      });
  const Vote prevote = Unsigned(VoteType::kPrevote, 6, 2, H(9));
  const Vote nil = Unsigned(VoteType::kPrecommit, 6, 1, Hash32{});
  const Vote precommit = Unsigned(VoteType::kPrecommit, 6, 2, H(9));
  ASSERT_TRUE(guard->SignVote(prevote, SignBytes(prevote)).ok());
  ASSERT_TRUE(guard->SignVote(nil, SignBytes(nil)).ok());
  EXPECT_EQ(asked, 0);
  ASSERT_TRUE(guard->SignVote(precommit, SignBytes(precommit)).ok());
  EXPECT_EQ(asked, 1);
  ASSERT_TRUE(
      guard->SignVote(precommit, SignBytes(precommit)).ok());  // re-sent
  EXPECT_EQ(asked, 1);

  Vote signed_precommit = precommit;
  signed_precommit.signature = Bytes(64, 1);
  const std::vector<WalRecord> replay = wal->Replay();
  ASSERT_EQ(replay.size(), 4u);
  EXPECT_EQ(replay[2],
            WalRecord(WalPolka{6, {other}, ToBytes("their proposal")}));
  EXPECT_EQ(replay[3], WalRecord(signed_precommit));
}

// The whole stack a validator signs with: a state machine behind the guard
// (in front of a KeySigner and the WAL). After a restart from the WAL, a
// machine that did not get its logged messages back (no own_log) wants to
// prevote a block where it had prevoted nil: the guard refuses, and the
// machine sends nothing for that step.
TEST_F(ConsensusWalGuardTest,
       MachineBehindTheGuardSendsNoConflictAfterRestart) {
  const CryptoSuite& suite = Ed25519Sha256();
  Genesis genesis;
  genesis.chain_id = "guard-net";
  genesis.crypto_suite = suite.name();
  std::vector<KeyPair> keys;
  for (int i = 0; i < 4; ++i) {
    keys.push_back(suite.GenerateKey());
    genesis.validators.push_back(
        Validator{absl::StrCat("v", i), keys.back().public_key, 1});
  }
  auto machine = [&](Wal* wal) {
    absl::StatusOr<std::unique_ptr<tendermint::KeySigner>> key =
        tendermint::KeySigner::Create(suite, keys[0].secret_key,
                                      keys[0].public_key);
    EXPECT_TRUE(key.ok()) << key.status();
    auto guard = std::make_unique<DoubleSignGuard>(wal, *std::move(key));
    absl::StatusOr<std::unique_ptr<tendermint::StateMachine>> sm =
        tendermint::StateMachine::Create(genesis, suite, 0, guard.get());
    EXPECT_TRUE(sm.ok()) << sm.status();
    return std::make_pair(std::move(guard), *std::move(sm));
  };
  auto sent_votes = [](const tendermint::Actions& actions) {
    std::vector<Vote> votes;
    for (const tendermint::Action& a : actions) {
      const auto* b = std::get_if<tendermint::BroadcastAction>(&a);
      if (b == nullptr) continue;
      if (const Vote* v = std::get_if<Vote>(&b->message)) votes.push_back(*v);
    }
    return votes;
  };
  {
    std::unique_ptr<Wal> wal = OpenOk();
    ASSERT_NE(wal, nullptr);
    auto [guard, sm] = machine(wal.get());
    ASSERT_TRUE(sm->StartHeight(1).ok());
    // No proposal in time: prevote nil (line 57), logged by the guard.
    const std::vector<Vote> votes =
        sent_votes(sm->OnTimeout(1, 0, tendermint::Step::kPropose));
    ASSERT_EQ(votes.size(), 1u);
    EXPECT_TRUE(IsZero(votes[0].block_hash));
  }
  std::unique_ptr<Wal> wal = OpenOk();
  ASSERT_NE(wal, nullptr);
  auto [guard, sm] = machine(wal.get());
  ASSERT_TRUE(sm->StartHeight(1).ok());  // its log is NOT given back
  Proposal p;
  p.height = 1;
  p.round = 0;
  p.proposer_index = sm->Proposer(1, 0);
  ASSERT_NE(p.proposer_index, 0u);
  p.block.header.chain_id = genesis.chain_id;
  p.block.header.height = 1;
  p.block.txs = {ToBytes("a tx")};
  p.block.header.tx_root = MerkleRoot(suite, p.block.txs);
  const Hash32 hash = BlockHash(suite, p.block.header);
  p.signature = *suite.Sign(keys[p.proposer_index].secret_key,
                            ProposalSignBytes(genesis.chain_id, p, hash));
  tendermint::Actions actions = sm->OnProposal(p);
  const tendermint::Actions verdict =
      sm->OnBlockVerdict(1, hash, tendermint::BlockVerdict::kValid);
  actions.insert(actions.end(), verdict.begin(), verdict.end());
  EXPECT_TRUE(sent_votes(actions).empty());
  EXPECT_EQ(sm->counters().sign_failures, 1u);
  EXPECT_TRUE(
      IsZero(wal->FindSignedVote(1, 0, VoteType::kPrevote)->block_hash));
}

// ---------------------------------------------------------------------------
// kill -9

struct ChildLine {
  std::string kind;  // "SENT", "END" or "CUT"
  uint64_t height = 0;
  uint32_t round = 0;
  int type = 0;
  std::string hash;
};

// The complete lines of a child's output.
std::vector<ChildLine> ReadChildLines(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  std::vector<ChildLine> lines;
  size_t pos = 0;
  for (size_t nl; (nl = text.find('\n', pos)) != std::string::npos;
       pos = nl + 1) {
    std::istringstream ls(text.substr(pos, nl - pos));
    ChildLine l;
    ls >> l.kind;
    if (l.kind == "SENT") {
      ls >> l.height >> l.round >> l.type >> l.hash;
    } else {
      ls >> l.height;
    }
    lines.push_back(l);
  }
  return lines;
}

TEST(ConsensusWalCrashTest, KillNineAtRandomPointsNeverSendsAConflictingVote) {
  ScopedTempDir tmp;
  const std::string root = tmp.path();
  const std::string dir = root + "/wal";
  constexpr int kRuns = 60;
  constexpr uint64_t kSegmentBytes = 2048;
  constexpr uint64_t kKeepHeights = 8;
  WalOptions options;
  options.max_segment_bytes = kSegmentBytes;
  options.keep_heights = kKeepHeights;

  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> lines_before_kill(1, 30);
  // (height, round, type) -> block hash of every vote any run sent.
  std::map<std::tuple<uint64_t, uint32_t, int>, std::string> sent;
  uint64_t max_end = 0;
  int conflicts_refused = 0;
  int tails_cut = 0;

  for (int run = 0; run < kRuns; ++run) {
    SCOPED_TRACE(absl::StrCat("run ", run));
    const std::string log = absl::StrCat(root, "/child-", run, ".log");
    const int want = lines_before_kill(rng);
    absl::StatusOr<ChildProcess> child = ChildProcess::Start(
        {WAL_CRASH_CHILD_PATH, dir, std::to_string(run),
         std::to_string(kSegmentBytes), std::to_string(kKeepHeights)},
        log);
    ASSERT_TRUE(child.ok()) << child.status();
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (;;) {
      int sent_lines = 0;
      for (const ChildLine& l : ReadChildLines(log)) {
        sent_lines += l.kind == "SENT";
      }
      if (sent_lines >= want) break;
      ASSERT_TRUE(child->running()) << "child exited early; its output:\n"
                                    << AsString(ReadAll(log));
      ASSERT_LT(absl::Now(), deadline) << "child made no progress";
      absl::SleepFor(absl::Microseconds(200));
    }
    child->Signal(SIGKILL);
    ASSERT_TRUE(child->Wait(absl::Seconds(30)).ok());

    // Everything this run reported: no vote may contradict any earlier one.
    for (const ChildLine& l : ReadChildLines(log)) {
      if (l.kind == "END") max_end = std::max(max_end, l.height);
      if (l.kind != "SENT") continue;
      auto [it, inserted] =
          sent.emplace(std::make_tuple(l.height, l.round, l.type), l.hash);
      EXPECT_EQ(it->second, l.hash) << "conflicting vote sent at height "
                                    << l.height << " type " << l.type;
      // The hash carries the run that first chose it (bytes 8..15).
      if (l.hash.substr(16, 2) !=
          absl::StrCat(absl::Hex(run, absl::kZeroPad2))) {
        ++conflicts_refused;
      }
    }

    // The log reopens, and every vote reported as sent is in it. The check
    // opens a copy, so that the next run meets the torn tail (if any) itself.
    const std::string copy = absl::StrCat(root, "/check-", run);
    std::filesystem::copy(dir, copy);
    WalOpenReport report;
    absl::StatusOr<std::unique_ptr<Wal>> wal =
        Wal::Open(copy, options, &report);
    ASSERT_TRUE(wal.ok()) << wal.status();
    if (report.tail_cut) ++tails_cut;
    const uint64_t end = (*wal)->last_end_height();
    EXPECT_GE(end, max_end);
    for (const auto& [key, hash] : sent) {
      const auto& [height, round, type] = key;
      if (height + kKeepHeights <= end) continue;  // compacted away
      std::optional<Vote> v =
          (*wal)->FindSignedVote(height, round, static_cast<VoteType>(type));
      ASSERT_TRUE(v.has_value()) << "lost the vote at height " << height;
      EXPECT_EQ(ToHex(v->block_hash), hash);
    }
    EXPECT_LE((*wal)->TestOnlySegmentPaths().size(), 12u);
  }
  // The last run's leftovers reopen in place, and the log takes new records.
  {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(dir, options, nullptr);
    ASSERT_TRUE(wal.ok()) << wal.status();
    const uint64_t next = (*wal)->last_end_height() + 1;
    EXPECT_TRUE((*wal)->Append(WalEndHeight{next}).ok());
  }
  // Informational: how often the kill tore a frame and how often a restarted
  // run had to re-send a vote of an earlier run instead of its own.
  std::printf(
      "crash test: %zu votes, last height %llu, %d torn tails, "
      "%d re-sent votes of earlier runs\n",
      sent.size(), static_cast<unsigned long long>(max_end), tails_cut,
      conflicts_refused);
}

}  // namespace
}  // namespace consortia::consensus
