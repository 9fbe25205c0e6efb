// Each subcommand of `strata` is one thin file over the library: it declares its flags on the
// CLI11 app and returns an exit code. Errors from the library are printed with their Status.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/status.h"

namespace strata::tools {

// Writes a benchmark's figures to --json PATH; prints where, or why not. Returns an exit code.
int WriteJsonFigures(const char* command, const std::string& path, const nlohmann::json& figures);

// Registers `strata bench ...` and returns a function that runs the chosen benchmark.
void AddBenchCommand(CLI::App& app, int* exit_code);
// Registers `strata bench offload` under `strata bench`.
void AddBenchOffloadCommand(CLI::App& bench, int* exit_code);
// Registers `strata bench train` under `strata bench`.
void AddBenchTrainCommand(CLI::App& bench, int* exit_code);
// Registers `strata bench swarm` under `strata bench`.
void AddBenchSwarmCommand(CLI::App& bench, int* exit_code);
// `strata bench load` (tools/cmd_bench_load.cc).
void AddBenchLoadCommand(CLI::App& bench, int* exit_code);
// Registers `strata inspect`.
void AddInspectCommand(CLI::App& app, int* exit_code);
// `strata inspect-model DIR` (tools/cmd_inspect.cc).
void AddInspectModelCommand(CLI::App& app, int* exit_code);
// Registers `strata finetune` and `strata eval`.
void AddFinetuneCommand(CLI::App& app, int* exit_code);
// Registers `strata swarm keygen|members|serve|join|status`.
void AddSwarmCommand(CLI::App& app, int* exit_code);
// Registers `strata info`.
void AddInfoCommand(CLI::App& app, int* exit_code);

}  // namespace strata::tools
