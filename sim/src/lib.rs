//! Deterministic simulation of Tally clusters. Built by the sim issue; empty until then.
