//! The rules of powerpole, with no I/O at all: roles and their privileges, database user names,
//! durations and limits, identifiers, and the request state machine.
//!
//! Every type here can only be built valid (`parse`/`from_*` return a `Result`); holding one is
//! proof that the value was checked. Adapters and the workflow take these types, never raw strings.

pub mod deployment;
pub mod duration;
pub mod ids;
pub mod role;
pub mod session;
pub mod state;
pub mod username;

pub use deployment::{DeploymentId, DeploymentIdError};
pub use duration::{AccessDuration, DurationError};
pub use ids::{IdError, SchemaName, SchemaNameError, SessionId, SlackUserId, TargetName};
pub use role::{Privilege, PrivilegeError, PrivilegeSet, Role};
pub use session::{Actor, Approval, AuditEvent, AuditKind, BreakGlass, Dependency, Notice, NoticeKind, PendingExtension, Requester, Review, Session, SlackRefs, TeardownProgress};
pub use state::{transition, Event, Outcome, State, TransitionError};
pub use username::{DbUsername, UsernameError, UsernamePolicy};
