// ZeroMQ plumbing shared by every folder that opens sockets (envs, rewards,
// distributed, rollout, trainer): one context for the process, typed errors
// for failed ZeroMQ calls, and endpoint checks.
//
// One context, because inproc:// connects only sockets of the same context:
// an env server, a reward server and a learner in one process must share it.
// It is never terminated, because zmq_ctx_term blocks until every socket is
// closed and static destruction order cannot promise that.
#pragma once

#include <string>
#include <zmq.hpp>

namespace clinrl {

zmq::context_t& SharedZmqContext();

// Rethrows a cppzmq error as IoError naming what was being done (and the
// endpoint).
[[noreturn]] void ThrowZmqError(const zmq::error_t& e, const std::string& what);

// Throws BadRequest naming `field` unless `endpoint` starts with tcp://,
// ipc:// or inproc:// and names something after it.
void CheckEndpoint(const std::string& endpoint, const std::string& field);

// A fresh, process-unique inproc endpoint name: inproc://<stem>-<n>.
std::string UniqueInprocEndpoint(const std::string& stem);

// For ipc:// endpoints: creates the socket's folder (bind fails otherwise).
void PrepareBind(const std::string& endpoint);

}  // namespace clinrl
