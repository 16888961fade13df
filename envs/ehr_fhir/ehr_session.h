// One agent's session with the EHR, shared by the EHR envs (ehr_fhir,
// ehr_workflow): it runs the agent's parsed GET and POST actions against the
// embedded server, in a sandbox of its own, or against the FHIR server at
// `base_url`; answers each with the text the agent sees; and keeps the log
// of the POSTs (the "writes" the graders read) and the count of invalid
// actions. FINISH, turns and grading are the env's.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "envs/ehr_fhir/agent_action.h"
#include "envs/ehr_fhir/ehr_record.h"

namespace clinrl::envs::ehr {

using nlohmann::json;

class EhrSession {
 public:
  // The sandbox is named `id_prefix` and a number, counted per prefix in the
  // process ("s1", "s2", ...). `base_url` ("" = the embedded server) ends in
  // '/'; `dry_run` (with base_url) records POSTs as created without sending
  // them.
  EhrSession(std::shared_ptr<EhrRecord> record, const std::string& id_prefix,
             std::string base_url = "", bool dry_run = false);
  ~EhrSession();  // drops the sandbox
  EhrSession(const EhrSession&) = delete;
  EhrSession& operator=(const EhrSession&) = delete;

  // The sandbox, and the X-Clinrl-Session header sent to base_url.
  const std::string& id() const { return id_; }
  // The API base the agent is given: base_url, or kEmbeddedApiBase.
  std::string ApiBase() const;

  // Runs a GET or POST (a POST is logged in writes()), or counts an invalid
  // action, and returns the reply the agent sees. FINISH is the env's.
  std::string Run(const AgentAction& action);

  // A new episode: drops the sandbox's rows, forgets the writes and the
  // invalid actions.
  void Restart();

  int64_t invalid_actions() const { return invalid_actions_; }
  // [{"resourceType", "url", "body", "status"}], one per POST sent.
  const json& writes() const { return writes_; }
  // The writes the server executed (status 201).
  int64_t ExecutedWrites() const;
  // The episode record the graders read: {"finish": answer, "writes": [..]}.
  json Episode(const json& answer) const;

 private:
  struct Reply {
    int status = 0;
    std::string body;
  };
  Reply Send(const std::string& method, const std::string& path,
             const std::string& query, const std::string& body) const;
  Reply SendRemote(const std::string& method, const std::string& path,
                   const std::string& query, const std::string& body) const;
  std::string Get(const std::string& url);
  std::string Post(const std::string& url, const std::string& text);
  std::string Invalid(const std::string& reply);
  void DropSandbox();

  std::shared_ptr<EhrRecord> record_;
  std::string id_;
  std::string base_url_;
  bool dry_run_ = false;
  int64_t invalid_actions_ = 0;
  int64_t dry_run_ids_ = 0;
  json writes_ = json::array();
};

}  // namespace clinrl::envs::ehr
