#include "http_transport.h"

#include <utility>

namespace consortia::http_internal {

HttpTransport::HttpTransport(tcp::socket socket) {
  plain_.emplace(std::move(socket));
}

HttpTransport::HttpTransport(tcp::socket socket,
                             std::shared_ptr<boost::asio::ssl::context> context)
    : context_(std::move(context)) {
  tls_.emplace(std::move(socket), *context_);
}

HttpTransport::HttpTransport(const executor_type& executor,
                             std::shared_ptr<boost::asio::ssl::context> context)
    : context_(std::move(context)) {
  if (context_ != nullptr) {
    tls_.emplace(executor, *context_);
  } else {
    plain_.emplace(executor);
  }
}

}  // namespace consortia::http_internal
