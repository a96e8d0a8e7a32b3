// Test-only helpers shared by the end-to-end tests: whole-file reads and
// writes, and running a program (the consortia CLI, node, /bin/sh) to
// completion with its output captured in a log file.
#ifndef CONSORTIA_TESTS_SUPPORT_E2E_UTIL_H_
#define CONSORTIA_TESTS_SUPPORT_E2E_UTIL_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace consortia::testing {

// The whole file as text; "" when it cannot be read.
std::string ReadAll(const std::string& path);

// Replaces the file's contents with `data` (creating it if needed).
void WriteAll(const std::string& path, const std::string& data);

// How a program run ended: its exit code (-1 when it could not start, was
// killed by a signal or did not finish in time) and what it printed (stdout
// and stderr together; prefixed with "timed out\n" when it did not finish).
struct ProgramRun {
  int code = -1;
  std::string out;
};

// Runs argv (argv[0] is a path) to completion, waiting up to `timeout`; its
// output goes to a fresh log file under `dir` (run-N.log).
ProgramRun RunProgram(const std::string& dir, std::vector<std::string> argv,
                      absl::Duration timeout = absl::Seconds(90));

// One runnable example of a document: a fenced block opened by
// "```sh e2e=NAME" (docs/api.md's quick start, docs/tutorials/).
struct DocExample {
  std::string name;
  std::string code;
  int line = 0;  // of the opening fence
};
// The runnable examples of a Markdown text, in order.
std::vector<DocExample> DocExamples(const std::string& markdown);

// RunProgram of the built `consortia` CLI with `args`.
ProgramRun RunCli(const std::string& dir, std::vector<std::string> args,
                  absl::Duration timeout = absl::Seconds(90));

}  // namespace consortia::testing

#endif  // CONSORTIA_TESTS_SUPPORT_E2E_UTIL_H_
