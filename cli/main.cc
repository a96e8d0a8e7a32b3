// consortia: the command-line client and local network launcher.
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"

namespace {

constexpr char kUsage[] = R"(usage: consortia <command> [options]

Keys and genesis
  keygen  --out FILE [--suite ed25519-sha256|sm2-sm3]
                                                    new key pair (JSON file,
                                                    mode 0600; never
                                                    overwrites FILE)
  genesis --chain-id ID --out FILE [--suite S] KEYFILE...
                                                    genesis with these
                                                    validators; the chain's
                                                    crypto suite is S, by
                                                    default the keys' suite

Transactions and queries (--api URL, default $CONSORTIA_API or
http://127.0.0.1:26657, or
https://...: certificate and host name checked against the system's CAs, or
only --tls-ca-file FILE, default $CONSORTIA_TLS_CA_FILE; --api-key KEY,
default $CONSORTIA_API_KEY: sent as Authorization: Bearer KEY)
  submit  --genesis FILE --key FILE --app APP --method M [--valid-for N]
          [--nonce N] [--wait [--timeout S]] [--dry-run] ARG...
                                                    build, sign and submit a tx
                                                    for the genesis's chain;
                                                    --wait follows the event
                                                    stream until it commits
          [--count N]                               N txs (nonce, nonce+1, ...;
                                                    {i} in an ARG is the tx's
                                                    index) as one batch
  submit-batch FILE                                 post a file of signed txs
                                                    ({"txs":[...]}, as
                                                    submit --count --dry-run
                                                    writes) as one batch
  get tx HASH | get block HEIGHT|latest | get state APP KEY
  verify  --genesis FILE TXHASH                     check a tx's proof offline:
                                                    only the genesis is trusted
                                                    (validator-set changes are
                                                    followed from it)
  verify  --genesis FILE --state APP KEY [--timeout S]
                                                    check a state value (or its
                                                    absence) the same way
  verify  --genesis FILE --answer FILE              check a saved answer (of
                                                    get state or a show --out)
                                                    offline, and say what it
                                                    proves

The native apps (tx commands take submit's --genesis, --key, --wait, ...;
show and list take --api and --out FILE to save the answer for verify)
  invoice issue --number N --buyer ORG --amount-cents A --tax-cents T
          --currency CNY (--items-hash HEX | --items-file F)
                                                    issue an e-invoice (an
                                                    issuer of the seller org)
  invoice accept|reimburse --issuer ORG --number N  the buyer's org accepts it,
                                                    reimburses it (once)
  invoice reject|void --issuer ORG --number N [--reason TEXT]
                                                    the buyer rejects it; the
                                                    issuer voids it
  invoice show --issuer ORG --number N [--out F]    the invoice, its history
                                                    and proof
  invoice list --buyer ORG | --seller ORG [--limit N] [--cursor C]
  notary anchor (--hash HEX | --file F) [--metadata TEXT]
                                                    anchor a document's hash
  notary revoke (--hash HEX | --file F) [--reason TEXT]
  notary show (--hash HEX | --file F) [--out F]     the record and its proof
  gov propose (--action JSON | --action-file F) [--ttl N]
                                                    propose a governance action
                                                    (docs/apps.md); its id is
                                                    the tx hash
  gov approve --id ID                               approve for your org
  gov show --id ID [--out F] | gov list | gov orgs | gov members
  gov validators [--out F]                          the validator set, and a
                                                    change and its height

API keys and the audit log (the api's --api_keys_file, --api_audit_log)
  apikey set-quota --file F --org ORG [--requests-per-s N] [--requests-burst N]
          [--tx-bytes-per-s N] [--tx-bytes-burst N]
                                                    create an organisation (or
                                                    change its quotas, per key)
  apikey create --file F --org ORG --scopes read,submit [--expires WHEN]
          [--label TEXT]                            new key; prints its secret
                                                    once (WHEN: RFC 3339 time
                                                    or 90d, 12h, 30m, 45s;
                                                    scopes: read, submit,
                                                    audit = read every org's
                                                    invoices, with read)
  apikey list --file F                              organisations and keys
  apikey expire --file F --id ID [--at WHEN]        expire a key (now)
  apikey revoke --file F --id ID                    revoke a key
  audit verify FILE                                 check an audit log's hash
                                                    chain: OK, or the first
                                                    bad line
  audit verify [--after HASH] FILE...               a rotated log's files,
                                                    oldest first, as one chain

Local network
  localnet [--dir DIR] [--api-port N] [--base-port N] [--validators N]
           [--single-process] [--suite ed25519-sha256|sm2-sm3]
           [--consortium FILE] [--candidates C]
          start N validator nodes on 127.0.0.1 (default 4, or as many as
          DIR's existing genesis has; a new network's crypto suite is
          --suite, default ed25519-sha256; keys, genesis and
          peers file are created in DIR on first use; node i serves its API
          on api-port + i); Ctrl-C stops every process. --consortium: a new
          genesis carries FILE's consortium section (founding organisations,
          member keys, roles: a permissioned chain, docs/apps.md);
          --candidates: C more nodes whose keys are not in the genesis, for
          a governance vote to make validators (docs/tutorials/validator.md)
  localnet [--dir DIR] --stop                       stop the one running from DIR
  localnet [--dir DIR] [--validators N] [--base-port N] [--suite S] --init-only
           [--consensus-host PATTERN] [--mempool-host PATTERN]
          write DIR's keys, genesis, peers file and API keys, start
          nothing; the peers file names node i's hosts by the patterns
          ("{i}" = i; default 127.0.0.1), as deploy/compose.yaml does

Health
  probe URL [--timeout S]                           GET URL; exit 0 on 200,
                                                    else 1 (for container
                                                    health checks)

Kubernetes (helm/consortia; docs/operations.md, "Install with Helm")
  k8s-secrets --chain-id ID --out DIR [--validators N] [--suite S]
          [--name NAME] [--p2p-port N] [--gossip-port N] [--api-keys FILE]
          new keys, genesis and peers file of N validators (default 4) in
          DIR (mode 0600, never overwrites), and the manifests the chart
          reads: Secret NAME-keys, ConfigMap NAME-genesis and, with
          --api-keys (an apikey file), Secret NAME-api-keys. NAME (default
          consortia) is the release's full name: peers dial
          tcp://NAME-I.NAME-peers:P2P-PORT (default 26604; gossip 26605)

Benchmark (docs/BENCHMARKS.md)
  bench [--validators 1|4] [--split | --single-process | --compare-single]
        [--rate TXS_PER_S|max] [--duration S] [--mode single|batch|both]
        [--batch N] [--connections N] [--drain S] [--out FILE]
        [--warmup S] [--max-txs N] [--verify-seconds S] [--dir DIR [--keep]]
        [--base-port N] [--api-port N] [--reads S] [--down N | --catch-up]
        [--backend rocksdb|redis]
          measure the machine's signature-verification rate, start a fresh
          local network (or load a running one: --api URL,... --genesis FILE
          [--api-key KEY] [--pids PID,...]), send pre-signed txs one per
          request and in batches, and report committed TPS against the
          ceiling (verify rate / validators), submit-to-commit latency,
          refused and lost txs (lost: exit code 1), CPU and peak RSS per
          process, as JSON. --reads S: after each run, S seconds of reads
          per route (GET /v1/txs/{hash}, /v1/blocks/{height},
          /v1/state/kv/{key} of the run). --down N: the last N nodes
          stopped before the load (N < validators / 3). --catch-up: the
          last node (of >= 4) stopped during the load, then started again;
          reports how fast it catches up. --backend redis: each node's
          storage on a redis-server of its own
)";

// The lines of kUsage that describe `cmd`: each entry naming it and the
// indented lines that continue it. Empty for an unknown command.
std::string CommandUsage(std::string_view cmd) {
  std::string out;
  bool in = false;
  std::string_view rest = kUsage;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line =
        rest.substr(0, nl == std::string_view::npos ? rest.size() : nl + 1);
    rest.remove_prefix(line.size());
    if (line.size() > 2 && line.starts_with("  ") && line[2] != ' ') {
      std::string_view name = line.substr(2);
      name = name.substr(0, name.find_first_of(" \n"));
      in = name == cmd;
    } else if (!line.starts_with("   ")) {
      in = false;
    }
    if (in) out += line;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" ||
      (std::string(argv[1]) == "help" && argc == 2)) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  // `consortia CMD --help` and `consortia help CMD`: that command's usage.
  const bool help_cmd = cmd == "help" && !args.empty();
  if (help_cmd || std::find(args.begin(), args.end(), "--help") != args.end() ||
      std::find(args.begin(), args.end(), "-h") != args.end()) {
    const std::string usage = CommandUsage(help_cmd ? args[0] : cmd);
    if (!usage.empty()) {
      std::printf("usage: consortia <command> [options]\n\n%s", usage.c_str());
      return 0;
    }
  }
  using namespace consortia::cli;
  if (cmd == "keygen") return KeygenCommand(args);
  if (cmd == "genesis") return GenesisCommand(args);
  if (cmd == "submit") return SubmitCommand(args);
  if (cmd == "submit-batch") return SubmitBatchCommand(args);
  if (cmd == "get") return GetCommand(args);
  if (cmd == "verify") return VerifyCommand(args);
  if (cmd == "localnet") return LocalnetCommand(args, argv[0]);
  if (cmd == "k8s-secrets") return K8sSecretsCommand(args);
  if (cmd == "bench") return BenchCommand(args, argv[0]);
  if (cmd == "apikey") return ApikeyCommand(args);
  if (cmd == "audit") return AuditCommand(args);
  if (cmd == "probe") return ProbeCommand(args);
  if (cmd == "invoice") return InvoiceCommand(args);
  if (cmd == "notary") return NotaryCommand(args);
  if (cmd == "gov") return GovCommand(args);
  std::fprintf(stderr, "consortia: unknown command '%s'\n\n%s", cmd.c_str(),
               kUsage);
  return 2;
}
