// Placeholder: tests of `strata bench swarm` (being written).
