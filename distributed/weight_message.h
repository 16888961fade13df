// The wire format of a policy version (docs/distributed.md, "Weight
// publishing"): one multipart ZeroMQ message, a JSON header frame
//   {"ok": true, "version": 7, "tensors": [{"name": ..., "dtype": "float32",
//    "shape": [..]}, ...]}
// followed by one raw frame per tensor, in header order, holding the
// tensor's contiguous bytes in host byte order. `"partial": true` marks an
// update of some parameters only (a LoRA run's adapters: its frozen base is
// sent once, to a subscriber that has no version yet). Raw frames, not JSON
// numbers: a float32 survives bit-exact and a 100 MB model costs one memcpy.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace clinrl::distributed {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct WeightUpdate {
  int64_t version = -1;
  NamedTensors tensors;  // CPU, contiguous, owned by the update
  bool partial = false;  // some of the module's parameters, not all
};

// Which parameters a snapshot takes: all, those that train
// (requires_grad), or the frozen rest.
enum class ParameterSet { kAll, kTrainable, kFrozen };

const char* DtypeName(torch::ScalarType type);
// Throws BadRequest naming `field`, the value and the supported names.
torch::ScalarType ParseDtype(const std::string& name, const std::string& field);

// Detached, contiguous CPU copies of the module's parameters: what a
// version publishes, safe from the optimizer's next in-place update.
NamedTensors SnapshotParameters(const torch::nn::Module& module,
                                ParameterSet which = ParameterSet::kAll);

// The header frame for `tensors` (CPU, contiguous).
nlohmann::json WeightHeader(int64_t version, const NamedTensors& tensors,
                            bool partial = false);

// Rebuilds an update from the header and the raw frames. Throws BadRequest
// naming the field or frame for a malformed header, a missing frame or a
// frame whose size does not match its dtype and shape.
WeightUpdate DecodeWeights(const std::string& header,
                           const std::vector<std::string_view>& frames);

// Copies the update into the module's parameters by name. Throws BadRequest
// naming the tensor when a name is missing on either side (a partial update
// may leave parameters out) or a shape differs.
void LoadWeights(torch::nn::Module& module, const WeightUpdate& update);

}  // namespace clinrl::distributed
