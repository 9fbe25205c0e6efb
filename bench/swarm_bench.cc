#include "bench/swarm_bench.h"
