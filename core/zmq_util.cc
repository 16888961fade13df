#include "core/zmq_util.h"

#include <atomic>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <zmq_addon.hpp>

#include "core/atomic_file.h"
#include "core/curve_auth.h"
#include "core/error.h"

namespace clinrl {

zmq::context_t& SharedZmqContext() {
  // Leaked on purpose: see the header.
  static zmq::context_t* context = new zmq::context_t(1);
  return *context;
}

void ThrowZmqError(const zmq::error_t& e, const std::string& what) {
  throw IoError(
      fmt::format("ZeroMQ: {} failed: {} (errno {})", what, e.what(), e.num()));
}

void CheckEndpoint(const std::string& endpoint, const std::string& field) {
  for (const char* scheme : {"tcp://", "ipc://", "inproc://"}) {
    const size_t n = std::char_traits<char>::length(scheme);
    if (endpoint.size() > n && endpoint.compare(0, n, scheme) == 0) return;
  }
  throw BadRequest(fmt::format(
      "{}: got '{}', expected tcp://HOST:PORT, ipc://PATH or inproc://NAME",
      field, endpoint));
}

bool IsLoopbackEndpoint(const std::string& endpoint) {
  const std::string tcp = "tcp://";
  if (endpoint.compare(0, tcp.size(), tcp) != 0) return true;  // ipc, inproc
  std::string host = endpoint.substr(tcp.size());
  const size_t colon = host.rfind(':');
  if (colon != std::string::npos) host = host.substr(0, colon);
  // ZeroMQ's tcp://source;peer form belongs to connects: never loopback
  // for a bind.
  if (host.find(';') != std::string::npos) return false;
  if (host == "localhost" || host == "[::1]" || host == "::1") return true;
  return host.rfind("127.", 0) == 0;
}

void RequireLoopbackUnlessInsecure(const std::string& endpoint, bool insecure,
                                   const std::string& field) {
  // With CURVE keys only holders of the run's client key are served.
  if (insecure || IsLoopbackEndpoint(endpoint) || UsesCurve(endpoint)) return;
  throw BadRequest(fmt::format(
      "{}: got '{}', which binds beyond this host: without authentication "
      "anyone who can reach the port would be served (answer keys, patient "
      "records). Expected a loopback address (tcp://127.0.0.1:PORT), "
      "ipc:// or inproc://, --curve-keys DIR to serve only clients with the "
      "keys, or --insecure to serve the network anyway",
      field, endpoint));
}

std::string UniqueInprocEndpoint(const std::string& stem) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("inproc://{}-{}", stem, counter.fetch_add(1));
}

void PrepareBind(const std::string& endpoint) {
  const std::string scheme = "ipc://";
  if (endpoint.compare(0, scheme.size(), scheme) != 0) return;
  const std::filesystem::path path(endpoint.substr(scheme.size()));
  if (path.has_parent_path()) MakeDirectories(path.parent_path().string());
}

std::unique_ptr<zmq::socket_t> ConnectDealer(const std::string& endpoint,
                                             const std::string& what) {
  try {
    auto socket = std::make_unique<zmq::socket_t>(SharedZmqContext(),
                                                  zmq::socket_type::dealer);
    // Closing never waits for unsent messages: a client closes when its peer
    // is gone or the run is over, and a request in flight then is already
    // reported as timed out or no longer wanted.
    socket->set(zmq::sockopt::linger, 0);
    // No high-water mark: each client bounds its own traffic (requests in
    // flight with a timeout each, one outstanding weights request, one
    // heartbeat per interval until the learner counts as lost), and at the
    // default mark of 1000 a burst would block send or fail it with EAGAIN.
    socket->set(zmq::sockopt::sndhwm, 0);
    socket->set(zmq::sockopt::rcvhwm, 0);
    // A restarted server is found again within a second.
    socket->set(zmq::sockopt::reconnect_ivl, 50);
    socket->set(zmq::sockopt::reconnect_ivl_max, 1000);
    // ZMTP heartbeats detect a peer that vanished without closing TCP (host
    // or link down), so the connection is rebuilt in seconds rather than
    // after TCP's keepalive of hours. They run in ZeroMQ's I/O thread, so a
    // peer busy training or scoring still answers them; 5 s leaves room for
    // a loaded machine. The protocols' own timeouts (request timeouts,
    // heartbeat misses) still decide when a peer counts as dead.
    socket->set(zmq::sockopt::heartbeat_ivl, 1000);
    socket->set(zmq::sockopt::heartbeat_timeout, 5000);
    SecureClientSocket(*socket, endpoint);
    socket->connect(endpoint);
    return socket;
  } catch (const zmq::error_t& e) {
    ThrowZmqError(e, what);
  }
}

ConnectionMonitor::ConnectionMonitor(zmq::socket_t& socket,
                                     const std::string& what)
    : socket_(socket) {
  const std::string endpoint = UniqueInprocEndpoint("connection-monitor");
  try {
    if (zmq_socket_monitor(socket.handle(), endpoint.c_str(),
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0) {
      throw zmq::error_t();
    }
    events_ = std::make_unique<zmq::socket_t>(SharedZmqContext(),
                                              zmq::socket_type::pair);
    events_->set(zmq::sockopt::linger, 0);
    events_->connect(endpoint);
  } catch (const zmq::error_t& e) {
    ThrowZmqError(e, fmt::format("monitoring the connection of {}", what));
  }
}

ConnectionMonitor::~ConnectionMonitor() {
  // Stops the monitor before its PAIR closes; an error cannot be reported
  // from a destructor and leaves nothing to clean up.
  (void)zmq_socket_monitor(socket_.handle(), nullptr, 0);
}

int64_t ConnectionMonitor::Update() {
  int64_t disconnects = 0;
  while (true) {
    // Each event is two frames: the event id (16 bits) and a 32-bit value,
    // then the peer's endpoint.
    std::vector<zmq::message_t> frames = ReceiveMultipart(*events_);
    if (frames.empty()) return disconnects;
    uint16_t event = 0;
    uint32_t value = 0;
    if (frames[0].size() >= sizeof(event) + sizeof(value)) {
      std::memcpy(&event, frames[0].data(), sizeof(event));
      std::memcpy(&value, frames[0].data<char>() + sizeof(event),
                  sizeof(value));
    }
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      ++connected_;
      ever_connected_ = true;
      handshake_failure_.clear();
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      handshake_failure_ = fmt::format(
          "the server refused this client's CURVE key (ZAP status {})", value);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
      handshake_failure_ =
          value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
              ? "one side has CURVE keys and the other none"
              : fmt::format(
                    "ZMTP protocol error 0x{:x} in the handshake "
                    "(CURVE keys that do not match?)",
                    value);
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
      // Also proof of a connection whose handshake came before the monitor
      // (ConnectDealer connects first), so the server counts as gone.
      ++disconnects;
      ever_connected_ = true;
      if (connected_ > 0) --connected_;
    }
  }
}

zmq::pollitem_t ConnectionMonitor::PollItem() {
  return {events_->handle(), 0, ZMQ_POLLIN, 0};
}

std::vector<zmq::message_t> ReceiveMultipart(zmq::socket_t& socket,
                                             zmq::recv_flags flags) {
  std::vector<zmq::message_t> frames;
  // Nothing waiting (EAGAIN, or rcvtimeo ran out) leaves `frames` empty.
  (void)zmq::recv_multipart(socket, std::back_inserter(frames), flags);
  return frames;
}

}  // namespace clinrl
