// consortia-crypto-bench: the cost of each CryptoSuite operation, per suite,
// on one thread, in operations per CPU-second of that thread (so that other
// load on the machine does not distort it). Not a test: it asserts only that
// every signature verifies. docs/BENCHMARKS.md quotes it.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "consortia/crypto_suite.h"

ABSL_FLAG(int, ops, 2000, "Signatures signed and verified per measurement.");
ABSL_FLAG(int, reps, 3, "Repetitions; the medians are reported.");
ABSL_FLAG(size_t, message_bytes, 200, "Bytes per signed message (a kv tx).");

namespace consortia {
namespace {

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Operations per CPU-second of fn(i) for i in [0, n).
template <typename Fn>
double Rate(int n, Fn fn) {
  const double start = ThreadCpuSeconds();
  for (int i = 0; i < n; ++i) fn(i);
  return n / (ThreadCpuSeconds() - start);
}

void Bench(const CryptoSuite& suite) {
  const int n = absl::GetFlag(FLAGS_ops);
  const size_t len = absl::GetFlag(FLAGS_message_bytes);
  std::vector<KeyPair> keys;
  for (int i = 0; i < 16; ++i) keys.push_back(suite.GenerateKey());
  std::vector<Bytes> msgs(n, Bytes(len));
  for (int i = 0; i < n; ++i) {
    for (size_t j = 0; j < len; ++j) msgs[i][j] = static_cast<uint8_t>(i + j);
  }
  std::vector<Bytes> sigs(n);
  std::vector<double> keygen, sign, verify, hash;
  for (int r = 0; r < absl::GetFlag(FLAGS_reps); ++r) {
    keygen.push_back(Rate(n / 4, [&](int) { suite.GenerateKey(); }));
    sign.push_back(Rate(n, [&](int i) {
      sigs[i] = *suite.Sign(keys[i % keys.size()].secret_key, msgs[i]);
    }));
    int bad = 0;
    verify.push_back(Rate(n, [&](int i) {
      if (!suite.Verify(keys[i % keys.size()].public_key, msgs[i], sigs[i])) {
        ++bad;
      }
    }));
    if (bad != 0) {
      std::fprintf(stderr, "%d signatures did not verify\n", bad);
      std::exit(1);
    }
    Hash32 sink{};
    hash.push_back(Rate(n * 50, [&](int i) {
      sink = suite.Hash({msgs[i % n], ByteView(sink.data(), 1)});
    }));
  }
  std::printf("%-16s %12.0f %12.0f %12.0f %14.0f\n",
              std::string(suite.name()).c_str(), Median(keygen), Median(sign),
              Median(verify), Median(hash));
}

}  // namespace
}  // namespace consortia

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::printf(
      "operations per CPU-second of one thread (median of %d), %zu-byte "
      "messages\n%-16s %12s %12s %12s %14s\n",
      absl::GetFlag(FLAGS_reps), absl::GetFlag(FLAGS_message_bytes), "suite",
      "keygen", "sign", "verify", "hash");
  consortia::Bench(consortia::Ed25519Sha256());
  consortia::Bench(consortia::Sm2Sm3());
  return 0;
}
