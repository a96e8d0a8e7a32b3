#include "apps/app.h"

#include <utility>

#include "apps/admin_app.h"
#include "apps/invoice_app.h"
#include "apps/kv_app.h"
#include "apps/notary_app.h"

namespace consortia::storage {

AppRegistry AppRegistry::WithBuiltins(const ChainRules& genesis_rules) {
  AppRegistry r;
  r.Add(std::make_unique<KvApp>());
  r.Add(std::make_unique<AdminApp>(genesis_rules));
  r.Add(std::make_unique<InvoiceApp>());
  r.Add(std::make_unique<NotaryApp>());
  return r;
}

void AppRegistry::Add(std::unique_ptr<NativeApp> app) {
  std::string name(app->name());
  apps_[std::move(name)] = std::move(app);
}

const NativeApp* AppRegistry::Find(std::string_view name) const {
  auto it = apps_.find(name);
  return it == apps_.end() ? nullptr : it->second.get();
}

}  // namespace consortia::storage
