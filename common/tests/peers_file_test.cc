// The peers file that consensus and mempool gossip share
// (consortia/peers_file.h).
#include "consortia/peers_file.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace consortia {
namespace {

CurveKey Key() {
  absl::StatusOr<CurveKeyPair> k = GenerateCurveKeyPair();
  EXPECT_TRUE(k.ok()) << k.status();
  return k.ok() ? k->public_key : CurveKey{};
}

TEST(PeersFileTest, RoundTripsWithAndWithoutMempoolEndpoints) {
  std::vector<PeersFileEntry> in = {
      {"node0", "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", Key()},
      {"node1", "tcp://127.0.0.1:3", "", Key()},
  };
  const std::string text = PeersFileToJson(in);
  EXPECT_EQ(text.find("mempool_endpoint"), text.rfind("mempool_endpoint"));
  absl::StatusOr<std::vector<PeersFileEntry>> out = ParsePeersFile(text);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*out)[i].id, in[i].id);
    EXPECT_EQ((*out)[i].endpoint, in[i].endpoint);
    EXPECT_EQ((*out)[i].mempool_endpoint, in[i].mempool_endpoint);
    EXPECT_EQ((*out)[i].public_key, in[i].public_key);
  }

  const std::vector<PeerInfo> consensus = ConsensusPeersOf(*out);
  ASSERT_EQ(consensus.size(), 2u);
  EXPECT_EQ(consensus[1].endpoint, "tcp://127.0.0.1:3");
  // A node without a mempool endpoint gets no gossip, but its key is still
  // allowed (it may connect to others' gossip).
  const std::vector<PeerInfo> mempool = MempoolPeersOf(*out);
  ASSERT_EQ(mempool.size(), 1u);
  EXPECT_EQ(mempool[0].id, "node0");
  EXPECT_EQ(mempool[0].endpoint, "tcp://127.0.0.1:2");
  EXPECT_EQ(AllowListOf(*out).size(), 2u);
}

TEST(PeersFileTest, RefusesBadEntries) {
  const std::string key = CurveKeyToZ85(Key());
  const std::string other = CurveKeyToZ85(Key());
  auto entry = [](const std::string& id, const std::string& k,
                  const std::string& extra = "") {
    return "{\"id\":\"" + id + "\",\"endpoint\":\"tcp://h:1\"," + extra +
           "\"public_key\":\"" + k + "\"}";
  };
  const std::vector<std::string> bad = {
      "not json",
      "{}",
      "[1]",
      "[{\"id\":\"a\",\"public_key\":\"" + key + "\"}]",  // no endpoint
      "[" + entry("", key) + "]",
      "[" + entry("a", "short") + "]",
      "[" + entry("a", key, "\"mempool_endpoint\":\"\",") + "]",
      "[" + entry("a", key, "\"mempool_endpoint\":7,") + "]",
      "[" + entry("a", key, "\"role\":\"leader\",") + "]",
      "[" + entry("a", key, "\"role\":1,") + "]",
      "[" + entry("a", key) + "," + entry("a", other) + "]",  // same id
      "[" + entry("a", key) + "," + entry("b", key) + "]",    // same key
  };
  for (const std::string& text : bad) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParsePeersFile(text).status())) << text;
  }
  // A role says whether the node is a validator's; none means it is.
  absl::StatusOr<std::vector<PeersFileEntry>> roles =
      ParsePeersFile("[" + entry("a", key, "\"role\":\"observer\",") + "," +
                     entry("b", other, "\"role\":\"validator\",") + "]");
  ASSERT_TRUE(roles.ok()) << roles.status();
  EXPECT_TRUE((*roles)[0].observer);
  EXPECT_FALSE((*roles)[1].observer);
  EXPECT_FALSE((*ParsePeersFile("[" + entry("a", key) + "]"))[0].observer);
  roles = ParsePeersFile(PeersFileToJson(*roles));
  ASSERT_TRUE(roles.ok());
  EXPECT_TRUE((*roles)[0].observer);
  EXPECT_FALSE((*roles)[1].observer);
  // Fields it does not know are ignored.
  EXPECT_TRUE(ParsePeersFile("[" + entry("a", key, "\"x\":1,") + "]").ok());
}

}  // namespace
}  // namespace consortia
