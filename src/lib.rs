//! powerpole: just-in-time, approved, per-person access to Aurora MySQL through ephemeral
//! SSM-only bastions, driven from Slack. See ARCHITECTURE.md for the map.

pub mod app;
pub mod bastion;
pub mod calls;
pub mod config;
pub mod config_source;
pub mod doctor;
pub mod domain;
pub mod export;
pub mod grants;
pub mod logs;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod parameters;
pub mod policy;
pub mod report;
pub mod secrets;
pub mod sim;
pub mod slack;
pub mod store;
pub mod transcripts;
pub mod workflow;
