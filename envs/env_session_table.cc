#include "envs/env_session_table.h"

#include <fmt/format.h>

#include <random>

namespace clinrl::envs {

EnvSessionTable::EnvSessionTable() {
  std::random_device device;
  const uint64_t instance = (static_cast<uint64_t>(device()) << 32) ^ device() ^
                            static_cast<uint64_t>(NowNs());
  prefix_ = fmt::format("{:012x}", instance & 0xffffffffffffULL);
}

std::shared_ptr<EnvSession> EnvSessionTable::Add(const std::string& env_name,
                                                 std::unique_ptr<Env> env,
                                                 const std::string& client) {
  auto session = std::make_shared<EnvSession>();
  session->id = fmt::format("{}-{}", prefix_, next_.fetch_add(1));
  session->env_name = env_name;
  session->client = client;
  session->env = std::move(env);
  session->last_used_ns.store(NowNs());
  std::lock_guard<std::mutex> lock(mutex_);
  sessions_.emplace(session->id, session);
  ++per_client_[client];
  return session;
}

int64_t EnvSessionTable::CountOf(const std::string& client) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

void EnvSessionTable::Forget(const EnvSession& session) {
  auto it = per_client_.find(session.client);
  if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
}

std::shared_ptr<EnvSession> EnvSessionTable::Find(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

std::shared_ptr<EnvSession> EnvSessionTable::Remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return nullptr;
  auto session = std::move(it->second);
  sessions_.erase(it);
  Forget(*session);
  return session;
}

std::vector<std::shared_ptr<EnvSession>> EnvSessionTable::TakeIdle(
    int64_t now_ns, int64_t idle_ns) {
  std::vector<std::shared_ptr<EnvSession>> taken;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    EnvSession& s = *it->second;
    if (now_ns - s.last_used_ns.load() > idle_ns && s.busy.try_lock()) {
      s.busy.unlock();
      Forget(s);
      taken.push_back(std::move(it->second));
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  return taken;
}

int64_t EnvSessionTable::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(sessions_.size());
}

}  // namespace clinrl::envs
