#include "distributed/weight_message.h"

#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl::distributed {

namespace {

struct DtypeEntry {
  const char* name;
  torch::ScalarType type;
};

constexpr DtypeEntry kDtypes[] = {
    {"float32", torch::kFloat32}, {"bfloat16", torch::kBFloat16},
    {"float16", torch::kFloat16}, {"float64", torch::kFloat64},
    {"int64", torch::kInt64},     {"int32", torch::kInt32},
    {"uint8", torch::kUInt8},     {"bool", torch::kBool}};

std::string ShapeText(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

}  // namespace

const char* DtypeName(torch::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  throw BadRequest(fmt::format("weights: dtype {} cannot be published",
                               c10::toString(type)));
}

torch::ScalarType ParseDtype(const std::string& name,
                             const std::string& field) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return d.type;
  }
  throw BadRequest(fmt::format(
      "{}: got '{}', expected one of: float32, bfloat16, float16, float64, "
      "int64, int32, uint8, bool",
      field, name));
}

NamedTensors SnapshotParameters(const torch::nn::Module& module,
                                ParameterSet which) {
  // One flat buffer per dtype, copied to the host in one transfer: a GPU
  // model's weights leave the device once, not once per parameter.
  torch::NoGradGuard no_grad;
  torch::OrderedDict<std::string, torch::Tensor> params;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    const bool trains = p.value().requires_grad();
    if (which == ParameterSet::kAll ||
        trains == (which == ParameterSet::kTrainable)) {
      params.insert(p.key(), p.value());
    }
  }
  std::map<torch::ScalarType, std::vector<torch::Tensor>> flat_by_dtype;
  for (const auto& p : params) {
    flat_by_dtype[p.value().scalar_type()].push_back(
        p.value().detach().reshape(-1));
  }
  std::map<torch::ScalarType, torch::Tensor> host;
  std::map<torch::ScalarType, int64_t> offset;
  for (const auto& [dtype, flats] : flat_by_dtype) {
    host[dtype] = torch::cat(flats).to(torch::kCPU);
    offset[dtype] = 0;
  }
  NamedTensors out;
  for (const auto& p : params) {
    const torch::Tensor& v = p.value();
    int64_t& at = offset[v.scalar_type()];
    out.emplace_back(
        p.key(),
        host[v.scalar_type()].narrow(0, at, v.numel()).view(v.sizes()));
    at += v.numel();
  }
  return out;
}

nlohmann::json WeightHeader(int64_t version, const NamedTensors& tensors,
                            bool partial) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, t] : tensors) {
    CLINRL_CHECK(t.device().is_cpu() && t.is_contiguous(),
                 "weights: tensor '{}' must be a contiguous CPU tensor", name);
    list.push_back({{"name", name},
                    {"dtype", DtypeName(t.scalar_type())},
                    {"shape", t.sizes().vec()}});
  }
  nlohmann::json header = {
      {"ok", true}, {"version", version}, {"tensors", std::move(list)}};
  if (partial) header["partial"] = true;
  return header;
}

WeightUpdate DecodeWeights(const std::string& header,
                           const std::vector<std::string_view>& frames) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(header);
  } catch (const nlohmann::json::parse_error& e) {
    throw BadRequest(
        fmt::format("weights header: expected a JSON object, got text that "
                    "does not parse ({})",
                    e.what()));
  }
  if (!doc.is_object()) {
    throw BadRequest(fmt::format(
        "weights header: expected a JSON object, got {}", doc.type_name()));
  }
  wire::CheckReply(doc, "weights");
  const wire::Fields f(doc, "weights");
  WeightUpdate update;
  update.version = f.Int("version");
  update.partial = f.Bool("partial", false);
  const nlohmann::json& list = f.Array("tensors");
  if (list.size() != frames.size()) {
    throw BadRequest(fmt::format(
        "weights: the header lists {} tensors, expected one raw frame each, "
        "got {} frames",
        list.size(), frames.size()));
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    const wire::Fields t(list[i], fmt::format("weights.tensors[{}]", i));
    const std::string name = t.String("name");
    if (!seen.insert(name).second) {
      throw BadRequest(fmt::format(
          "weights.tensors[{}].name: '{}' appears twice, expected unique names",
          i, name));
    }
    const torch::ScalarType type =
        ParseDtype(t.String("dtype"), t.path() + ".dtype");
    const std::vector<int64_t> shape = t.IntArray("shape");
    int64_t numel = 1;
    for (int64_t d : shape) {
      if (d < 0) {
        throw BadRequest(fmt::format("{}.shape: got {}, expected sizes >= 0",
                                     t.path(), ShapeText(shape)));
      }
      numel *= d;
    }
    torch::Tensor tensor = torch::empty(shape, torch::dtype(type));
    const size_t bytes = static_cast<size_t>(numel) * tensor.element_size();
    if (frames[i].size() != bytes) {
      throw BadRequest(fmt::format(
          "weights frame {} ('{}'): got {} bytes, expected {} ({} {})", i + 1,
          name, frames[i].size(), bytes, DtypeName(type), ShapeText(shape)));
    }
    if (bytes > 0) std::memcpy(tensor.data_ptr(), frames[i].data(), bytes);
    update.tensors.emplace_back(name, std::move(tensor));
  }
  return update;
}

void LoadWeights(torch::nn::Module& module, const WeightUpdate& update) {
  auto params = module.named_parameters(/*recurse=*/true);
  if (!update.partial && params.size() != update.tensors.size()) {
    throw BadRequest(fmt::format(
        "weights version {}: got {} tensors, expected the model's {}",
        update.version, update.tensors.size(), params.size()));
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : update.tensors) {
    torch::Tensor* dst = params.find(name);
    if (dst == nullptr) {
      throw BadRequest(fmt::format(
          "weights version {}: tensor '{}' is not a parameter of the model",
          update.version, name));
    }
    if (!dst->sizes().equals(t.sizes())) {
      throw BadRequest(fmt::format(
          "weights version {}: tensor '{}' has shape {}, expected {}",
          update.version, name, ShapeText(t.sizes().vec()),
          ShapeText(dst->sizes().vec())));
    }
    dst->copy_(t);
  }
}

}  // namespace clinrl::distributed
