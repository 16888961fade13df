// ZeroMQ plumbing of the reward server and client: one context for the
// process (inproc:// only connects sockets of one context; it is never
// terminated because zmq_ctx_term would block on any socket still open at
// exit), and typed errors for failed ZeroMQ calls.
#pragma once

#include <string>
#include <zmq.hpp>

namespace clinrl::rewards {

zmq::context_t& RewardZmqContext();

// Rethrows as IoError naming what was being done and the endpoint.
[[noreturn]] void ThrowZmqError(const zmq::error_t& e, const std::string& what);

// Throws BadRequest naming `field` unless `endpoint` is tcp://, ipc:// or
// inproc://.
void CheckRewardEndpoint(const std::string& endpoint, const std::string& field);

// inproc://<stem>-<n>, unique in the process.
std::string UniqueInproc(const std::string& stem);

}  // namespace clinrl::rewards
