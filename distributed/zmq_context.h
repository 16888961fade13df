// ZeroMQ plumbing of distributed/: one context for the process (inproc://
// connects only sockets of one context; never terminated, because
// zmq_ctx_term would block on any socket still open at exit) and typed
// errors for failed ZeroMQ calls.
#pragma once

#include <string>
#include <zmq.hpp>

namespace clinrl::distributed {

zmq::context_t& DistributedZmqContext();

// Rethrows as IoError naming what was being done (and the endpoint).
[[noreturn]] void ThrowZmqError(const zmq::error_t& e, const std::string& what);

// Throws BadRequest naming `field` unless `endpoint` is tcp://, ipc:// or
// inproc://.
void CheckEndpoint(const std::string& endpoint, const std::string& field);

// For ipc:// endpoints: creates the socket's folder (bind fails otherwise).
void PrepareBind(const std::string& endpoint);

}  // namespace clinrl::distributed
