#![allow(unused_crate_dependencies)] // shares the package's dependency list with the binary
//! Whole-cluster tests: real `cairn` processes on loopback, driven over HTTP as users do.

mod bad_input;
mod crash;
mod label_cache;
mod local;
mod prometheus_e2e;
mod query_api;
mod result_cache;
mod sharding;
mod support;
