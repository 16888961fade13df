// The CURVE key folder (core/curve_keys.h) and the bind rule it relaxes
// (core/zmq_util.h RequireLoopbackUnlessInsecure).
#include "core/curve_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "core/curve_auth.h"
#include "core/error.h"
#include "core/zmq_util.h"

namespace clinrl {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "clinrl-curve-" +
                          std::to_string(getpid()) + "-" + name;
  fs::remove_all(dir);
  return dir;
}

int ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<int>(st.st_mode & 0777);
}

TEST(CurveKeys, FolderIsPrivateAndReadsBack) {
  const std::string dir = FreshDir("write");
  const CurveKeys keys = GenerateCurveKeys();
  WriteCurveKeys(keys, dir);
  EXPECT_EQ(ModeOf(dir), 0700);
  for (const char* f :
       {"server.public", "server.secret", "client.public", "client.secret"}) {
    EXPECT_EQ(ModeOf(dir + "/" + f), 0600) << f;
  }
  const CurveKeys back = ReadCurveKeys(dir, "--curve-keys");
  EXPECT_EQ(back.server_public, keys.server_public);
  EXPECT_EQ(back.server_secret, keys.server_secret);
  EXPECT_EQ(back.client_public, keys.client_public);
  EXPECT_EQ(back.client_secret, keys.client_secret);
  EXPECT_EQ(back.server_public.size(), 40u);
  EXPECT_NE(back.server_public, back.client_public);
  // Keys in use are never overwritten.
  EXPECT_THROW(WriteCurveKeys(GenerateCurveKeys(), dir), BadRequest);
  EXPECT_EQ(ReadCurveKeys(dir, "--curve-keys").server_secret,
            keys.server_secret);
  fs::remove_all(dir);
}

TEST(CurveKeys, ReadableSecretOrBadKeyIsRefusedNamingTheFile) {
  const std::string dir = FreshDir("bad");
  WriteCurveKeys(GenerateCurveKeys(), dir);
  ASSERT_EQ(::chmod((dir + "/client.secret").c_str(), 0644), 0);
  try {
    ReadCurveKeys(dir, "--curve-keys");
    ADD_FAILURE() << "a secret readable by others was accepted";
  } catch (const BadRequest& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("--curve-keys"), std::string::npos) << m;
    EXPECT_NE(m.find("client.secret"), std::string::npos) << m;
    EXPECT_NE(m.find("644"), std::string::npos) << m;
  }
  ASSERT_EQ(::chmod((dir + "/client.secret").c_str(), 0600), 0);
  WriteFileAtomic(dir + "/server.public", "not a key\n");
  try {
    ReadCurveKeys(dir, "distributed.curve_keys");
    ADD_FAILURE() << "a malformed key was accepted";
  } catch (const BadRequest& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("distributed.curve_keys"), std::string::npos) << m;
    EXPECT_NE(m.find("server.public"), std::string::npos) << m;
    EXPECT_NE(m.find("40"), std::string::npos) << m;
  }
  EXPECT_THROW(ReadCurveKeys(dir + "-missing", "--curve-keys"), BadRequest);
  fs::remove_all(dir);
}

// Roles of a run started at once all end up with the one pair in the run
// folder.
TEST(CurveKeys, ProcessesStartingTogetherAgreeOnOnePair) {
  const std::string dir = FreshDir("race") + "/run/curve";
  std::vector<CurveKeys> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] { got[i] = EnsureCurveKeys(dir, "x"); });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> distinct;
  for (const CurveKeys& k : got) distinct.insert(k.server_secret);
  EXPECT_EQ(distinct.size(), 1u);
  EXPECT_EQ(ModeOf(dir), 0700);
  // No temporary folder is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(fs::path(dir).parent_path()),
                          fs::directory_iterator()),
            1);
  fs::remove_all(fs::path(dir).parent_path().parent_path());
}

TEST(CurveKeys, WithKeysANonLoopbackBindNeedsNoInsecure) {
  EXPECT_THROW(RequireLoopbackUnlessInsecure("tcp://*:5555", false, "--x"),
               BadRequest);
  InstallCurveKeys(GenerateCurveKeys());
  EXPECT_NO_THROW(
      RequireLoopbackUnlessInsecure("tcp://*:5555", false, "--endpoint"));
  EXPECT_NO_THROW(
      RequireLoopbackUnlessInsecure("tcp://0.0.0.0:5555", false, "--x"));
  EXPECT_TRUE(UsesCurve("tcp://10.0.0.1:5555"));
  EXPECT_FALSE(UsesCurve("ipc:///tmp/x.sock"));
  EXPECT_FALSE(UsesCurve("inproc://x"));
  InstallCurveKeys(std::nullopt);
  EXPECT_FALSE(UsesCurve("tcp://10.0.0.1:5555"));
  EXPECT_THROW(RequireLoopbackUnlessInsecure("tcp://*:5555", false, "--x"),
               BadRequest);
}

}  // namespace
}  // namespace clinrl
