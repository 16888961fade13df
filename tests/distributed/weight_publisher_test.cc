#include "distributed/weight_publisher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "core/zmq_util.h"
#include "distributed/weight_subscriber.h"
#include "policy/transformer.h"

namespace clinrl::distributed {
namespace {

using nlohmann::json;

std::string UniqueEndpoint() {
  static std::atomic<int> n{0};
  return "inproc://weights-test-" + std::to_string(n++);
}

policy::Transformer TinyModel(uint64_t seed) {
  const json init = {{"vocab_size", 64},
                     {"hidden_size", 16},
                     {"intermediate_size", 32},
                     {"num_hidden_layers", 2},
                     {"num_attention_heads", 2},
                     {"num_key_value_heads", 1},
                     {"max_position_embeddings", 64}};
  policy::Transformer model(
      policy::TransformerOptions(policy::ModelConfig::FromJson(init, "init")));
  model->ResetParameters(seed);
  return model;
}

bool BitEqual(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.sizes().equals(b.sizes()) || a.scalar_type() != b.scalar_type()) {
    return false;
  }
  const torch::Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(),
                     x.numel() * x.element_size()) == 0;
}

WeightUpdate PollUntil(WeightSubscriber& sub, int64_t version) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto u = sub.Poll(100); u && u->version >= version) return *u;
  }
  ADD_FAILURE() << "no weights version " << version << " within 10 s";
  return {};
}

TEST(WeightPublisherTest, ModelRoundTripIsBitExact) {
  policy::Transformer source = TinyModel(1);
  policy::Transformer target = TinyModel(2);
  WeightPublisher publisher(UniqueEndpoint());
  WeightSubscriber subscriber(publisher.endpoint());
  publisher.Publish(*source, 1);
  const WeightUpdate update = PollUntil(subscriber, 1);
  EXPECT_EQ(update.version, 1);
  EXPECT_EQ(subscriber.version(), 1);
  LoadWeights(*target, update);
  auto want = source->named_parameters();
  auto got = target->named_parameters();
  ASSERT_EQ(want.size(), got.size());
  for (const auto& p : want) {
    EXPECT_TRUE(BitEqual(p.value(), got[p.key()])) << p.key();
  }
}

// A LoRA policy: the frozen base goes to each subscriber once, with its
// first version; later versions carry the adapters alone.
TEST(WeightPublisherTest, LoraSendsTheFrozenBaseOnceThenAdaptersOnly) {
  policy::LoraOptions lora;
  lora.rank = 2;
  lora.target_modules = {"q_proj", "v_proj"};
  policy::Transformer source = TinyModel(1);
  source->AddLora(lora);
  policy::Transformer target = TinyModel(2);
  target->AddLora(lora);
  WeightPublisher publisher(UniqueEndpoint());
  WeightSubscriber subscriber(publisher.endpoint());
  publisher.Publish(*source, 1);
  const WeightUpdate first = PollUntil(subscriber, 1);
  EXPECT_FALSE(first.partial);
  EXPECT_EQ(first.tensors.size(), source->parameters().size());
  LoadWeights(*target, first);
  const int64_t full_bytes = publisher.bytes_sent();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : source->parameters()) {
      if (p.requires_grad()) p.add_(0.5);
    }
  }
  publisher.Publish(*source, 2);
  const WeightUpdate second = PollUntil(subscriber, 2);
  EXPECT_TRUE(second.partial);
  // Two adapters (A and B) per targeted projection per layer.
  EXPECT_EQ(second.tensors.size(), 2u * 2 * 2);
  for (const auto& [name, t] : second.tensors) {
    EXPECT_TRUE(policy::IsLoraParameter(name)) << name;
  }
  LoadWeights(*target, second);
  for (const auto& p : source->named_parameters()) {
    EXPECT_TRUE(BitEqual(p.value(), target->named_parameters()[p.key()]))
        << p.key();
  }
  const int64_t adapter_bytes = publisher.bytes_sent() - full_bytes;
  EXPECT_LT(adapter_bytes * 10, full_bytes);
  // A subscriber joining now has nothing: it gets the base as well.
  WeightSubscriber late(publisher.endpoint());
  const WeightUpdate joined = PollUntil(late, 2);
  EXPECT_FALSE(joined.partial);
  EXPECT_EQ(joined.tensors.size(), source->parameters().size());
}

TEST(WeightPublisherTest, BfloatAndIntegerTensorsKeepTheirBytes) {
  WeightPublisher publisher(UniqueEndpoint());
  WeightSubscriber subscriber(publisher.endpoint());
  NamedTensors tensors = {{"a", torch::randn({3, 5}).to(torch::kBFloat16)},
                          {"b", torch::arange(7, torch::kInt64)},
                          {"empty", torch::zeros({0, 4})},
                          // Not contiguous: published as its contiguous copy.
                          {"t", torch::randn({4, 6}).t()}};
  publisher.Publish(0, tensors);
  const WeightUpdate u = PollUntil(subscriber, 0);
  ASSERT_EQ(u.tensors.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(u.tensors[i].first, tensors[i].first);
    EXPECT_TRUE(BitEqual(u.tensors[i].second, tensors[i].second))
        << tensors[i].first;
  }
}

TEST(WeightPublisherTest, LateJoinerGetsTheCurrentVersionAndThenNewOnes) {
  policy::Transformer model = TinyModel(3);
  WeightPublisher publisher(UniqueEndpoint());
  WeightSubscriber early(publisher.endpoint());
  publisher.Publish(*model, 1);
  PollUntil(early, 1);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(1.0);
  }
  publisher.Publish(*model, 2);
  PollUntil(early, 2);
  // Joins after both versions were published: gets version 2 at once,
  // never version 1.
  WeightSubscriber late(publisher.endpoint());
  const WeightUpdate u = PollUntil(late, 2);
  EXPECT_EQ(u.version, 2);
  policy::Transformer copy = TinyModel(9);
  LoadWeights(*copy, u);
  for (const auto& p : model->named_parameters()) {
    EXPECT_TRUE(BitEqual(p.value(), copy->named_parameters()[p.key()]));
  }
  publisher.Publish(*model, 3);
  EXPECT_EQ(PollUntil(late, 3).version, 3);
  EXPECT_EQ(PollUntil(early, 3).version, 3);
  // Nothing newer: a poll returns nothing rather than the same version.
  EXPECT_FALSE(late.Poll(50).has_value());
}

TEST(WeightPublisherTest, SubscriberStartedBeforeThePublisherIsServed) {
  const std::string endpoint =
      "ipc://" + ::testing::TempDir() + "weights-early.sock";
  WeightSubscriber subscriber(endpoint);
  EXPECT_FALSE(subscriber.Poll(20).has_value());
  WeightPublisher publisher(endpoint);
  publisher.Publish(4, {{"w", torch::ones({2})}});
  EXPECT_EQ(PollUntil(subscriber, 4).version, 4);
}

TEST(WeightPublisherTest, VersionsMustGrow) {
  WeightPublisher publisher(UniqueEndpoint());
  publisher.Publish(5, {{"w", torch::ones({1})}});
  try {
    publisher.Publish(5, {{"w", torch::ones({1})}});
    FAIL() << "expected BadRequest";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("published version 5, expected more "
                                         "than the current 5"),
              std::string::npos)
        << e.what();
  }
}

TEST(WeightPublisherTest, BadRequestGetsAnErrorAndThePublisherCarriesOn) {
  WeightPublisher publisher(UniqueEndpoint());
  publisher.Publish(1, {{"w", torch::ones({2})}});
  zmq::socket_t raw(SharedZmqContext(), zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(publisher.endpoint());
  raw.send(zmq::str_buffer("not json"), zmq::send_flags::none);
  raw.set(zmq::sockopt::rcvtimeo, 5000);
  zmq::message_t reply;
  ASSERT_TRUE(raw.recv(reply));
  const json body = json::parse(reply.to_string());
  EXPECT_EQ(body["ok"], false);
  EXPECT_EQ(body["error"]["code"], "bad_request");
  raw.send(zmq::str_buffer(R"({"op":"put"})"), zmq::send_flags::none);
  ASSERT_TRUE(raw.recv(reply));
  EXPECT_NE(reply.to_string().find("request.op: got 'put'"), std::string::npos)
      << reply.to_string();
  WeightSubscriber subscriber(publisher.endpoint());
  EXPECT_EQ(PollUntil(subscriber, 1).version, 1);
}

TEST(WeightMessageTest, MalformedMessagesNameTheProblem) {
  const std::string header =
      WeightHeader(3, {{"w", torch::ones({2, 2})}}).dump();
  const std::string bytes(16, '\0');
  EXPECT_EQ(DecodeWeights(header, {bytes}).version, 3);
  auto error = [](const std::string& h, std::vector<std::string_view> frames) {
    try {
      DecodeWeights(h, frames);
    } catch (const BadRequest& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error(header, {std::string_view(bytes).substr(0, 12)})
                .find("weights frame 1 ('w'): got 12 bytes, expected 16 "
                      "(float32 [2,2])"),
            std::string::npos);
  EXPECT_NE(error(header, {}).find("lists 1 tensors"), std::string::npos);
  EXPECT_NE(error("{", {}).find("weights header"), std::string::npos);
  json bad = json::parse(header);
  bad["tensors"][0]["dtype"] = "complex64";
  EXPECT_NE(error(bad.dump(), {bytes})
                .find("weights.tensors[0].dtype: got 'complex64'"),
            std::string::npos);
  bad = json::parse(header);
  bad.erase("version");
  EXPECT_NE(error(bad.dump(), {bytes}).find("weights.version"),
            std::string::npos);
}

TEST(WeightMessageTest, LoadingIntoAnotherArchitectureNamesTheTensor) {
  policy::Transformer model = TinyModel(1);
  WeightUpdate u{7, SnapshotParameters(*model)};
  u.tensors[0].second = torch::zeros({3});
  try {
    LoadWeights(*TinyModel(2), u);
    FAIL() << "expected BadRequest";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("'" + u.tensors[0].first + "'"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace clinrl::distributed
