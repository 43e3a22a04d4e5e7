//! What the deployment test (`tests/deployment.rs`) needs to stand where Terraform and AWS stand:
//!
//! - [`terraform`]: the module's own templates rendered as Terraform renders them (the IAM
//!   policies of `policies/` with `templatefile()`, the configuration of `config.tf` and
//!   `config_layers.tf`, the functions' environment of `lambda.tf` and `export.tf`), read from the
//!   `.tf` files themselves, so that a change there changes what the test deploys (and an
//!   expression the test does not know fails it, naming the expression);
//! - [`tfvars`]: the subset of HCL a `terraform.tfvars` file uses;
//! - [`policy`]: what moto evaluates of a policy, and a small evaluator of the rest;
//! - [`moto`]: a moto server of the test's own, with IAM enforcement switched on after set-up;
//! - [`sigv4`]: AWS Signature V4 for the few calls no SDK client of the workspace makes (the
//!   DynamoDB Streams reads of the event source mapping).

pub mod model;
pub mod moto;
pub mod policy;
pub mod sigv4;
pub mod terraform;
pub mod tfvars;

use std::path::PathBuf;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// The Terraform module.
pub fn module_dir() -> PathBuf {
    repo().join("infra/modules/powerpole")
}

/// The example that deploys it.
pub fn example_dir() -> PathBuf {
    repo().join("infra/examples/complete")
}
