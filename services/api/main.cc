// consortia-api: the HTTP/JSON api service as its own process.
#include "consortia/api/api_service.h"
#include "consortia/service_main.h"

int main(int argc, char** argv) {
  using consortia::api::ApiOptions;
  using consortia::api::ApiService;
  return consortia::RunServiceProcess<ApiService, ApiOptions>(
      argc, argv, "api",
      "consortia-api: the HTTP/JSON API of a node.\nUsage: consortia-api "
      "--genesis=FILE [--api_port=N] [flags]",
      [](ApiService& api, const ApiOptions& options) {
        spdlog::info("api listening on {}://{}:{}",
                     options.tls_cert_file.empty() ? "http" : "https",
                     options.host, api.port());
      });
}
