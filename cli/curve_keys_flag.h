// The --curve-keys flag of the commands that serve or connect over tcp://
// (env serve/eval/spec/demos, reward serve/score, distributed run), and the
// run config's distributed.curve_keys that `clinrl train` and `clinrl eval`
// read (docs/distributed.md, "Keys and what they
// protect"). Defined in keys_command.cc beside `clinrl keys generate`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/clinrl_config.h"

namespace clinrl::cli {

// Adds --curve-keys DIR to `command`, stored in `*dir`.
void AddCurveKeysOption(CLI::App* command, std::string* dir);

// Reads the key folder `dir` (given as `field`) and makes its keys the
// process's, so that every tcp:// bind and connect uses CURVE. Nothing when
// `dir` is empty.
void InstallCurveKeysFrom(const std::string& dir, const std::string& field);

// The keys of a run of `config`: distributed.curve_keys when set, else, when
// `default_dir` is not empty, that folder, made when absent (a distributed
// run's <run dir>/curve). Installs them; nothing when both are empty.
void InstallRunCurveKeys(const ClinrlConfig& config,
                         const std::string& default_dir);

}  // namespace clinrl::cli
