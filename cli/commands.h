// The subcommands of `consortia`. Each returns the process exit code: 0 on
// success, 1 when the operation failed, 2 for bad usage.
#ifndef CONSORTIA_CLI_COMMANDS_H_
#define CONSORTIA_CLI_COMMANDS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consortia/api_keys.h"
#include "consortia/http_client.h"
#include "nlohmann/json.hpp"

namespace consortia::cli {

// Creates `path` with `data`, mode 0600, durably. AlreadyExists (and
// nothing written) if `path` exists, even when it appears concurrently.
absl::Status WriteNewKeyFile(const std::string& path, std::string_view data);

int KeygenCommand(const std::vector<std::string>& args);
int GenesisCommand(const std::vector<std::string>& args);
// `submit` builds, signs and posts one tx (POST /v1/txs), or with --count N
// that many, as one batch (POST /v1/txs:batch).
int SubmitCommand(const std::vector<std::string>& args);
// SubmitCommand; with refusal_fails, `--wait` exits 3 when the tx committed
// with a receipt other than ok (the app refused it).
int SubmitTx(const std::vector<std::string>& args, bool refusal_fails);

// A state answer (of /v1/state/{app}/{key} or a /v1/apps route) whose proof
// also carries the next block's header and certificate, fetched from `api`
// (waiting up to `timeout` for that block): what `verify --answer` checks
// offline. Nothing is trusted here; the verifier checks it all.
absl::StatusOr<nlohmann::json> CompleteStateAnswer(const HttpTarget& api,
                                                   nlohmann::json answer,
                                                   absl::Duration timeout);
// `submit-batch FILE`: posts a file of signed txs ({"txs":[...]} or the bare
// array) as one batch; 0 only when every tx is pending.
int SubmitBatchCommand(const std::vector<std::string>& args);
int GetCommand(const std::vector<std::string>& args);
int VerifyCommand(const std::vector<std::string>& args);
int LocalnetCommand(const std::vector<std::string>& args,
                    const std::string& self);
// `k8s-secrets`: keys, genesis, peers file and the Kubernetes Secret and
// ConfigMap manifests that helm/consortia reads (k8s_secrets.cc).
int K8sSecretsCommand(const std::vector<std::string>& args);
// `apikey create|list|expire|revoke|set-quota` and `audit verify`
// (apikey.cc).
int ApikeyCommand(const std::vector<std::string>& args);
int AuditCommand(const std::vector<std::string>& args);
// `probe URL`: GET URL (http:// or https://); 0 when the answer is 200, else
// 1 with the reason on stderr. The container health check of
// deploy/compose.yaml (the image has no curl).
int ProbeCommand(const std::vector<std::string>& args);
// cli/apps.cc: the native apps' txs and reads.
int InvoiceCommand(const std::vector<std::string>& args);
int NotaryCommand(const std::vector<std::string>& args);
int GovCommand(const std::vector<std::string>& args);

// The local network's development API key: organisation "dev" in
// `keys_path` and a key (scopes read, submit) whose secret is kept in
// `secret_path` (mode 0600), created on first use and reused after (a new
// one when the saved secret no longer matches the file). Returns the secret.
absl::StatusOr<std::string> EnsureDevApiKey(const std::string& keys_path,
                                            const std::string& secret_path);
// The same for any organisation `org` (created with `quotas` when the file
// lacks it) and a key labelled `label` (`consortia bench` makes its own, with
// quotas that do not limit the load).
absl::StatusOr<std::string> EnsureApiKey(const std::string& keys_path,
                                         const std::string& secret_path,
                                         const std::string& org,
                                         const OrgQuotas& quotas,
                                         const std::string& label);
// `bench` (bench.cc): the load generator of docs/BENCHMARKS.md.
int BenchCommand(const std::vector<std::string>& args, const std::string& self);

}  // namespace consortia::cli

#endif  // CONSORTIA_CLI_COMMANDS_H_
