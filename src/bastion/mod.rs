//! Bastions: one ephemeral EC2 instance per session, reachable only through SSM Session Manager.
