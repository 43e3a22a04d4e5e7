//! Per-person MySQL accounts on a target: create with exactly the role's privileges, revoke completely.
