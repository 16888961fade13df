// Loading reward plug-ins from shared libraries: the example plug-in
// registers and scores; missing files and libraries without the ABI symbol
// are refused with errors naming the file.
#include "rewards/plugin_loader.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "rewards/composite_reward.h"
#include "rewards/reward_registry.h"
#include "tests/rewards/test_trajectories.h"

namespace clinrl::rewards {
namespace {

TEST(PluginLoader, ExamplePluginRegistersAndScores) {
  ASSERT_FALSE(RewardRegistry::Global().Has("keyword_fraction"));
  const LoadedPlugin p = LoadRewardPlugin(CLINRL_EXAMPLE_REWARD_PLUGIN);
  EXPECT_EQ(p.rewards, std::vector<std::string>{"keyword_fraction"});
  ASSERT_TRUE(RewardRegistry::Global().Has("keyword_fraction"));
  // Loading again is a no-op (no "registered twice").
  EXPECT_EQ(LoadRewardPlugin(CLINRL_EXAMPLE_REWARD_PLUGIN).rewards, p.rewards);

  auto t = testing::MakeDialogue({"Order an ECG and a Troponin now."});
  t.reward_spec = {
      {"components",
       {{{"name", "kw"},
         {"plugin", "keyword_fraction"},
         {"weight", 2.0},
         {"params",
          {{"keywords", {"troponin", "ecg", "d-dimer", "lipase"}}}}}}}};
  const RewardResult r = ScoreTrajectory(t);
  EXPECT_DOUBLE_EQ(r.components.at("kw").score, 0.5);
  EXPECT_DOUBLE_EQ(r.total, 1.0);
  t.reward_spec["components"][0]["params"]["keywords"] = json::array();
  try {
    ScoreTrajectory(t);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("params.keywords"), std::string::npos)
        << e.what();
  }
}

TEST(PluginLoader, RefusesWhatIsNotAPlugin) {
  try {
    LoadRewardPlugin("/nonexistent/libnothing.so");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/libnothing.so"),
              std::string::npos);
  }
  // A real shared library that is not a reward plug-in.
  try {
    LoadRewardPlugin("libz.so.1");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("clinrl_reward_plugin_abi"),
              std::string::npos)
        << e.what();
  }
}

// dlopen never looks in the current directory for a bare name: entries are
// resolved against the config file's folder, then the current directory.
TEST(PluginLoader, RelativePathsResolveAgainstTheConfigFolderThenHere) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(::testing::TempDir()) / "plugin_paths";
  fs::remove_all(root);
  fs::create_directories(root / "configs");
  fs::create_directories(root / "work");
  fs::copy_file(CLINRL_EXAMPLE_REWARD_PLUGIN, root / "configs/libnear.so");
  fs::copy_file(CLINRL_EXAMPLE_REWARD_PLUGIN, root / "work/libhere.so");
  const fs::path before = fs::current_path();
  fs::current_path(root / "work");
  const std::vector<std::string> resolved = ResolvePluginPaths(
      {"libnear.so", "libhere.so", "libz.so.1", "/abs/libx.so"},
      (root / "configs/run.json").string());
  fs::current_path(before);
  EXPECT_EQ(resolved,
            (std::vector<std::string>{(root / "configs/libnear.so").string(),
                                      (root / "work/libhere.so").string(),
                                      "libz.so.1", "/abs/libx.so"}));
  // Without a config file, only the current directory.
  fs::current_path(root / "work");
  const std::vector<std::string> here =
      ResolvePluginPaths({"libnear.so", "libhere.so"}, "");
  fs::current_path(before);
  EXPECT_EQ(here, (std::vector<std::string>{
                      "libnear.so", (root / "work/libhere.so").string()}));
}

TEST(PluginLoader, AnUnknownPluginNamesRewardsPlugins) {
  try {
    RewardRegistry::Global().Create("no_such_plugin");
    FAIL() << "expected NotFound";
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("rewards.plugins"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace clinrl::rewards
