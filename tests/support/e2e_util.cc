#include "e2e_util.h"

#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "consortia/process.h"
#include "node_harness.h"

namespace consortia::testing {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::trunc | std::ios::binary) << data;
}

ProgramRun RunProgram(const std::string& dir, std::vector<std::string> argv,
                      absl::Duration timeout) {
  static std::atomic<int> n{0};
  const std::string log = absl::StrCat(dir, "/run-", n++, ".log");
  absl::StatusOr<ChildProcess> p = ChildProcess::Start(argv, log);
  if (!p.ok()) return {-1, std::string(p.status().message())};
  absl::StatusOr<int> status = p->Wait(timeout);
  if (!status.ok()) return {-1, "timed out\n" + ReadAll(log)};
  return {WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, ReadAll(log)};
}

std::vector<DocExample> DocExamples(const std::string& markdown) {
  std::vector<DocExample> out;
  const std::string open = "```sh e2e=";
  bool in = false;
  int n = 0;
  for (absl::string_view line : absl::StrSplit(markdown, '\n')) {
    ++n;
    if (!in && absl::StartsWith(line, open)) {
      in = true;
      out.push_back({std::string(line.substr(open.size())), "", n});
    } else if (in && absl::StartsWith(line, "```")) {
      in = false;
    } else if (in) {
      absl::StrAppend(&out.back().code, line, "\n");
    }
  }
  return out;
}

ProgramRun RunCli(const std::string& dir, std::vector<std::string> args,
                  absl::Duration timeout) {
  args.insert(args.begin(), BinDir() + "/consortia");
  return RunProgram(dir, std::move(args), timeout);
}

}  // namespace consortia::testing
