// A plug-in library that loads (it exports the ABI function) but registers no
// reward, which `clinrl reward check` refuses naming the file
// (reward_cli_test.cc).
#include "rewards/plugin_loader.h"

extern "C" int clinrl_reward_plugin_abi() { return CLINRL_REWARD_PLUGIN_ABI; }
