//! Bastions: one ephemeral EC2 instance per session, reachable only through SSM Session Manager.
//!
//! The workflow talks to this module through [`Bastions`]; [`Ec2Bastions`] implements it with
//! the AWS SDK. Every operation is safe to retry and safe after a crash:
//!
//! - `launch` first looks the session's instance up by its `powerpole:session` tag and returns
//!   it if there is one, and only then calls `RunInstances`, with the session id as
//!   `ClientToken`. The tag lookup covers a crash between launch and the store write (and moto,
//!   which ignores `ClientToken`); the token covers two replicas launching at the same instant.
//! - `terminate` of an instance that is gone, or already terminated, is done.
//! - `wait_online` only reads.
//!
//! What a bastion is (see [`launch`] for the details): the target's private subnet and bastion
//! security group, no public IP, no key pair, IMDSv2 only with a hop limit of 1, an encrypted gp3
//! root volume, the bastion instance profile, shutdown = terminate, the session's tags (among
//! them `powerpole:identity`, who may enter it: see [`identity`]), and the user data of
//! `user-data.sh` (an unprivileged session user, no sudo, metadata for root only, a MySQL client).

mod ec2;
mod error;
pub mod identity;
mod instances;
pub mod launch;
mod online;

use std::net::Ipv4Addr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use ec2::Ec2Bastions;
pub use error::BastionError;

use crate::config::TargetConfig;
use crate::domain::{SessionId, SlackUserId, TargetName};

/// Tag keys on every bastion (and its root volume).
pub mod tags {
    pub const SESSION: &str = "powerpole:session";
    pub const REQUESTER: &str = "powerpole:requester";
    pub const TARGET: &str = "powerpole:target";
    /// `true` on everything powerpole launched: what reconcile lists and terminate insists on.
    pub const MANAGED: &str = "powerpole:managed";
    /// The deployment (`[deployment] id`) that launched it: reconcile lists only its own, and
    /// the IAM policies condition terminate on it.
    pub const DEPLOYMENT: &str = "powerpole:deployment";
    /// The requester as AWS sees them ([`super::identity`]): who may start a session on it.
    pub const IDENTITY: &str = "powerpole:identity";
}

/// What to launch for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    pub session: SessionId,
    pub requester: SlackUserId,
    /// The requester's Slack profile e-mail (one of the sources of the identity tag).
    pub requester_email: String,
    pub target: TargetName,
    pub subnet_id: String,
    pub security_group_id: String,
    /// The target's own AMI; `None` reads [`crate::config::BastionConfig::ami_parameter`].
    pub ami: Option<String>,
    /// The target's own instance type; `None` uses the bastion config's.
    pub instance_type: Option<String>,
    /// The CA bundle the bastion's `mysql` verifies the server with ([`launch::bastion_ca_bundle`]).
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Whether the launch carries the identity tag. False for launch on request: the instance is
    /// launched before anyone approved, and [`Bastions::set_identity`] tags it at approval. Every
    /// launch of one session uses the same value, so a retried `RunInstances` (same
    /// `ClientToken`) always has the same parameters.
    pub identity_at_launch: bool,
}

impl LaunchSpec {
    pub fn new(session: SessionId, requester: SlackUserId, requester_email: &str, target: &TargetConfig) -> LaunchSpec {
        LaunchSpec {
            session,
            requester,
            requester_email: requester_email.to_string(),
            target: target.name.clone(),
            subnet_id: target.subnet_id.clone(),
            security_group_id: target.security_group_id.clone(),
            ami: target.ami.clone(),
            instance_type: target.instance_type.clone(),
            ca_bundle: launch::bastion_ca_bundle(target).map(|p| p.to_path_buf()),
            identity_at_launch: true,
        }
    }

    /// The spec of a launch-on-request session (see [`LaunchSpec::identity_at_launch`]).
    pub fn without_identity(mut self) -> LaunchSpec {
        self.identity_at_launch = false;
        self
    }
}

/// EC2's lifecycle states, as far as powerpole cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    Other(String),
}

impl InstanceState {
    /// On its way out or gone: never handed to a requester, never relaunched.
    pub fn is_ending(&self) -> bool {
        matches!(self, InstanceState::ShuttingDown | InstanceState::Terminated)
    }

    pub fn as_str(&self) -> &str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Other(s) => s,
        }
    }
}

/// A session's bastion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// The address the database sees (the account host for `instance_ip` targets).
    pub private_ip: Ipv4Addr,
    pub state: InstanceState,
    pub launched_at: Option<DateTime<Utc>>,
}

/// A bastion as reconcile sees it: whatever carries `powerpole:managed=true` and this
/// deployment's `powerpole:deployment` tag and is not terminated, with its session tag if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedInstance {
    pub id: String,
    pub session: Option<String>,
    pub target: Option<String>,
    pub state: InstanceState,
    /// Reconcile should spare very young instances: their session may not be stored yet.
    pub launched_at: Option<DateTime<Utc>>,
}

/// Bastions as the workflow and `powerpole reconcile` need them.
#[async_trait]
pub trait Bastions: Send + Sync {
    /// The session's instance: the existing one if there is one, else a new one.
    async fn launch(&self, spec: &LaunchSpec) -> Result<Instance, BastionError>;

    /// The session's instance, unless it is terminated (or never existed).
    async fn find(&self, session: &SessionId) -> Result<Option<Instance>, BastionError>;

    /// Tags a launch-on-request bastion with its requester's identity, at approval: from then on
    /// (and only then) the engineer policy lets that person start a session on it. Done when the
    /// tag already holds this identity; refused if it holds another one.
    async fn set_identity(&self, instance_id: &str, spec: &LaunchSpec) -> Result<(), BastionError>;

    /// Returns once SSM reports the instance's agent `Online`; fails with
    /// [`BastionError::NotOnline`] after `timeout`.
    async fn wait_online(&self, instance_id: &str, timeout: Duration) -> Result<(), BastionError>;

    /// Terminates a bastion of this deployment; one that is gone already is done.
    async fn terminate(&self, instance_id: &str) -> Result<(), BastionError>;

    /// Every bastion of this deployment that is not terminated.
    async fn list_managed(&self) -> Result<Vec<ManagedInstance>, BastionError>;
}
