// `strata bench swarm`: the swarm's pseudo-gradient exchange beside raw ZeroMQ, in one run.
#include <cstdio>
#include <memory>

#include "bench/swarm_bench.h"
#include "tools/commands.h"

namespace strata::tools {

void AddBenchSwarmCommand(CLI::App& bench, int* exit_code) {
  struct Flags {
    bench::SwarmBenchOptions opt;
    std::string streams = "auto";
    std::string transport = "tcp";
    std::string json;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = bench.add_subcommand(
      "swarm",
      "Bytes and speed of the swarm's exchange: the peer's upload of a pseudo-gradient (8-bit error-\n"
      "feedback codes, signed frames, a window of acknowledged chunks) into the aggregator's receive\n"
      "path (verify, assemble, ack), with CURVE, beside raw ZeroMQ moving the same bytes between two\n"
      "sockets with CURVE (zmq_raw) and without (zmq_plain), all over loopback in this run. Also the\n"
      "wire size of the downlink update. The receiver's tensor is checked bit for bit.\n"
      "Example: strata bench swarm --json swarm.json");
  cmd->add_option("--params", f->opt.params, "Elements of the pseudo-gradient, e.g. 100M (k = 1000, Ki = 1024)")
      ->capture_default_str()->transform(CLI::AsSizeValue(true));
  cmd->add_option("--chunk", f->opt.chunk, "Elements per frame, a multiple of 256, e.g. 1Mi")
      ->capture_default_str()->transform(CLI::AsSizeValue(true));
  cmd->add_option("--window", f->opt.window, "Frames in flight per stream, each acknowledged")->capture_default_str();
  cmd->add_option("--streams", f->streams,
                  "Parallel connections: auto (try 1 and 2, report each, pick the faster exchange) or a list, e.g. 1,2,4")
      ->capture_default_str();
  cmd->add_option("--rounds", f->opt.rounds, "Alternations of all cases (medians reported)")->capture_default_str();
  cmd->add_option("--transport", f->transport, "tcp (127.0.0.1, ephemeral ports) or ipc (unix sockets)")
      ->capture_default_str()->check(CLI::IsMember({"tcp", "ipc"}));
  cmd->add_option("--threads", f->opt.threads, "Threads of the error-feedback encoder (0 = all cores)")
      ->capture_default_str();
  cmd->add_option("--timeout", f->opt.timeout_s, "Seconds a transfer may go without progress before it fails")
      ->capture_default_str();
  cmd->add_option("--json", f->json, "Write the figures to FILE");
  cmd->add_flag("--quiet", f->opt.quiet, "Print only errors (and the JSON on stdout when --json is not given)");
  cmd->callback([f, exit_code] {
    Result<std::vector<int>> streams = bench::ParseStreamCounts(f->streams);
    if (!streams.ok()) {
      std::fprintf(stderr, "strata bench swarm: %s\n", streams.status().ToString().c_str());
      *exit_code = 2;
      return;
    }
    f->opt.streams = *streams;
    f->opt.transport = f->transport == "ipc" ? bench::SwarmTransport::kIpc : bench::SwarmTransport::kTcp;
    auto r = bench::RunSwarmBench(f->opt);
    if (!r.ok()) {
      std::fprintf(stderr, "strata bench swarm: %s\n", r.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    if (!f->opt.quiet) std::fputs(bench::FormatSwarmBench(*r).c_str(), stdout);
    if (f->json.empty()) {
      if (f->opt.quiet) std::printf("%s\n", r->dump(2).c_str());
      *exit_code = 0;
      return;
    }
    *exit_code = WriteJsonFigures("strata bench swarm", f->json, r.value());
  });
}

}  // namespace strata::tools
