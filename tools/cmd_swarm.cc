// `strata swarm keygen | members | serve | join | status`: the decentralized training job.
#include <signal.h>
#include <sys/random.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/aggregator.h"
#include "net/identity.h"
#include "net/swarm_common.h"
#include "tools/commands.h"
#include "train/swarm_peer.h"

namespace strata::tools {
namespace {

using Json = nlohmann::ordered_json;

void OnStop(int) {
  net::g_aggregator_stop.store(true);
  train::g_peer_stop.store(true);
}

void OnReload(int) { net::g_aggregator_reload.store(true); }

void InstallStopHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnStop;
  sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C stops at once
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup = {};
  hup.sa_handler = OnReload;  // serve: read the membership list again
  sigemptyset(&hup.sa_mask);
  sigaction(SIGHUP, &hup, nullptr);
}

struct KeygenFlags {
  std::string name, out;
};

int RunKeygen(const KeygenFlags& f) {
  const std::string out = f.out.empty() ? f.name + ".key" : f.out;
  Result<net::Identity> id = net::GenerateIdentity(f.name);
  if (!id.ok()) {
    std::fprintf(stderr, "strata swarm keygen: %s\n", id.status().ToString().c_str());
    return 1;
  }
  if (Status s = net::SaveIdentity(*id, out); !s.ok()) {
    std::fprintf(stderr, "strata swarm keygen: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("%s: secret identity of \"%s\" (keep it private, mode 0600)\n%s.pub: its public key (give it to the "
              "aggregator's operator)\n  ed25519 %s\n",
              out.c_str(), id->name.c_str(), out.c_str(), net::KeyHex(id->sign_pk).c_str());
  return 0;
}

struct MembersFlags {
  std::string out, authority;
  std::vector<std::string> pubs;
  uint64_t run_id = 0;
};

int RunMembers(const MembersFlags& f) {
  std::vector<net::PublicIdentity> ids;
  for (const std::string& p : f.pubs) {
    Result<net::PublicIdentity> id = net::LoadPublicIdentity(p);
    if (!id.ok()) {
      std::fprintf(stderr, "strata swarm members: %s\n", id.status().ToString().c_str());
      return 1;
    }
    ids.push_back(*id);
  }
  std::unique_ptr<net::Identity> auth;
  if (!f.authority.empty()) {
    Result<net::Identity> a = net::LoadIdentity(f.authority);
    if (!a.ok()) {
      std::fprintf(stderr, "strata swarm members: %s\n", a.status().ToString().c_str());
      return 1;
    }
    auth = std::make_unique<net::Identity>(std::move(*a));
  }
  std::optional<uint64_t> run;
  if (f.run_id) run = f.run_id;
  if (Status s = net::WriteMembership(f.out, ids, auth.get(), run); !s.ok()) {
    std::fprintf(stderr, "strata swarm members: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("%s: %zu members%s\n", f.out.c_str(), ids.size(), auth ? ", signed by the authority" : "");
  return 0;
}

struct ServeFlags {
  net::AggregatorOptions opt;
  bool no_clip = false, no_nesterov = false;
  bool eta_given = false, mu_given = false;
  uint32_t peers = 0;  // 0 = the members on the list
};

int RunServe(ServeFlags& f) {
  net::AggregatorOptions& o = f.opt;
  o.run.outer.clip = !f.no_clip;
  o.run.outer.nesterov = !f.no_nesterov;
  model::FillFamilyDefaults(&o.run.model);
  const bool resuming = std::filesystem::exists(o.dir + "/snapshot.bin");
  if (resuming && !o.quiet)
    std::fprintf(stderr, "strata swarm serve: resuming the run stored in %s (its run.json's model and outer step apply)\n",
                 o.dir.c_str());
  if (o.run.run_id == 0 && !resuming) {
    uint64_t r = 0;
    while (r == 0) {
      if (getrandom(&r, sizeof r, 0) != sizeof r) r = static_cast<uint64_t>(::time(nullptr));
    }
    o.run.run_id = r >> 11;  // exact in a JSON double
  }
  if (o.run.sync_peers > 0) {
    // The synchronous DiLoCo baseline: one outer step per round of N contributions, averaged,
    // without clipping or staleness damping (DiLoCo's eta 0.7, mu 0.9 unless given).
    o.run.outer.apply_every = o.run.sync_peers;
    o.run.outer.clip = false;
    o.run.outer.a = 0;
  } else {
    // Asynchronous: each arrival is one of N contributions a synchronous round would average,
    // so it moves theta by eta / N; and no momentum unless asked for, because momentum over
    // arrivals amplifies N-fold what it amplifies over rounds (measured: docs/EXPERIMENTS.md).
    uint32_t n = f.peers;
    if (n == 0) {
      Result<net::Membership> m = net::LoadMembership(o.members, nullptr);
      n = m.ok() ? static_cast<uint32_t>(std::max<size_t>(1, m->members.size())) : 1;
    }
    if (!f.eta_given) o.run.outer.eta = o.run.outer.eta / static_cast<float>(n);
    if (!f.mu_given) o.run.outer.mu = 0.0f;
  }
  InstallStopHandlers();
  if (Status s = net::RunAggregator(o); !s.ok()) {
    std::fprintf(stderr, "strata swarm serve: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

struct JoinFlags {
  train::PeerOptions opt;
  std::string offload = "none";
  bool buffered = false;
};

int RunJoin(const train::PeerOptions& o) {
  InstallStopHandlers();
  Result<train::PeerReport> r = train::RunPeer(o);
  if (!r.ok()) {
    std::fprintf(stderr, "strata swarm join: %s\n", r.status().ToString().c_str());
    return 1;
  }
  if (!o.quiet)
    std::fprintf(stderr,
                 "strata swarm join: %llu rounds (%llu applied, %llu refused, %llu duplicates), version %llu, "
                 "validation loss %.4f; %.1f MB up, %.1f MB down\n",
                 static_cast<unsigned long long>(r->rounds), static_cast<unsigned long long>(r->applied),
                 static_cast<unsigned long long>(r->refused), static_cast<unsigned long long>(r->duplicates),
                 static_cast<unsigned long long>(r->version), r->val_loss, r->bytes_up / 1e6, r->bytes_down / 1e6);
  return 0;
}

struct StatusFlags {
  std::string address, key, server_key;
  bool json = false;
  double timeout_s = 5;
};

int RunStatus(const StatusFlags& f) {
  Result<net::Identity> id = net::LoadIdentity(f.key);
  if (!id.ok()) {
    std::fprintf(stderr, "strata swarm status: %s\n", id.status().ToString().c_str());
    return 1;
  }
  Result<net::PublicIdentity> srv = net::LoadPublicIdentity(f.server_key);
  if (!srv.ok()) {
    std::fprintf(stderr, "strata swarm status: %s\n", srv.status().ToString().c_str());
    return 1;
  }
  zmq::context_t ctx(1);
  Result<std::unique_ptr<net::SwarmClient>> c = net::SwarmClient::Connect(ctx, *id, f.address, *srv);
  if (!c.ok()) {
    std::fprintf(stderr, "strata swarm status: %s\n", c.status().ToString().c_str());
    return 1;
  }
  // The run id is learnt from the Welcome; the status request then carries it.
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1000));
  Result<Json> w = (*c)->Request(net::MsgType::kHello, Json{{"name", id->name}, {"status", true}},
                                 net::MsgType::kWelcome, timeout);
  if (!w.ok()) {
    std::fprintf(stderr, "strata swarm status: %s: %s\n", f.address.c_str(), w.status().ToString().c_str());
    return 1;
  }
  (*c)->set_run_id((*w)["run"]["run_id"].get<uint64_t>());
  Result<Json> s = (*c)->Request(net::MsgType::kStatusRequest, Json::object(), net::MsgType::kStatusReply, timeout);
  if (!s.ok()) {
    std::fprintf(stderr, "strata swarm status: %s\n", s.status().ToString().c_str());
    return 1;
  }
  if (f.json) {
    std::printf("%s\n", s->dump(2).c_str());
    return 0;
  }
  const Json& j = *s;
  std::printf("run %llu at version %llu (theta %s), %llu contributions accepted, up %.0f s\n",
              static_cast<unsigned long long>(j["run_id"].get<uint64_t>()),
              static_cast<unsigned long long>(j["version"].get<uint64_t>()), j["theta_hash"].get<std::string>().c_str(),
              static_cast<unsigned long long>(j["accepted"].get<uint64_t>()), j["uptime_s"].get<double>());
  std::printf("\n%-16s %-8s %8s %8s %10s %8s %10s %10s %8s\n", "peer", "state", "version", "contrib", "tokens/s",
              "eta_s", "MB in", "MB out", "refused");
  for (const Json& p : j["peers"]) {
    const Json& l = p["lease"];
    // From the peer's last lease; "-" before its first.
    auto num = [&](const char* k, const char* fmt) {
      char b[32] = "-";
      if (l.is_object() && l.contains(k) && l[k].is_number()) std::snprintf(b, sizeof b, fmt, l[k].get<double>());
      return std::string(b);
    };
    std::printf("%-16s %-8s %8s %8llu %10s %8s %10.2f %10.2f %8llu\n", p["name"].get<std::string>().c_str(),
                p["state"].get<std::string>().c_str(), num("version", "%.0f").c_str(),
                static_cast<unsigned long long>(p["contributions"].get<uint64_t>()),
                num("tokens_per_s", "%.0f").c_str(), num("eta_s", "%.1f").c_str(),
                p["bytes_in"].get<double>() / 1e6, p["bytes_out"].get<double>() / 1e6,
                static_cast<unsigned long long>(p["refused"].get<uint64_t>()));
  }
  std::printf("\nstaleness (tau: contributions):");
  const Json& hist = j["staleness_histogram"];
  for (size_t t = 0; t < hist.size(); ++t)
    if (hist[t].get<uint64_t>() > 0) std::printf(" %zu:%llu", t, static_cast<unsigned long long>(hist[t].get<uint64_t>()));
  std::printf("\nbytes: %.2f MB in, %.2f MB out; handshakes: %llu admitted, %llu denied\n",
              j["bytes_in"].get<double>() / 1e6, j["bytes_out"].get<double>() / 1e6,
              static_cast<unsigned long long>(j["zap_admitted"].get<uint64_t>()),
              static_cast<unsigned long long>(j["zap_denied"].get<uint64_t>()));
  std::printf("refusals:");
  if (j["refusals"].empty()) std::printf(" none");
  for (const auto& [reason, count] : j["refusals"].items())
    std::printf(" %s=%llu", reason.c_str(), static_cast<unsigned long long>(count.get<uint64_t>()));
  std::printf("\n");
  return 0;
}

}  // namespace

void AddSwarmCommand(CLI::App& app, int* exit_code) {
  CLI::App* swarm = app.add_subcommand(
      "swarm",
      "Train one model with many machines over ZeroMQ (CURVE-encrypted, members only): peers train on their own\n"
      "data for H steps, send 8-bit signed pseudo-gradients, and the aggregator applies them as they arrive,\n"
      "damping and clipping stale ones, so nobody waits for the slowest peer.\n\n"
      "  strata swarm keygen --name agg; strata swarm keygen --name alice\n"
      "  strata swarm members --out members.txt alice.key.pub\n"
      "  strata swarm serve --key agg.key --members members.txt --out agg/\n"
      "  strata swarm join --key alice.key --server tcp://HOST:7700 --server-key agg.key.pub");
  swarm->require_subcommand(1);

  auto kf = std::make_shared<KeygenFlags>();
  CLI::App* kg = swarm->add_subcommand("keygen", "Make an identity: an Ed25519 key (its CURVE key derives from it).");
  kg->add_option("--name", kf->name, "Member name, [A-Za-z0-9._-], up to 64 characters")->required();
  kg->add_option("--out", kf->out, "Secret key file (default NAME.key); the public key goes to OUT.pub");
  kg->callback([kf, exit_code] { *exit_code = RunKeygen(*kf); });

  auto mf = std::make_shared<MembersFlags>();
  CLI::App* mem = swarm->add_subcommand("members", "Write the membership list: the public keys allowed in the run.");
  mem->add_option("--out", mf->out, "The list file to write")->required();
  mem->add_option("pubs", mf->pubs, "Public key files (.pub) of the members")->required();
  mem->add_option("--authority", mf->authority, "Sign the list with this identity (the run's authority)");
  mem->add_option("--run-id", mf->run_id, "Tie the list to this run id");
  mem->callback([mf, exit_code] { *exit_code = RunMembers(*mf); });

  auto sf = std::make_shared<ServeFlags>();
  net::AggregatorOptions& so = sf->opt;
  CLI::App* sv = swarm->add_subcommand("serve", "Run the aggregator (any machine with a reachable address).");
  sv->add_option("--key", so.key, "This aggregator's identity file")->required();
  sv->add_option("--members", so.members, "Membership list (strata swarm members); SIGHUP reads it again")->required();
  sv->add_option("--authority", so.authority, "Require the list to be signed by this public key (.pub)");
  sv->add_option("--out", so.dir, "State folder: run.json, snapshot.bin, wal.log, metrics.jsonl")->required();
  sv->add_option("--bind", so.bind, "ROUTER endpoint peers connect to")->capture_default_str();
  sv->add_option("--pub", so.pub_bind, "PUB endpoint for announcements (default: the --bind port + 1)");
  sv->add_option("--ready-file", so.ready_file, "Write the bound endpoints here once serving (for scripts)");
  sv->add_option("--run-id", so.run.run_id, "Run id (default: random); a restart reads the run from --out");
  sv->add_option("--arch", so.run.model.arch, "Model family: gpt2, llama, mistral or qwen2")
      ->capture_default_str()->check(CLI::IsMember(model::ModelArchs()));
  sv->add_option("--layers", so.run.model.n_layer, "Model layers")->capture_default_str();
  sv->add_option("--kv-heads", so.run.model.n_kv_head, "Key-value heads (llama family; 0 = --heads)")->capture_default_str();
  sv->add_option("--head-dim", so.run.model.head_dim, "Head size (llama family; 0 = width / heads)")->capture_default_str();
  sv->add_option("--mlp", so.run.model.n_mlp, "MLP width (llama family; 0 = 8/3 width rounded to 64)")->capture_default_str();
  sv->add_option("--rope-theta", so.run.model.rope_theta, "Rotary base (llama family)")->capture_default_str();
  sv->add_option("--sliding-window", so.run.model.sliding_window, "Attention window (mistral; 0 = none)")
      ->capture_default_str();
  sv->add_flag("--untied{false},--tied", so.run.model.tie_embeddings, "Own output head (--untied) or the embedding's");
  sv->add_option("--heads", so.run.model.n_head, "Attention heads")->capture_default_str();
  sv->add_option("--width", so.run.model.n_embd, "Model width")->capture_default_str();
  sv->add_option("--context", so.run.model.n_ctx, "Longest sequence")->capture_default_str();
  sv->add_option("--init-seed", so.run.init_seed, "Seed of theta at version 0")->capture_default_str();
  sv->add_option("--eta", so.run.outer.eta,
                 "Outer learning rate per contribution (default: 0.7 with --sync, else 0.7 / peers)");
  sv->add_option("--mu", so.run.outer.mu, "Outer Nesterov momentum (default: 0.9 with --sync, else 0)");
  sv->add_option("--peers", sf->peers, "Peers expected at once, for the default --eta (default: the members listed)");
  sv->add_option("--staleness-power", so.run.outer.a, "a: the band shrinks as (1 + tau)^-a")->capture_default_str();
  sv->add_option("--upper", so.run.outer.upper_mult, "Upper clip, in running RMS of g")->capture_default_str();
  sv->add_option("--lower", so.run.outer.lower_mult, "Lower clip, in running RMS of g")->capture_default_str();
  sv->add_option("--tau-max", so.run.outer.tau_max, "Refuse contributions staler than this")->capture_default_str();
  sv->add_option("--h-ref", so.run.outer.h_ref, "Inner steps a contribution is scaled to (0: no scaling)")
      ->capture_default_str();
  sv->add_option("--apply-every", so.run.outer.apply_every, "K: one outer step per K arrivals (delayed Nesterov)")
      ->capture_default_str();
  sv->add_option("--outlier", so.run.outlier_mult,
                 "Refuse a contribution whose RMS exceeds this x the running RMS of the accepted ones (0: off)")
      ->capture_default_str();
  sv->add_option("--theta-bound", so.run.theta_bound,
                 "Refuse a contribution whose RMS (after --h-ref) exceeds this x theta's RMS; holds from the "
                 "first contribution on (0: off; docs/SECURITY.md)")
      ->capture_default_str();
  sv->add_flag("--no-clip", sf->no_clip, "No Bi²Clip (plain asynchronous DiLoCo)");
  sv->add_flag("--no-nesterov", sf->no_nesterov, "Heavy-ball momentum instead of Nesterov");
  sv->add_option("--sync", so.run.sync_peers, "Synchronous DiLoCo rounds of N peers (the baseline)");
  sv->add_option("--chunk", so.run.chunk_elems, "Elements per wire chunk (multiple of 256)")->capture_default_str();
  sv->add_option("--history", so.run.history, "Updates kept for peers that are behind")->capture_default_str();
  sv->add_option("--snapshot-every", so.run.snapshot_every, "Versions between snapshots")->capture_default_str();
  sv->add_option("--lease-ms", so.run.lease_ms, "Peer lease period (suspect after 3 missed, evicted after 6)")
      ->capture_default_str();
  sv->add_option("--threads", so.threads, "Threads for the outer step")->capture_default_str();
  sv->add_option("--stop-at-version", so.stop_at_version, "Stop once the global version reaches this");
  sv->add_option("--max-seconds", so.max_seconds, "Stop after this many seconds");
  sv->add_flag("--quiet", so.quiet, "No messages on stderr");
  sv->callback([sf, sv, exit_code] {
    sf->eta_given = sv->count("--eta") > 0;
    sf->mu_given = sv->count("--mu") > 0;
    *exit_code = RunServe(*sf);
  });

  auto jf = std::make_shared<JoinFlags>();
  train::PeerOptions* jo = &jf->opt;
  CLI::App* jn = swarm->add_subcommand("join", "Run a peer: train on your data, contribute, follow the global model.");
  jn->add_option("--key", jo->key, "This peer's identity file")->required();
  jn->add_option("--server", jo->server, "The aggregator, tcp://HOST:PORT")->required();
  jn->add_option("--server-key", jo->server_key, "The aggregator's public key file (.pub)")->required();
  jn->add_option("--data", jo->data, "Corpus: a text file or folder, or a token file (default: fortunes)");
  jn->add_option("--shard", jo->shard, "This peer's shard of the training tokens")->capture_default_str();
  jn->add_option("--shards", jo->shards, "Number of shards")->capture_default_str();
  jn->add_option("--inner-steps", jo->inner_steps, "H: local steps per contribution")->capture_default_str();
  jn->add_option("--rounds", jo->rounds, "Contributions to make (0: until stopped)")->capture_default_str();
  jn->add_option("--stop-at-version", jo->stop_at_version, "Leave once the global version reaches this");
  jn->add_option("--max-seconds", jo->max_seconds, "Leave after this many seconds");
  jn->add_flag("!--fixed-h", jo->adapt_h, "Always take --inner-steps (default: fewer when contributions arrive stale)");
  jn->add_option("--optimizer", jo->optimizer, "Inner optimizer: adamw | adamw8bit")->capture_default_str();
  jn->add_option("--lr", jo->lr, "Inner learning rate")->capture_default_str();
  jn->add_option("--beta2", jo->beta2, "Inner AdamW beta2")->capture_default_str();
  jn->add_option("--warmup", jo->warmup, "Inner warm-up steps")->capture_default_str();
  jn->add_option("--lr-decay-steps", jo->decay_steps,
                 "Cosine decay of the inner lr to lr * --min-lr-ratio at this inner step (0: constant after the warm-up)")
      ->capture_default_str();
  jn->add_option("--min-lr-ratio", jo->min_lr_ratio, "Where the cosine decay ends, as a fraction of --lr")
      ->capture_default_str();
  jn->add_option("--offload", jf->offload,
                 "Inner optimizer state: none (memory) | ram | nvme (OUT/state) | nvme:DIR; a state directory is "
                 "reopened when the peer comes back, keeping its moments")
      ->capture_default_str();
  jn->add_option("--offload-ram", jo->offload_ram, "Staging memory for the offloaded state, e.g. 64MiB")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  jn->add_option("--chunk", jo->chunk_params, "Parameters per offload chunk (0 = about 1/16 of the model, at most 1 Mi)")
      ->capture_default_str();
  jn->add_flag("--buffered", jf->buffered, "Offloaded state through the page cache instead of O_DIRECT");
  jn->add_option("--batch", jo->batch, "Sequences per inner step")->capture_default_str();
  jn->add_option("--seq", jo->seq, "Tokens per sequence")->capture_default_str();
  jn->add_option("--threads", jo->threads, "Compute threads")->capture_default_str();
  jn->add_option("--slowdown", jo->slowdown, "Make each inner step this many times slower (a straggler)");
  jn->add_option("--merge", jo->merge, "After each round: hard (take the global theta) | dppf (pull-push)")
      ->capture_default_str();
  jn->add_option("--dppf-alpha", jo->dppf_alpha, "DPPF pull")->capture_default_str();
  jn->add_option("--dppf-lambda", jo->dppf_lambda, "DPPF push")->capture_default_str();
  jn->add_option("--window", jo->window, "Chunks in flight")->capture_default_str();
  jn->add_option("--eval-every", jo->eval_every, "Rounds between validation losses (0: never)")->capture_default_str();
  jn->add_option("--eval-batches", jo->eval_batches, "Batches per validation loss")->capture_default_str();
  jn->add_option("--seed", jo->seed, "Seed of the batch order")->capture_default_str();
  jn->add_option("--timeout", jo->timeout_s, "Give up after this many seconds of silence")->capture_default_str();
  jn->add_option("--out", jo->out, "Folder for metrics.jsonl");
  jn->add_flag("--quiet", jo->quiet, "No messages on stderr");
  jn->add_flag("--verbose", jo->verbose, "A line for every resend and re-request");
  jn->callback([jf, exit_code] {
    if (Status st = train::ParseOffload(jf->offload, "--offload", &jf->opt.offload, &jf->opt.offload_dir); !st.ok()) {
      std::fprintf(stderr, "strata swarm join: %s\n", st.message().c_str());
      *exit_code = 2;
      return;
    }
    jf->opt.direct_io = !jf->buffered;
    *exit_code = RunJoin(jf->opt);
  });

  auto tf = std::make_shared<StatusFlags>();
  CLI::App* st = swarm->add_subcommand("status", "Show an aggregator's peers, versions, speed, staleness and refusals.");
  st->add_option("address", tf->address, "The aggregator, tcp://HOST:PORT")->required();
  st->add_option("--key", tf->key, "Your identity file (must be on the list)")->required();
  st->add_option("--server-key", tf->server_key, "The aggregator's public key file (.pub)")->required();
  st->add_flag("--json", tf->json, "Print the raw JSON");
  st->add_option("--timeout", tf->timeout_s, "Seconds to wait")->capture_default_str();
  st->callback([tf, exit_code] { *exit_code = RunStatus(*tf); });
}

}  // namespace strata::tools
