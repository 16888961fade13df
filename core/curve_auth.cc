#include "core/curve_auth.h"

#include <zmq.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/zmq_util.h"

namespace clinrl {

namespace {

using Clock = std::chrono::steady_clock;

// The endpoint ZeroMQ asks for authentication (ZAP, RFC 27).
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
// How often the guard thread looks for servers to watch when nothing happens.
constexpr int64_t kGuardPollMs = 100;
// A client without keys retries about once a second; one line per refusal
// reason and server every 10 s says as much.
constexpr auto kRefusalLogInterval = std::chrono::seconds(10);

std::mutex keys_mutex;
std::optional<CurveKeys> installed_keys;

bool IsTcp(const std::string& endpoint) {
  return endpoint.rfind("tcp://", 0) == 0;
}

std::string Z85(const zmq::message_t& key) {
  char text[41] = {};
  if (key.size() != 32 ||
      zmq_z85_encode(text, key.data<uint8_t>(), key.size()) == nullptr) {
    return fmt::format("<{} bytes>", key.size());
  }
  return text;
}

// Logs a refusal at once, then at most once per interval for the same key,
// with the count of those not logged in between.
class RefusalLog {
 public:
  void Warn(const std::string& key, const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry& e = entries_[key];
    const auto now = Clock::now();
    if (e.logged && now - e.last < kRefusalLogInterval) {
      ++e.suppressed;
      return;
    }
    if (e.suppressed > 0) {
      CLINRL_LOG_WARN("{} ({} more like it since the last report)", message,
                      e.suppressed);
    } else {
      CLINRL_LOG_WARN("{}", message);
    }
    e = Entry{now, 0, true};
  }

 private:
  struct Entry {
    Clock::time_point last;
    int64_t suppressed = 0;
    bool logged = false;
  };
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

std::string ProtocolErrorText(uint32_t code) {
  switch (code) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
      return "it has no CURVE keys (it offered another security mechanism)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
      return "its handshake did not decrypt (it has another server public "
             "key)";
    default:
      return fmt::format("ZMTP protocol error 0x{:x} in the handshake", code);
  }
}

// Answers ZAP requests and reads the monitors of the CURVE server sockets;
// one per process, never destroyed (like the shared context).
class CurveGuard {
 public:
  static CurveGuard& Get() {
    static CurveGuard* guard = new CurveGuard();
    return *guard;
  }

  // Accepts clients of `server` with the public key `client_public`, and
  // logs its refusals as "`what`: refused ...". Each server gets a ZAP domain
  // of its own, so servers with other keys in one process do not mix.
  void Watch(zmq::socket_t& server, const std::string& what,
             const std::string& client_public) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const std::string domain = fmt::format("clinrl-{}", servers_.size());
      server.set(zmq::sockopt::zap_domain, domain);
      servers_[domain] = {what, client_public};
    }
    const std::string endpoint = UniqueInprocEndpoint("clinrl-curve-monitor");
    const int events = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                       ZMQ_EVENT_MONITOR_STOPPED;
    if (zmq_socket_monitor(server.handle(), endpoint.c_str(), events) != 0) {
      throw zmq::error_t();
    }
    // Connected here, so no event waits for the guard thread to pick it up.
    Monitor m{std::make_unique<zmq::socket_t>(SharedZmqContext(),
                                              zmq::socket_type::pair),
              what};
    m.events->set(zmq::sockopt::linger, 0);
    m.events->connect(endpoint);
    std::lock_guard<std::mutex> lock(mutex_);
    incoming_.push_back(std::move(m));
  }

 private:
  struct Monitor {
    std::unique_ptr<zmq::socket_t> events;
    std::string what;
  };

  // Binds the ZAP endpoint in the caller's thread, so that no CURVE server
  // binds before a handler exists (ZeroMQ would then accept any client).
  CurveGuard() : zap_(SharedZmqContext(), zmq::socket_type::rep) {
    zap_.set(zmq::sockopt::linger, 0);
    zap_.bind(kZapEndpoint);
    std::thread([this] { Loop(); }).detach();
  }

  void Loop() {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (Monitor& m : incoming_) monitors_.push_back(std::move(m));
        incoming_.clear();
      }
      std::vector<zmq::pollitem_t> items = {{zap_.handle(), 0, ZMQ_POLLIN, 0}};
      for (Monitor& m : monitors_) {
        items.push_back({m.events->handle(), 0, ZMQ_POLLIN, 0});
      }
      try {
        zmq::poll(items, std::chrono::milliseconds(kGuardPollMs));
        if (items[0].revents & ZMQ_POLLIN) AnswerZap();
        ReadMonitors(items);
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) return;
        CLINRL_LOG_ERROR("CURVE guard: {} (errno {})", e.what(), e.num());
      }
    }
  }

  struct ZapVerdict {
    std::string status;  // "200", "400" or "500"
    std::string text;
  };

  // ZAP request (RFC 27): version, request id, domain (the server's
  // `what`), address, routing id, mechanism, then the mechanism's
  // credentials (CURVE: the client's public key, 32 bytes).
  //
  // Every request is answered, a malformed one too: libzmq holds the
  // handshake of the connection until its reply comes, and the REP socket
  // takes no further request before it has answered this one, so a request
  // left unanswered would stop authentication for every CURVE server of the
  // process. A malformed request gets 400, a failure of the handler 500; a
  // request too short to carry a request id is answered with an empty one.
  void AnswerZap() {
    std::vector<zmq::message_t> request = ReceiveMultipart(zap_);
    if (request.empty()) return;  // nothing received, nothing to answer
    ZapVerdict verdict;
    try {
      verdict = Judge(request);
    } catch (const std::exception& e) {
      verdict = {"500", "internal error of the ZAP handler"};
      CLINRL_LOG_ERROR("CURVE guard: answering a ZAP request failed: {}",
                       e.what());
    }
    zap_.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
    if (request.size() > 1) {
      zap_.send(request[1], zmq::send_flags::sndmore);
    } else {
      zap_.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
    }
    zap_.send(zmq::buffer(verdict.status), zmq::send_flags::sndmore);
    zap_.send(zmq::buffer(verdict.text), zmq::send_flags::sndmore);
    zap_.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
    zap_.send(zmq::str_buffer(""), zmq::send_flags::none);
  }

  // 200 for the client key of the server's own keys, not the process's
  // current ones (a server keeps the keys it was started with), and for the
  // NULL mechanism: ZeroMQ may ask about sockets without CURVE, which are
  // not ours to judge. 400, logged, for anything else.
  ZapVerdict Judge(const std::vector<zmq::message_t>& request) {
    const std::string address =
        request.size() > 3 ? request[3].to_string() : "?";
    if (request.size() < 6 || request[0].to_string() != "1.0") {
      return Refuse(
          "ZAP|malformed",
          fmt::format("CURVE guard: refused a malformed ZAP request "
                      "({} frames, version '{}'; expected version "
                      "1.0 and at least 6 frames)",
                      request.size(), request[0].to_string().substr(0, 16)),
          "malformed ZAP request");
    }
    const std::string mechanism = request[5].to_string();
    if (mechanism == "NULL" && request.size() == 6) return {"200", "OK"};
    if (mechanism != "CURVE") {
      return Refuse(
          "ZAP|mechanism|" + mechanism,
          fmt::format("CURVE guard: refused a client at {}: a ZAP request for "
                      "the {} mechanism with {} frames, which no clinrl "
                      "server uses",
                      address, mechanism, request.size()),
          "unsupported mechanism");
    }
    std::string what = "a CURVE server of this process";
    std::string client_public;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = servers_.find(request[2].to_string());
      if (it != servers_.end()) {
        what = it->second.what;
        client_public = it->second.client_public;
      }
    }
    if (request.size() != 7 || request[6].size() != 32) {
      return Refuse(what + "|malformed|" + address,
                    fmt::format("{}: refused a client at {}: a malformed "
                                "CURVE ZAP request ({} frames; expected 7, the "
                                "last a 32-byte key)",
                                what, address, request.size()),
                    "malformed CURVE request");
    }
    const std::string key = Z85(request[6]);
    if (client_public.empty() || key != client_public) {
      return Refuse(what + "|auth|" + address,
                    fmt::format("{}: refused a client at {}: its CURVE public "
                                "key {} is not this run's client key",
                                what, address, key),
                    "unknown client key");
    }
    return {"200", "OK"};
  }

  ZapVerdict Refuse(const std::string& log_key, const std::string& message,
                    const std::string& text) {
    refusals_.Warn(log_key, message);
    return {"400", text};
  }

  void ReadMonitors(const std::vector<zmq::pollitem_t>& items) {
    for (size_t i = monitors_.size(); i-- > 0;) {
      if (!(items[i + 1].revents & ZMQ_POLLIN)) continue;
      if (!ReadEvents(monitors_[i])) {
        monitors_.erase(monitors_.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
  }

  // Logs the waiting events; false once the server socket closed.
  bool ReadEvents(Monitor& m) {
    while (true) {
      // Each event: [16-bit event, 32-bit value], then the local endpoint.
      std::vector<zmq::message_t> frames = ReceiveMultipart(*m.events);
      if (frames.empty()) return true;
      if (frames[0].size() < 6) continue;
      uint16_t event = 0;
      uint32_t value = 0;
      std::memcpy(&event, frames[0].data(), sizeof(event));
      std::memcpy(&value, frames[0].data<char>() + 2, sizeof(value));
      if (event == ZMQ_EVENT_MONITOR_STOPPED) return false;
      const std::string reason =
          event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
              ? ProtocolErrorText(value)
              : fmt::format(
                    "its connection ended in the handshake ({}): "
                    "a client without CURVE keys, or not a clinrl "
                    "client",
                    zmq_strerror(static_cast<int>(value)));
      refusals_.Warn(m.what + "|" + reason,
                     fmt::format("{}: refused a client: {}; clients need this "
                                 "run's CURVE keys (--curve-keys)",
                                 m.what, reason));
    }
  }

  zmq::socket_t zap_;
  std::mutex mutex_;
  std::vector<Monitor> incoming_;  // guarded by mutex_
  struct Server {
    std::string what;
    std::string client_public;  // the one client key it accepts
  };
  std::map<std::string, Server> servers_;  // by ZAP domain; guarded by mutex_
  std::vector<Monitor> monitors_;          // the guard thread's
  RefusalLog refusals_;
};

}  // namespace

void InstallCurveKeys(std::optional<CurveKeys> keys) {
  std::lock_guard<std::mutex> lock(keys_mutex);
  installed_keys = std::move(keys);
}

std::optional<CurveKeys> InstalledCurveKeys() {
  std::lock_guard<std::mutex> lock(keys_mutex);
  return installed_keys;
}

bool UsesCurve(const std::string& endpoint) {
  return IsTcp(endpoint) && InstalledCurveKeys().has_value();
}

void SecureServerSocket(zmq::socket_t& socket, const std::string& endpoint,
                        const std::string& what) {
  if (!IsTcp(endpoint)) return;
  const std::optional<CurveKeys> keys = InstalledCurveKeys();
  if (!keys) return;
  try {
    CurveGuard& guard = CurveGuard::Get();
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey, keys->server_secret);
    guard.Watch(socket, what, keys->client_public);
  } catch (const zmq::error_t& e) {
    ThrowZmqError(e, fmt::format("setting up CURVE for {}", what));
  }
}

void SecureClientSocket(zmq::socket_t& socket, const std::string& endpoint) {
  if (!IsTcp(endpoint)) return;
  const std::optional<CurveKeys> keys = InstalledCurveKeys();
  if (!keys) return;
  try {
    socket.set(zmq::sockopt::curve_serverkey, keys->server_public);
    socket.set(zmq::sockopt::curve_publickey, keys->client_public);
    socket.set(zmq::sockopt::curve_secretkey, keys->client_secret);
  } catch (const zmq::error_t& e) {
    ThrowZmqError(e,
                  fmt::format("setting up CURVE to connect to '{}'", endpoint));
  }
}

std::string CurveHint(const std::string& endpoint) {
  if (!IsTcp(endpoint)) return "";
  const std::optional<CurveKeys> keys = InstalledCurveKeys();
  if (keys) {
    return fmt::format(
        "; CURVE is on (keys of {}): a server started without these keys "
        "refuses this client",
        keys->dir.empty() ? "this process" : keys->dir);
  }
  return "; this client has no CURVE keys: a server started with "
         "--curve-keys refuses it (pass the same --curve-keys DIR)";
}

}  // namespace clinrl
