// Placeholder: `strata bench swarm` (being written).
#pragma once
